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
        let reply = try client.requestObject(#"{"cmd":"rollback"}"#)
        if json { print(String(decoding: try JSONSerialization.data(withJSONObject: reply, options: [.sortedKeys]), as: UTF8.self)) }
        guard reply["ok"] as? Bool == true else { throw ControlRefused(description: reply["error"] as? String ?? "rollback failed") }
        if !json { print("rolled back to the last healthy model: model_version \(reply["model_version"] as? Int ?? 0)") }
    }
}
