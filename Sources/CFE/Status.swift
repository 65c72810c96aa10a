import ArgumentParser
import Foundation
import Transport

/// `cfe status`: asks a daemon's control socket for its status.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a daemon's status (control socket).")

    @OptionGroup var client: ControlClient

    @Flag(help: "Print the raw JSON reply.")
    var json = false

    func run() throws {
        let body = try client.request(#"{"cmd":"status"}"#)
        if json {
            print(String(decoding: body, as: UTF8.self))
            return
        }
        guard let obj = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw ValidationError("reply is not a JSON object")
        }
        var state = WatchState()
        state.apply(topic: "health", body: obj)
        print(state.render(color: isatty(STDOUT_FILENO) != 0), terminator: "")
        if let p = obj["persistence"] as? [String: Any] { print(Self.persistenceLine(p)) }
    }

    /// One line on checkpoints and the journal.
    static func persistenceLine(_ p: [String: Any]) -> String {
        var parts: [String] = []
        if let last = p["last_checkpoint"] as? [String: Any], let at = last["at"] as? Double {
            let ago = max(0, Date().timeIntervalSince1970 - at)
            let mb = Double(last["bytes"] as? Int ?? 0) / 1_048_576
            parts.append(String(format: "last checkpoint %.0f s ago (%.1f MB, %d pending, %d ms)", ago, mb,
                                last["pending"] as? Int ?? 0, last["ms"] as? Int ?? 0))
        } else {
            parts.append("no checkpoint since start")
        }
        if p["checkpoint_in_progress"] as? Bool == true { parts.append("one being written") }
        if let failed = p["checkpoints_failed"] as? Int, failed > 0 { parts.append("\(failed) failed") }
        if let file = p["journal_file"] as? Int {
            parts.append(String(format: "journal %d: %.1f MB", file, Double(p["journal_bytes"] as? Int ?? 0) / 1_048_576))
        } else {
            parts.append("journal off")
        }
        if let error = p["journal_error"] as? String { parts.append("journal error: \(error)") }
        return "state: " + parts.joined(separator: ", ")
    }
}
