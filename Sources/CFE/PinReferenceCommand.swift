import ArgumentParser
import Foundation

/// `cfe pin-reference`: each classifier's next outputs become the reference its drift is
/// measured against (after a deliberate change upstream: a retrained or recalibrated
/// model); returns once the daemon's checkpoint holds the change.
struct PinReferenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pin-reference",
        abstract: "Make each classifier's next outputs the reference of classifier_drift; returns once checkpointed.")

    @OptionGroup var client: ControlClient

    @Flag(help: "Print the raw JSON reply.")
    var json = false

    func run() throws {
        try client.run(.pinReference, json: json, defaultTimeout: 300) { reply in
            "drift references pinned: each classifier's next outputs make its reference (checkpoint \(reply.path ?? "?"), model_version \(reply.model_version ?? 0))"
        }
    }
}
