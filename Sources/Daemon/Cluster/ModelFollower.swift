/// A scorer's view of the learner's model sequence (the client side of the Clone
/// pattern): decides which received states to apply, notices gaps, and when to ask for
/// a snapshot. With an election, states are fenced by epoch: none from a leadership
/// older than the newest one seen (in a state, or in etcd) is applied.
struct ModelFollower {
    enum Decision: Equatable {
        /// Apply this state (newer, or the first, or from a new lineage).
        case apply
        /// The version we have, again (a snapshot reply, or a change of fallback).
        case same
        /// Older than what we have.
        case ignore
        /// From a leadership older than the newest seen.
        case fenced
    }

    /// The highest leadership epoch seen (0: no election).
    private(set) var epoch: Int64 = 0
    /// The epoch of the state applied last: a new leadership's first state skips versions
    /// by design (it continues above the reservation), which is no miss.
    private var appliedEpoch: Int64 = 0
    /// States refused because their epoch was older.
    private(set) var fencedStates = 0

    private(set) var lineage: String?
    private(set) var version: Int64 = -1
    /// Versions skipped between two applied states of one lineage.
    private(set) var missedVersions: Int64 = 0
    /// Lineage changes seen (a learner that started from a fresh model).
    private(set) var lineageChanges = 0
    private var lastRequest = -Double.infinity
    private(set) var requestsSent = 0

    var hasModel: Bool { lineage != nil }

    /// etcd showed a leader of this epoch: older states are refused from now on.
    mutating func raise(epoch e: Int64) { epoch = max(epoch, e) }

    /// For a full state (update or snapshot reply) of leadership `e` (0 without an election).
    mutating func offer(lineage l: String, version v: Int64, epoch e: Int64 = 0) -> Decision {
        if e < epoch {
            fencedStates += 1
            return .fenced
        }
        if e > epoch { epoch = e }
        if e > appliedEpoch {
            // A new leader's first state is applied (it continues above every version
            // reserved before it, so its version is higher).
            appliedEpoch = e
            if let current = lineage, current != l { lineageChanges += 1 }
            lineage = l
            version = v
            return .apply
        }
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
    func isBehind(lineage l: String, version v: Int64, epoch e: Int64 = 0) -> Bool {
        if e < epoch { return false }
        if e > epoch { return true }
        guard let current = lineage else { return true }
        return l != current || v > version
    }

    /// The next request goes out at once (the leader changed).
    mutating func allowRequest() { lastRequest = -Double.infinity }

    /// Rate-limits snapshot requests to one per `interval` seconds.
    mutating func shouldRequest(now: Double, interval: Double) -> Bool {
        guard now - lastRequest >= interval else { return false }
        lastRequest = now
        requestsSent += 1
        return true
    }
}
