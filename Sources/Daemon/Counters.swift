/// Loss accounting: where every received message went. Persisted in checkpoints so
/// totals survive restarts.
struct Counters: Codable, Equatable, Sendable {
    /// Messages read from input sockets.
    var received: UInt64 = 0
    /// `score` messages published.
    var scored: UInt64 = 0
    /// Labels matched to a pending instance (or carried with their own preds) and learnt from.
    var labelled: UInt64 = 0
    /// Labels for ids that were not pending and carried no preds.
    var unmatchedLabels: UInt64 = 0
    /// Rejected messages by reason category (`json`, `field`, `topic`, `frames`, `size`, `limit`).
    var rejected: [String: UInt64] = [:]
    /// `error` events not published because of the rate limit.
    var errorsSuppressed: UInt64 = 0
    /// Instances that left the join buffer because it was full (scored early, not lost).
    var joinOverflow: UInt64 = 0
    /// Model updates performed.
    var updates: UInt64 = 0

    var rejectedTotal: UInt64 { rejected.values.reduce(0, +) }
}
