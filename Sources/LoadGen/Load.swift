import ArgumentParser
import CZeroMQ
import Glibc
import Transport

/// The load generator: sends `pred` messages with unique ids (10 classifiers by default)
/// and times each one until its answer (a `score` from the daemon, the same `pred`
/// from the relay) comes back. Throughput mode keeps a bounded window in flight;
/// paced mode sends at a fixed rate for latency. With `--batch N`, instances go N to a
/// `pred_batch` (labels N to a `label_batch`) and each is timed until its entry in the
/// answer (`score_batch` from the daemon, the batch itself from the relay).
struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Drive a relay or the daemon and print one JSON line of results.")

    @Option(help: "Endpoint(s) to send to, comma-separated (connects; '@' binds).")
    var input: String

    @Option(help: "Endpoint(s) to receive answers from, comma-separated (connects).")
    var output: String

    @Flag(help: "Send with PUSH (load-balanced over the inputs, blocking when full) instead of PUB.")
    var push = false

    @Option(help: "Topic of the answers: score (daemon) or pred (relay).")
    var expect: String = "score"

    @Option(help: "Instances to send.")
    var count: Int = 200_000

    @Option(help: "Most instances in flight (throughput mode).")
    var window: Int = 1000

    @Option(help: "Instances per second (0: throughput mode).")
    var rate: Double = 0

    @Option(help: "Instances per message: 1 sends pred (and label) messages, more sends pred_batch (and label_batch).")
    var batch: Int = 1

    @Option(help: "Classifiers per message.")
    var classifiers: Int = 10

    @Option(help: "Labels sent per pred, for earlier preds (0 to 1).")
    var labels: Double = 0

    @Option(help: "Id prefix: distinct per run against one daemon.")
    var tag: String = "a"

    @Option(help: "A name for this measurement in the output.")
    var name: String = "load"

    func run() throws {
        guard classifiers >= 1 && classifiers <= 64 else { throw ValidationError("--classifiers must be in 1...64") }
        guard tag.utf8.count == 1 else { throw ValidationError("--tag is one character") }
        guard batch >= 1 && batch <= 65_536 else { throw ValidationError("--batch must be in 1...65536") }
        let context = try ZMQContext()
        let pub = try ZMQSocket(context: context, kind: push ? .push : .pub)
        let sub = try ZMQSocket(context: context, kind: .sub)
        try pub.setSendHighWaterMark(push ? 1000 : 0)
        try sub.setReceiveHighWaterMark(0)
        try sub.subscribe(expect)
        let inputs = input.split(separator: ",").map(String.init), outputs = output.split(separator: ",").map(String.init)
        for e in inputs { try pub.attach(try Endpoint(parsing: e, defaultMode: .connect)) }
        for e in outputs { try sub.attach(try Endpoint(parsing: e, defaultMode: .connect)) }

        var bodies = BodyTemplates(classifiers: classifiers, runTag: tag.utf8.first!)
        try warmUp(pub: pub, sub: sub, answers: max(inputs.count, outputs.count))

        var sendAt = [UInt64](repeating: 0, count: count)
        var latencies = [UInt64]()
        latencies.reserveCapacity(count)
        var seen = [Bool](repeating: false, count: count)
        var msg = zmq_msg_t()
        zmq_msg_init(&msg)
        defer { zmq_msg_close(&msg) }
        var item = zmq_pollitem_t(socket: sub.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        let batched = batch > 1
        let topic = Array((batched ? "pred_batch" : "pred").utf8), labelTopic = Array((batched ? "label_batch" : "label").utf8)
        var batchBody: [UInt8] = [], labelBatchBody: [UInt8] = []
        batchBody.reserveCapacity(batch * 200 + 64)
        labelBatchBody.reserveCapacity(batch * 40 + 64)
        var nextLabel = 0
        var sent = 0, received = 0, labelsSent = 0
        var labelDebt = 0.0
        let start = now()
        var lastProgress = start
        let paced = rate > 0

        func receiveAll() {
            while true {
                if zmq_msg_recv(&msg, sub.handle, ZMQ_DONTWAIT) < 0 { return }
                // Frame 1 is the topic; frame 2 the body holding "id":"pRNNNNNNNNNN".
                guard zmq_msg_more(&msg) != 0, zmq_msg_recv(&msg, sub.handle, 0) >= 0 else { continue }
                let t = now()
                func answered(_ i: Int) {
                    guard i < count, !seen[i] else { return }
                    seen[i] = true
                    latencies.append(t - sendAt[i])
                    received += 1
                    lastProgress = t
                }
                if batched {
                    BodyTemplates.indexes(in: zmq_msg_data(&msg), count: zmq_msg_size(&msg), runTag: bodies.runTag, answered)
                } else if let i = BodyTemplates.index(in: zmq_msg_data(&msg), count: zmq_msg_size(&msg), runTag: bodies.runTag) {
                    answered(i)
                }
                while zmq_msg_more(&msg) != 0 { zmq_msg_recv(&msg, sub.handle, 0) }
            }
        }

        while received < count {
            let t = now()
            // Send what is due: in throughput mode up to the window, paced by the clock otherwise.
            while sent < count {
                if paced {
                    if Double(t - start) < Double(sent) * 1e9 / rate { break }
                } else if sent - received >= window {
                    break
                }
                if batched {
                    let n = min(batch, count - sent)
                    bodies.batch(sent..<(sent + n), into: &batchBody)
                    let at = now()
                    let ok = batchBody.withUnsafeBytes { send(pub, topic, $0) }
                    if !ok { break }
                    for i in sent..<(sent + n) { sendAt[i] = at }
                    sent += n
                    if labels > 0 {
                        labelDebt += labels * Double(n)
                        let lag = paced ? 1000 : window
                        while labelDebt >= Double(batch), nextLabel + batch <= sent - lag {
                            bodies.batch(nextLabel..<(nextLabel + batch), labels: true, into: &labelBatchBody)
                            _ = labelBatchBody.withUnsafeBytes { send(pub, labelTopic, $0) }
                            nextLabel += batch
                            labelsSent += batch
                            labelDebt -= Double(batch)
                        }
                    }
                    continue
                }
                let ok = bodies.pred(sent) { body in
                    sendAt[sent] = now()
                    return send(pub, topic, body)
                }
                if !ok { break }
                sent += 1
                if labels > 0 {
                    labelDebt += labels
                    let lag = paced ? 1000 : window
                    if labelDebt >= 1 && sent > lag {
                        labelDebt -= 1
                        _ = bodies.label(sent - 1 - lag) { send(pub, labelTopic, $0) }
                        labelsSent += 1
                    }
                }
            }
            receiveAll()
            if received >= count { break }
            // Nothing more came back for 5 s: the rest were lost.
            if now() - lastProgress > 5_000_000_000 && sent == count { break }
            if paced && sent < count {
                // Sleep until the next send is due (at most one inter-send gap), so the
                // generator does not spin on a core the target needs.
                let due = start + UInt64(Double(sent) * 1e9 / rate)
                let t2 = now()
                if due > t2 && zmq_poll(&item, 1, 0) == 0 {
                    // At most 50 µs at a time: an answer that arrives meanwhile is timed
                    // when it arrives, not when the next send is due (a batch of 16 at
                    // 20k/s is one send every 800 µs).
                    var ts = timespec(tv_sec: 0, tv_nsec: Int(min(due - t2, 50_000)))
                    nanosleep(&ts, nil)
                }
            } else {
                zmq_poll(&item, 1, 1)
            }
        }
        let elapsed = Double((latencies.isEmpty ? now() : lastProgress) - start) / 1e9
        latencies.sort()
        func pct(_ p: Double) -> Double {
            latencies.isEmpty ? 0 : Double(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) / 1000
        }
        let result = """
        {"name":"\(name)","mode":"\(paced ? "paced" : "window")","rate":\(rate),"window":\(window),"batch":\(batch),"sent":\(sent),\
        "received":\(received),"lost":\(sent - received),"labels_sent":\(labelsSent),"seconds":\(elapsed),\
        "msgs_per_s":\(Double(received) / max(elapsed, 1e-9)),"p50_us":\(pct(0.5)),"p99_us":\(pct(0.99)),"p999_us":\(pct(0.999)),"max_us":\(Double(latencies.last ?? 0) / 1000)}
        """
        print(result)
    }

    /// Sends probes until answers arrive (PUB/SUB joins late; with several targets, one
    /// answer per target in a row), then drains.
    private func warmUp(pub: ZMQSocket, sub: ZMQSocket, answers: Int) throws {
        try sub.setReceiveTimeout(100)
        var inARow = 0
        for k in 0..<400 {
            try pub.send(strings: ["pred", #"{"id":"warm\#(k)","preds":{"c0":0.5}}"#])
            inARow = try sub.receiveFrames() != nil ? inARow + 1 : 0
            if inARow >= 3 * answers {
                try sub.setReceiveTimeout(300)
                while try sub.receiveFrames() != nil {}
                return
            }
        }
        throw ValidationError("no answer on \(output) after 200 probes: is the target running?")
    }
}

private func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Sends topic + body without blocking; false if the queue is full.
private func send(_ socket: ZMQSocket, _ topic: [UInt8], _ body: UnsafeRawBufferPointer) -> Bool {
    let h = socket.handle
    let sentTopic = topic.withUnsafeBytes { zmq_send(h, $0.baseAddress, $0.count, ZMQ_SNDMORE | ZMQ_DONTWAIT) }
    if sentTopic < 0 { return false }
    return zmq_send(h, body.baseAddress, body.count, 0) >= 0
}
