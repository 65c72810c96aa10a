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
    /// A scorer passes the entries' instances and labels on to its learner, gathered into
    /// one `scored_batch` and one `label_batch`.
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
        scorer?.beginBatch()
        defer {
            core.endBatch()
            scorer?.endBatch(core: core)
        }
        for (k, range) in entries.enumerated() {
            let entry = UnsafeRawBufferPointer(rebasing: body[range])
            guard Self.decode(entry, k, as: entryTopic, in: topic.rawValue, decoder: &decoder, into: &message, core: core) else { continue }
            core.batchEntry = (topic, k)
            defer { core.batchEntry = nil }
            switch entryTopic {
            case .pred:
                let started = Clock.nanoseconds()
                let scored = core.pred(message)
                if let scored, let scorer { scorer.addScored(scored, message: message, body: entry, core: core) }
                core.metrics.scoringDuration.recordNanoseconds(Clock.nanoseconds() - started)
            case .label:
                if core.label(message) == .forward, let scorer { scorer.addLabel(message, body: entry) }
            }
        }
        if splitter.beyond > 0 {
            let first = entries.count
            core.reject(DecodeError("items[\(first)...]: \(splitter.beyond) entries beyond input.max_batch (\(splitter.maxEntries)) were not read",
                                    kind: "limit", topic: topic.rawValue, entry: first), count: splitter.beyond)
        }
    }

    /// Learner: a scorer's `scored_batch`: a batch body of the entries it scored and one
    /// 24-byte trailer per entry (score, average, arrival), in the same order.
    mutating func readScored<S>(body: UnsafeRawBufferPointer, trailers: UnsafeRawBufferPointer, truncated: Bool,
                                decoder: inout MessageDecoder, message: inout InputMessage, core: DaemonCore<S>) {
        core.metrics.receivedPredBatch.increment()
        func malformed(_ why: String) {
            core.reject(DecodeError("scored_batch: \(why) (scorers and their learner must share input.max_batch)",
                                    kind: "frames", topic: "scored_batch"))
        }
        if truncated { return malformed("larger than the receive buffer") }
        do {
            try splitter.split(body, topic: .predBatch)
        } catch {
            return malformed(error.reason)
        }
        let entries = splitter.entries
        guard splitter.beyond == 0, trailers.count == entries.count * ScoredTrailer.size else {
            return malformed("\(entries.count + splitter.beyond) entries and \(trailers.count) trailer bytes")
        }
        core.receivedBatch(entries: entries.count)
        core.metrics.receivedPred.increment(by: Int64(entries.count))
        for (k, range) in entries.enumerated() {
            let trailer = UnsafeRawBufferPointer(rebasing: trailers[(k * ScoredTrailer.size)..<((k + 1) * ScoredTrailer.size)])
            let entry = UnsafeRawBufferPointer(rebasing: body[range])
            guard Self.decode(entry, k, as: .pred, in: "scored_batch", decoder: &decoder, into: &message, core: core) else { continue }
            guard let t = ScoredTrailer.read(trailer) else {
                core.reject(DecodeError("scored_batch: entry \(k)'s trailer holds no valid score", kind: "frames",
                                        topic: "scored_batch", id: message.id, entry: k))
                continue
            }
            core.scored(message, score: t.score, average: t.average, arrival: t.arrival)
        }
    }

    /// Decodes entry `k` of a batch of topic `batch`, or rejects it naming the batch and
    /// the entry; true when `message` holds it.
    private static func decode<S>(_ entry: UnsafeRawBufferPointer, _ k: Int, as topic: InputTopic, in batch: String,
                                  decoder: inout MessageDecoder, into message: inout InputMessage, core: DaemonCore<S>) -> Bool {
        do {
            try decoder.decode(topic: topic, body: entry, into: &message)
            return true
        } catch {
            var e = error
            e.topic = batch
            e.entry = k
            core.reject(e)
            return false
        }
    }
}
