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
            throw CFEFailure(code: CFEFailure.unavailable, description: "the reply is not a JSON object")
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
            parts.append(String(format: "last checkpoint %.0f s ago (%@, %d pending, %d ms)", ago, Self.bytes(last["bytes"] as? Int ?? 0),
                                last["pending"] as? Int ?? 0, last["ms"] as? Int ?? 0))
        } else {
            parts.append("no checkpoint since start")
        }
        if p["checkpoint_in_progress"] as? Bool == true { parts.append("one being written") }
        if let failed = p["checkpoints_failed"] as? Int, failed > 0 { parts.append("\(failed) failed") }
        if let file = p["journal_file"] as? Int {
            parts.append("journal \(file): \(Self.bytes(p["journal_bytes"] as? Int ?? 0))")
        } else {
            parts.append("journal off")
        }
        if let error = p["journal_error"] as? String { parts.append("journal error: \(error)") }
        return "state: " + parts.joined(separator: ", ")
    }

    /// A size as people read it: bytes, kB, MB or GB (powers of 1000, one decimal).
    static func bytes(_ n: Int) -> String {
        let v = Double(n)
        if n < 1000 { return "\(n) B" }
        if v < 1e6 { return String(format: "%.1f kB", v / 1e3) }
        if v < 1e9 { return String(format: "%.1f MB", v / 1e6) }
        return String(format: "%.1f GB", v / 1e9)
    }
}
