import Transport

/// What the core does for batch messages (`BatchReader` reads their entries).
extension DaemonCore {
    /// A batch message was split into `entries` instances: it was counted once as
    /// received, each entry counts as one.
    func receivedBatch(entries: Int) {
        countReceived(extra: UInt64(max(entries, 1) - 1))
        countBatch()
    }

    /// Scores published until `endBatch` leave in one `score_batch` message.
    func beginBatch() { sink.beginBatch() }
    func endBatch() { sink.endBatch() }
}
