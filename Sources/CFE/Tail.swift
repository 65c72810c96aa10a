import ArgumentParser
import Foundation
import Transport

/// `cfe tail`: prints a daemon's output messages as `topic body` lines.
struct Tail: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a daemon's output messages (score, health, alert, error).")

    @Argument(help: "The daemon's output endpoint (connects).")
    var endpoint: String = "tcp://127.0.0.1:5556"

    @Option(name: .customLong("topic"), help: "Topic prefix to show; repeatable (default: all).")
    var topics: [String] = []

    @Option(help: "Exit after this many messages (0: run until interrupted).")
    var count: Int = 0

    @Option(help: "Exit after this many seconds (0: no limit).")
    var timeout: Double = 0

    func run() throws {
        let target: Endpoint
        do { target = try Endpoint(parsing: endpoint, defaultMode: .connect) } catch { throw ValidationError("\(error)") }
        let context = try ZMQContext()
        let sub = try ZMQSocket(context: context, kind: .sub)
        for t in topics.isEmpty ? [""] : topics { try sub.subscribe(t) }
        try sub.setReceiveTimeout(200)
        try sub.attach(target)
        let deadline = timeout > 0 ? Date().addingTimeInterval(timeout) : .distantFuture
        var seen = 0
        while Date() < deadline && (count == 0 || seen < count) {
            guard let frames = try sub.receiveFrames() else { continue }
            seen += 1
            let text = frames.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
            FileHandle.standardOutput.write(Data((text + "\n").utf8))
        }
    }
}
