import ArgumentParser
import Foundation
import Transport
import Wire

/// `cfe status`: asks a daemon's control socket for its status.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a daemon's status (control socket).")

    @OptionGroup var client: ControlClient

    @Flag(help: "Print the raw JSON reply.")
    var json = false

    func run() throws {
        let (reply, raw) = try client.request(.status, as: StatusReply.self)
        if json {
            print(String(decoding: raw, as: UTF8.self))
            return
        }
        var state = WatchState()
        state.apply(health: reply.health)
        // A status reply carries no alert events: what fires is listed from its health.
        print(state.render(color: isatty(STDOUT_FILENO) != 0, recentAlerts: false), terminator: "")
        print(Self.persistenceLine(reply.persistence))
        if let line = reply.health.cluster.flatMap(Self.clusterLine) { print(line) }
    }

    /// With an election: this process's part, the leader, its epoch and the standbys.
    static func clusterLine(_ c: HealthBody.Cluster) -> String? {
        guard c.election != nil || c.epoch != nil else { return nil }
        var parts = [c.role + (c.election.map { " (\($0))" } ?? "")]
        parts.append("leader " + (c.leader ?? "none") + (c.epoch.map { " at epoch \($0)" } ?? ""))
        if let s = c.standbys { parts.append("standbys " + (s.isEmpty ? "none" : s.joined(separator: ", "))) }
        if let f = c.states_fenced, f > 0 { parts.append("\(f) states fenced") }
        if let e = c.etcd_error { parts.append("etcd: " + e) }
        return "cluster: " + parts.joined(separator: ", ")
    }

    /// One line on checkpoints and the journal.
    static func persistenceLine(_ p: Persistence, now: Double = Date().timeIntervalSince1970) -> String {
        var parts: [String] = []
        if let last = p.last_checkpoint {
            if last.restored == true {
                parts.append(String(format: "last checkpoint %.0f s ago, restored at start (%@, %d pending)", max(0, now - last.at),
                                    Self.bytes(last.bytes), last.pending))
            } else {
                parts.append(String(format: "last checkpoint %.0f s ago (%@, %d pending, %d ms)", max(0, now - last.at),
                                    Self.bytes(last.bytes), last.pending, last.ms))
            }
        } else {
            parts.append("no checkpoint yet")
        }
        if p.checkpoint_in_progress { parts.append("one being written") }
        if p.checkpoints_failed > 0 { parts.append("\(p.checkpoints_failed) failed") }
        if let file = p.journal_file {
            parts.append("journal \(file): \(Self.bytes(p.journal_bytes ?? 0))")
        } else {
            parts.append("journal off")
        }
        if let error = p.journal_error { parts.append("journal error: \(error)") }
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
