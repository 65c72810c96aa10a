/// A scorer's view of the learner's model sequence (the client side of the Clone
/// pattern): decides which received states to apply, notices gaps, and when to ask for
/// a snapshot.
struct ModelFollower {
    enum Decision: Equatable {
        /// Apply this state (newer, or the first, or from a new lineage).
        case apply
        /// The version we have, again (a snapshot reply, or a change of fallback).
        case same
        /// Older than what we have.
        case ignore
    }

    private(set) var lineage: String?
    private(set) var version: Int64 = -1
    /// Versions skipped between two applied states of one lineage.
    private(set) var missedVersions: Int64 = 0
    /// Lineage changes seen (a learner that started from a fresh model).
    private(set) var lineageChanges = 0
    private var lastRequest = -Double.infinity
    private(set) var requestsSent = 0

    var hasModel: Bool { lineage != nil }

    /// For a full state (update or snapshot reply).
    mutating func offer(lineage l: String, version v: Int64) -> Decision {
        guard let current = lineage else {
            lineage = l
            version = v
            return .apply
        }
        if l != current {
            lineageChanges += 1
            lineage = l
            version = v
            return .apply
        }
        if v == version { return .same }
        guard v > version else { return .ignore }
        if v > version + 1 { missedVersions += v - version - 1 }
        version = v
        return .apply
    }

    /// For a heartbeat: true when it shows a newer model (or another lineage) than ours,
    /// i.e. an update was lost and a snapshot must be fetched.
    func isBehind(lineage l: String, version v: Int64) -> Bool {
        guard let current = lineage else { return true }
        return l != current || v > version
    }

    /// Rate-limits snapshot requests to one per `interval` seconds.
    mutating func shouldRequest(now: Double, interval: Double) -> Bool {
        guard now - lastRequest >= interval else { return false }
        lastRequest = now
        requestsSent += 1
        return true
    }
}
