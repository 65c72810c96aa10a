import ArgumentParser
import Foundation
import Transport
import Wire

/// `cfe replay FILE`: sends recorded preds and labels to a running daemon.
struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send preds and labels from a CSV or JSON-lines file to a running daemon.",
        discussion: """
        JSON lines: one object per line, a pred or label body as in the protocol; an optional "topic" field \
        ("pred" or "label") says which, otherwise a line with "preds" is a pred and one without is a label.
        CSV: a header row; column id is required, topic, ts and label are optional, every other column is a \
        classifier (an empty cell is a classifier that did not report). Plain CSV: no quoted commas.
        """
    )

    @Argument(help: "The file (.csv, or JSON lines).")
    var file: String

    @Option(help: "The daemon's input endpoint (default: the first input its status reports).")
    var input: String?

    @Option(help: "Socket type: auto (pub for a daemon with a SUB input, push for PULL), push or pub.")
    var type: String = "auto"

    @Option(help: "Messages per second (0: as fast as possible); with --batch, instances per second.")
    var rate: Double = 0

    @Option(help: "Send up to N consecutive preds (or labels) in one pred_batch (label_batch) message (1: one message each).")
    var batch: Int = 1

    /// The control socket: where to find the daemon's input, and its received count.
    @OptionGroup var client: ControlClient

    @Flag(help: "Do not ask the daemon (no control socket): needs --input and --type, and cannot confirm delivery.")
    var noVerify = false

    @Flag(help: "No progress display.")
    var quiet = false

    /// A `ping`: the daemon counts it in `accounting.pings` and nothing else, proof that
    /// the connection delivers without an error or a change of the model.
    static let ping: [[UInt8]] = [Array("ping".utf8), Array("{}".utf8)]

    func run() throws { try replay() }

    private func received() throws -> Int {
        Int(try client.status().health.accounting.received)
    }

    private func replay() throws {
        guard ["auto", "push", "pub"].contains(type) else { throw ValidationError("--type must be auto, push or pub") }
        guard (1...65_536).contains(batch) else { throw ValidationError("--batch must be in 1...65536") }
        if noVerify && (input == nil || type == "auto") { throw ValidationError("--no-verify needs --input and --type push or pub") }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CFEFailure(code: CFEFailure.badInput, description: "cannot read \(file)")
        }
        let messages: [Message]
        do { messages = try Self.parse(String(decoding: data, as: UTF8.self), csv: file.lowercased().hasSuffix(".csv")) } catch {
            throw CFEFailure(code: CFEFailure.badInput, description: "\(file): \(error)")
        }
        guard !messages.isEmpty else { throw CFEFailure(code: CFEFailure.badInput, description: "\(file) holds no messages") }

        // Where and how to send: what the daemon says about itself, unless told.
        var inputText = input ?? "tcp://127.0.0.1:5555"
        var kind: ZMQSocket.Kind = type == "pub" ? .pub : .push
        var before = 0
        var start0: HealthBody?
        if !noVerify {
            let status = try client.status()
            start0 = status.health
            before = Int(status.health.accounting.received)
            if input == nil, let first = status.config.inputs.first { inputText = Self.connectable(first) }
            if type == "auto" { kind = status.config.input_type == "pull" ? .push : .pub }
        }
        let target: Endpoint
        do { target = try Endpoint(parsing: inputText, defaultMode: .connect) } catch { throw ValidationError("\(error)") }

        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, kind: kind)
        try socket.setSendHighWaterMark(0)
        try socket.setSendTimeout(5000)
        try client.curve.apply(to: socket)
        try socket.attach(target)

        // PUB/SUB needs a moment before messages flow ("slow joiner"): probe until the
        // daemon counts one, so that the replay's first messages are not dropped. (PUSH
        // queues until the connection is up and loses nothing.)
        var probes = 0
        if !noVerify && kind == .pub {
            let deadline = Date().addingTimeInterval(5)
            var seen = before
            while seen == before {
                guard Date() < deadline else {
                    throw CFEFailure(code: CFEFailure.refused, description:
                        "the daemon received none of \(probes) ping messages sent to \(target.address) (\(kind == .pub ? "pub" : "push")): is that its input endpoint and type?")
                }
                guard try socket.send(frames: Self.ping) else {
                    throw CFEFailure(code: CFEFailure.unavailable, description: "no peer at \(target.address) took the message within 5 s")
                }
                probes += 1
                Thread.sleep(forTimeInterval: 0.1)
                seen = try received()
            }
            before = seen
        } else if kind == .pub {
            Thread.sleep(forTimeInterval: 0.5)
        }

        var progress = Progress(total: messages.count, enabled: !quiet)
        let start = Date()
        for group in Self.groups(messages, batch: batch) {
            let i = group.range.lowerBound
            if rate > 0 {
                let wait = start.addingTimeInterval(Double(i) / rate).timeIntervalSinceNow
                if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            }
            guard try socket.send(frames: [Array(group.topic.utf8), group.body]) else {
                throw CFEFailure(code: CFEFailure.unavailable, description: "no peer at \(target.address) took message \(i + 1) within 5 s")
            }
            progress.update(group.range.upperBound)
        }
        progress.finish()
        socket.close(linger: 10_000)   // let the queue drain before exiting
        guard !noVerify else { return }

        // Every message sent must show in the daemon's `received` count.
        let deadline = Date().addingTimeInterval(10 + Double(messages.count) / 20_000)
        var got = try received() - before
        while got < messages.count && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
            got = try received() - before
        }
        let seconds = Date().timeIntervalSince(start)
        guard got >= messages.count else {
            throw CFEFailure(code: CFEFailure.refused, description:
                "the daemon received \(got) of the \(messages.count) messages sent (a PUB input drops what exceeds its high-water mark; use --input-type pull and --type push to lose nothing)")
        }
        // What became of them, from the daemon's counters (anything another producer sent
        // meanwhile is counted too).
        let outcome = Self.outcome(from: start0!, to: try client.status().health)
        let line = String(format: "replay: %d messages sent to %@ and received (%.0f msg/s): ", messages.count, target.address,
                          Double(messages.count) / max(seconds, 1e-6)) + outcome.summary
        if outcome.rejected > 0 {
            throw CFEFailure(code: CFEFailure.refused, description: line + " (the daemon's error events give each one's reason and id)")
        }
        if !quiet { FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }

    /// What one send carries: a message as read, or up to `batch` consecutive preds (or
    /// labels) as one batch. Messages of other topics go alone and end a batch, so the
    /// order of the file is kept.
    struct Group {
        var topic: String
        var body: [UInt8]
        var range: Range<Int>
    }

    static func groups(_ messages: [Message], batch: Int) -> [Group] {
        guard batch > 1 else { return messages.enumerated().map { Group(topic: $1.topic, body: $1.body, range: $0..<($0 + 1)) } }
        var out: [Group] = []
        var k = 0
        while k < messages.count {
            let topic = messages[k].topic
            guard topic == "pred" || topic == "label" else {
                out.append(Group(topic: topic, body: messages[k].body, range: k..<(k + 1)))
                k += 1
                continue
            }
            var end = k
            while end < messages.count && end - k < batch && messages[end].topic == topic { end += 1 }
            var body = Array(#"{"items":["#.utf8)
            for j in k..<end {
                if j > k { body.append(UInt8(ascii: ",")) }
                body += messages[j].body
            }
            body += Array("]}".utf8)
            out.append(Group(topic: topic + "_batch", body: body, range: k..<end))
            k = end
        }
        return out
    }

    /// What the daemon did with what it received between two health views.
    struct Outcome {
        var preds: UInt64, labelsLearnt: UInt64, unmatched: UInt64, rejected: UInt64
        var byReason: [String: UInt64]

        var summary: String {
            var s = "\(preds) preds scored, \(labelsLearnt) labels learnt, \(unmatched) labels unmatched, \(rejected) rejected"
            if !byReason.isEmpty {
                s += " (" + byReason.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
            }
            return s
        }
    }

    static func outcome(from a: HealthBody, to b: HealthBody) -> Outcome {
        var byReason: [String: UInt64] = [:]
        for (reason, n) in b.rejected_by_reason where n > a.rejected_by_reason[reason, default: 0] {
            byReason[reason] = n - a.rejected_by_reason[reason, default: 0]
        }
        func delta(_ x: UInt64, _ y: UInt64) -> UInt64 { y >= x ? y - x : 0 }
        return Outcome(preds: delta(a.accounting.preds, b.accounting.preds),
                       labelsLearnt: delta(a.accounting.labels_learnt, b.accounting.labels_learnt),
                       unmatched: delta(a.accounting.labels_unmatched, b.accounting.labels_unmatched),
                       rejected: byReason.values.reduce(0, +), byReason: byReason)
    }

    /// The address to connect to for an endpoint the daemon binds ("@tcp://*:5555" ->
    /// "tcp://127.0.0.1:5555").
    static func connectable(_ bound: String) -> String {
        var text = bound.hasPrefix("@") || bound.hasPrefix(">") ? String(bound.dropFirst()) : bound
        for wildcard in ["tcp://*:", "tcp://0.0.0.0:"] where text.hasPrefix(wildcard) {
            text = "tcp://127.0.0.1:" + text.dropFirst(wildcard.count)
        }
        return text
    }

    struct ParseError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    struct Message {
        var topic: String
        var body: [UInt8]
    }

    static func parse(_ text: String, csv: Bool) throws -> [Message] {
        var out: [Message] = []
        let lines = text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        if csv {
            guard let header = lines.first?.split(separator: ",", omittingEmptySubsequences: false)
                .map({ $0.trimmingCharacters(in: .whitespaces) }) else { return [] }
            guard let idColumn = header.firstIndex(of: "id") else { throw ParseError("CSV header has no id column") }
            let special: Set<String> = ["id", "topic", "ts", "label"]
            for (n, line) in lines.dropFirst().enumerated() {
                let cells = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard cells.count == header.count else {
                    throw ParseError("CSV line \(n + 2): \(cells.count) cells, header has \(header.count)")
                }
                var body: [String: Any] = ["id": cells[idColumn]]
                var preds: [String: Double] = [:]
                for (k, name) in header.enumerated() where !cells[k].isEmpty && name != "id" && name != "topic" {
                    if special.contains(name) {
                        guard let v = Double(cells[k]) else { throw ParseError("CSV line \(n + 2): \(name) '\(cells[k])' is not a number") }
                        body[name] = name == "label" ? Int(v) as Any : v as Any
                    } else {
                        guard let v = Double(cells[k]) else { throw ParseError("CSV line \(n + 2): \(name) '\(cells[k])' is not a number") }
                        preds[name] = v
                    }
                }
                if !preds.isEmpty { body["preds"] = preds }
                let explicit = header.firstIndex(of: "topic").map { cells[$0] }.flatMap { $0.isEmpty ? nil : $0 }
                let topic = explicit ?? (preds.isEmpty ? "label" : "pred")
                out.append(Message(topic: topic, body: Array(try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]))))
            }
        } else {
            for (n, line) in lines.enumerated() {
                guard var obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                    throw ParseError("line \(n + 1) is not a JSON object")
                }
                if let topic = obj.removeValue(forKey: "topic") as? String {
                    out.append(Message(topic: topic, body: Array(try JSONSerialization.data(withJSONObject: obj))))
                } else {
                    out.append(Message(topic: obj["preds"] != nil ? "pred" : "label", body: Array(line.utf8)))
                }
            }
        }
        return out
    }
}

/// A progress line on stderr: a bar on a terminal, plain lines otherwise.
struct Progress {
    let total: Int
    let enabled: Bool
    let terminal = isatty(STDERR_FILENO) != 0
    let start = Date()
    var lastShown = Date.distantPast
    var done = 0

    init(total: Int, enabled: Bool) {
        self.total = total
        self.enabled = enabled
    }

    mutating func update(_ n: Int) {
        done = n
        guard enabled, Date().timeIntervalSince(lastShown) >= (terminal ? 0.2 : 2) || n == total else { return }
        lastShown = Date()
        FileHandle.standardError.write(Data(line().utf8))
    }

    mutating func finish() {
        guard enabled else { return }
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    func line() -> String {
        let elapsed = max(Date().timeIntervalSince(start), 1e-6)
        let rate = Double(done) / elapsed
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let fraction = Double(done) / Double(max(total, 1))
        let text = String(format: "%d/%d msgs  %.0f msg/s  ETA %.1f s", done, total, rate, eta)
        guard terminal else { return "replay: \(text)\n" }
        let width = 30
        let filled = Int(fraction * Double(width))
        return "\r[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            + String(format: "%3.0f%% ", fraction * 100) + text
    }
}
