import ArgumentParser
import CZeroMQ
import Glibc
import Transport

/// Feeds a learner's forward input directly with `scored` messages (what scorers send it),
/// as fast as PUSH allows, to measure the learner's own bound without scorers in front.
struct Feed: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "PUSH scored instances (and labels) to a learner's forward endpoint.")

    @Option(help: "The learner's forward endpoint (connects).")
    var forward: String

    @Option(help: "Scored instances to send.")
    var count: Int = 200_000

    @Option(help: "Labels per instance, for earlier instances (0 to 1).")
    var labels: Double = 0

    @Option(help: "Id prefix: distinct per run against one learner.")
    var tag: String = "f"

    func run() throws {
        guard tag.utf8.count == 1 else { throw ValidationError("--tag is one character") }
        let context = try ZMQContext()
        let push = try ZMQSocket(context: context, kind: .push)
        try push.setSendHighWaterMark(10_000)
        try push.attach(try Endpoint(parsing: forward, defaultMode: .connect))
        var bodies = BodyTemplates(classifiers: 10, runTag: tag.utf8.first!)
        var trailer = [UInt8](repeating: 0, count: ScoredTrailer.size)
        let scored = ScoredTrailer.topic.withUTF8Buffer { Array($0) }, label = Array("label".utf8)
        let h = push.handle
        var debt = 0.0
        for i in 0..<count {
            // Varied scores, so the learner's score-variance check sees a live scorer.
            ScoredTrailer.write(score: Double(i % 97) / 97, average: 0.5, arrival: 1.7e9, into: &trailer)
            bodies.pred(i) { body in
                _ = scored.withUnsafeBytes { zmq_send(h, $0.baseAddress, $0.count, ZMQ_SNDMORE) }
                _ = zmq_send(h, body.baseAddress, body.count, ZMQ_SNDMORE)
                _ = trailer.withUnsafeBytes { zmq_send(h, $0.baseAddress, $0.count, 0) }
            }
            debt += labels
            if debt >= 1 && i >= 1000 {
                debt -= 1
                bodies.label(i - 1000) { body in
                    _ = label.withUnsafeBytes { zmq_send(h, $0.baseAddress, $0.count, ZMQ_SNDMORE) }
                    _ = zmq_send(h, body.baseAddress, body.count, 0)
                }
            }
        }
        push.close(linger: 60_000)
    }
}
