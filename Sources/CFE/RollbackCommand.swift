import ArgumentParser
import Foundation

/// `cfe rollback`: restores the model of the daemon's last healthy check (the remedy for a
/// `weight_collapse` whose cause is fixed), as a new model version.
struct RollbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback", abstract: "Restore a daemon's last healthy model (a new model_version).")

    @OptionGroup var client: ControlClient

    @Flag(help: "Print the raw JSON reply.")
    var json = false

    func run() throws {
        try client.run(.rollback, json: json) { reply in
            "rolled back to the last healthy model: model_version \(reply.model_version ?? 0)"
        }
    }
}
