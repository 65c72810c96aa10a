import ArgumentParser
import CZeroMQ
import Glibc
import Transport

nonisolated(unsafe) private var relayStop: Int32 = 0

/// A do-nothing relay: SUB (bound) to PUB (bound), every multipart message forwarded
/// unchanged without copying. The cost of one ZeroMQ hop and nothing else.
struct Relay: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Forward every message from a SUB to a PUB socket unchanged.")

    @Option(help: "Endpoint the SUB socket binds.")
    var input: String

    @Option(help: "Endpoint the PUB socket binds.")
    var output: String

    @Option(help: "High-water marks, as the daemon's defaults (input.rcvhwm, output.sndhwm).")
    var hwm: Int32 = 100_000

    func run() throws {
        signal(SIGTERM) { _ in relayStop = 1 }
        signal(SIGINT) { _ in relayStop = 1 }
        let context = try ZMQContext()
        let sub = try ZMQSocket(context: context, kind: .sub)
        let pub = try ZMQSocket(context: context, kind: .pub)
        try sub.setReceiveHighWaterMark(hwm)
        try sub.subscribe("")
        try sub.setReceiveTimeout(200)
        try pub.setSendHighWaterMark(hwm)
        try sub.bind(input)
        try pub.bind(output)
        FileDescriptorOut.line("relay ready \(input) -> \(output)")
        var msg = zmq_msg_t()
        zmq_msg_init(&msg)
        defer { zmq_msg_close(&msg) }
        var forwarded = 0
        while relayStop == 0 {
            if zmq_msg_recv(&msg, sub.handle, 0) < 0 { continue }   // timeout or signal
            var more = zmq_msg_more(&msg) != 0
            zmq_msg_send(&msg, pub.handle, more ? ZMQ_SNDMORE : 0)
            while more {
                zmq_msg_recv(&msg, sub.handle, 0)
                more = zmq_msg_more(&msg) != 0
                zmq_msg_send(&msg, pub.handle, more ? ZMQ_SNDMORE : 0)
            }
            forwarded += 1
        }
        print("relay stopped after \(forwarded) messages")
    }
}

/// Unbuffered lines on stdout (the benchmark script waits for "relay ready").
enum FileDescriptorOut {
    static func line(_ text: String) {
        let bytes = Array((text + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
    }
}
