import Online
import Transport

/// Turns one `pred_batch` or `label_batch` body into its instances: finds the entries,
/// decodes each as a `pred` or `label` body and hands it to the core exactly as a single
/// message would be. A bad entry is rejected alone (an `error` naming its position and
/// id, counted by reason); its neighbours go on. The scores the batch produces leave in
/// one `score_batch` message, in the order scored.
///
/// Accounting treats a batch as its instances: the message was counted once as received,
/// and each entry beyond the first adds one, so every entry lands in exactly one bucket.
struct BatchReader {
    private var splitter: BatchSplitter
    private let maxBytes: Int

    init(maxEntries: Int, maxBytes: Int, maxDepth: Int = 16) {
        splitter = BatchSplitter(maxEntries: maxEntries, maxDepth: maxDepth)
        self.maxBytes = maxBytes
    }

    /// Reads `body` (`truncated`: it was longer than the receive buffer, `length` bytes).
    /// A scorer passes each entry's instance or label on to its learner, as for single
    /// messages.
    mutating func read<S>(_ topic: BatchTopic, body: UnsafeRawBufferPointer, length: Int, truncated: Bool,
                          decoder: inout MessageDecoder, message: inout InputMessage, core: DaemonCore<S>,
                          scorer: ScorerLink? = nil) {
        if topic == .predBatch { core.metrics.receivedPredBatch.increment() } else { core.metrics.receivedLabelBatch.increment() }
        if truncated || length > maxBytes {
            core.reject(DecodeError("body of \(length) bytes exceeds input.max_batch_bytes (\(maxBytes))", kind: "size",
                                    topic: topic.rawValue))
            return
        }
        do {
            try splitter.split(body, topic: topic)
        } catch {
            core.reject(error)
            return
        }
        let entries = splitter.entries
        core.receivedBatch(entries: entries.count + splitter.beyond)
        let entryTopic = topic.entryTopic
        let counter = entryTopic == .pred ? core.metrics.receivedPred : core.metrics.receivedLabel
        counter.increment(by: Int64(entries.count + splitter.beyond))
        core.beginBatch()
        defer { core.endBatch() }
        for (k, range) in entries.enumerated() {
            let entry = UnsafeRawBufferPointer(rebasing: body[range])
            do {
                try decoder.decode(topic: entryTopic, body: entry, into: &message)
            } catch {
                var e = error
                e.topic = topic.rawValue
                e.entry = k
                core.reject(e)
                continue
            }
            core.batchEntry = (topic, k)
            defer { core.batchEntry = nil }
            switch entryTopic {
            case .pred:
                let started = Clock.nanoseconds()
                let scored = core.pred(message)
                if let scored, let scorer { scorer.forwardScored(scored, message: message, body: entry, core: core) }
                core.metrics.scoringDuration.recordNanoseconds(Clock.nanoseconds() - started)
            case .label:
                if core.label(message) == .forward, let scorer { scorer.forwardLabel(message, body: entry, core: core) }
            }
        }
        if splitter.beyond > 0 {
            let first = entries.count
            core.reject(DecodeError("items[\(first)...]: \(splitter.beyond) entries beyond input.max_batch (\(splitter.maxEntries)) were not read",
                                    kind: "limit", topic: topic.rawValue, entry: first), count: splitter.beyond)
        }
    }
}
