import ArgumentParser
import Foundation

/// `cfe checkpoint`: asks the daemon to write a checkpoint now and waits until it is durable
/// (before a backup, a host move or a risky change).
struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint", abstract: "Write a daemon's checkpoint now; returns once it is on disk.")

    @OptionGroup var client: ControlClient

    @Flag(help: "Print the raw JSON reply.")
    var json = false

    func run() throws {
        // A checkpoint of millions of pending instances takes seconds on a slow disk.
        try client.run(.checkpoint, json: json, defaultTimeout: 300) { reply in
            "checkpoint written: \(reply.path ?? "?") (\(Status.bytes(reply.bytes ?? 0)), model_version \(reply.model_version ?? 0))"
        }
    }
}
