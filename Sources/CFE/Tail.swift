import ArgumentParser
import Foundation
import Transport

/// `cfe tail`: prints a daemon's output messages as `topic body` lines.
struct Tail: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a daemon's output messages (score, health, alert, error).")

    @OptionGroup var curve: CurveOptions

    @Argument(help: "The daemon's output endpoint (connects).")
    var endpoint: String = "tcp://127.0.0.1:5556"

    @Option(name: .customLong("topic"), help: "Topic prefix to show; repeatable (default: all).")
    var topics: [String] = []

    @Option(help: "Exit after this many messages (0: run until interrupted).")
    var count: Int = 0

    @Option(help: "Exit after this many seconds (0: no limit).")
    var timeout: Double = 0

    func run() throws {
        let subscription = try OutputSubscription(endpoint, topics: topics.isEmpty ? [""] : topics, curve: curve)
        try subscription.read(count: count, timeout: timeout) { frames in
            let text = frames.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
            FileHandle.standardOutput.write(Data((text + "\n").utf8))
        }
    }
}
