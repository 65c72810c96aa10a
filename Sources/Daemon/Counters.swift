/// Loss accounting: where every received message went. Persisted in checkpoints so
/// totals survive restarts.
struct Counters: Codable, Equatable, Sendable {
    /// Input received: every message counts one, except a batch, which counts one per
    /// entry (a batch rejected whole counts one).
    var received: UInt64 = 0
    /// `pred_batch` and `label_batch` messages whose entries were read.
    var batches: UInt64 = 0
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
    /// Valid `pred` messages (each scored, alone or joined with others of its id).
    var predMessages: UInt64 = 0
    /// Valid `label` messages learnt from (matched to a pending instance, or carrying preds).
    var labelMessages: UInt64 = 0

    /// Scorer: valid labels passed on to the learner (which matches and learns them).
    var labelsForwarded: UInt64 = 0
    /// Scorer: scored instances or labels not passed on because the learner's queue was full.
    var forwardDropped: UInt64 = 0
    /// `ping` messages (a producer checking that what it sends arrives).
    var pings: UInt64 = 0

    var rejectedTotal: UInt64 { rejected.values.reduce(0, +) }

    /// Every received message is in exactly one bucket; `waiting`: labels held by a
    /// learner for their instance (not in any other bucket yet).
    func balanced(waiting: Int = 0) -> Bool {
        received == predMessages + labelMessages + labelsForwarded + unmatchedLabels + rejectedTotal + pings + UInt64(waiting)
    }

    init() {}

    /// Decodes counters from any checkpoint version: fields added later default to 0.
    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func get(_ k: CodingKeys) throws -> UInt64 { try c.decodeIfPresent(UInt64.self, forKey: k) ?? 0 }
        received = try get(.received)
        scored = try get(.scored)
        labelled = try get(.labelled)
        unmatchedLabels = try get(.unmatchedLabels)
        rejected = try c.decodeIfPresent([String: UInt64].self, forKey: .rejected) ?? [:]
        errorsSuppressed = try get(.errorsSuppressed)
        joinOverflow = try get(.joinOverflow)
        updates = try get(.updates)
        predMessages = try get(.predMessages)
        labelMessages = try get(.labelMessages)
        labelsForwarded = try get(.labelsForwarded)
        forwardDropped = try get(.forwardDropped)
        pings = try get(.pings)
        batches = try get(.batches)
    }
}
