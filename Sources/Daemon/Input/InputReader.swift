import Foundation
import Logging
import Online
import Transport

/// Reads input messages from a socket into one reused buffer, decodes and validates them
/// (rejecting with a reason what does not pass), and hands them to the core; batches go
/// through the `BatchReader`, entry by entry. A scorer's preds and labels then go on to
/// its learner with the bytes as received.
struct InputReader {
    private var decoder: MessageDecoder
    private var message = InputMessage()
    private var batches: BatchReader
    /// The received frames; the third holds a scorer's `scored` trailer (learner's
    /// forward input).
    private(set) var frames: MultipartMessage
    private let maxMessageBytes: Int
    private let logger: Logger

    init(config: DaemonConfiguration, logger: Logger) {
        decoder = MessageDecoder(limits: InputLimits(maxIdBytes: 256, maxPreds: config.model.maxClassifiers, maxDepth: 16))
        // The third frame: a scorer's trailer, one per entry of a `scored_batch`.
        frames = MultipartMessage(capacities: [64, config.maxInputBodyBytes, ScoredTrailer.size * config.maxBatchEntries + 8])
        maxMessageBytes = config.maxMessageBytes
        batches = BatchReader(maxEntries: config.maxBatchEntries, maxBytes: config.maxBatchBytes)
        self.logger = logger
    }

    /// Reads up to a bounded number of waiting messages, so one busy input cannot starve
    /// the others or the control socket. `forward`: the learner's input from its scorers,
    /// which also carries `scored` instances.
    mutating func drain<S>(_ socket: ZMQSocket, forward: Bool, core: DaemonCore<S>, scorer: ScorerLink?) {
        for _ in 0..<4096 {
            do {
                guard try socket.receive(into: &frames, dontWait: true) else { return }
            } catch {
                logger.error("receive failed: \(error)")
                return
            }
            core.received()
            let started = Clock.nanoseconds()
            if forward, frames.frameCount == 3, !frames.isTruncated(0), frames.withFrame(0, ScoredTrailer.isTopic) {
                handleScored(core: core)
            } else if forward, frames.frameCount == 3, !frames.isTruncated(0), frames.withFrame(0, ScoredTrailer.isBatchTopic) {
                handleScoredBatch(core: core)
            } else {
                handle(core: core, scorer: scorer, started: started)
            }
        }
    }

    /// Handles a two-frame message as if it had been received (`--cost-floor`: the whole
    /// per-message path without the socket).
    mutating func process<S>(topic: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer, core: DaemonCore<S>) {
        frames.fill(topic: topic, body: body)
        core.received()
        handle(core: core, scorer: nil, started: Clock.nanoseconds())
    }

    private mutating func handle<S>(core: DaemonCore<S>, scorer: ScorerLink?, started: Int64) {
        guard frames.frameCount == 2 else {
            core.metrics.receivedOther.increment()
            core.reject(DecodeError("expected 2 frames (topic, body), got \(frames.frameCount)", kind: "frames"))
            return
        }
        let topic: InputTopic? = frames.isTruncated(0) ? nil : frames.withFrame(0) { MessageDecoder.topic($0) }
        guard let topic else {
            if !frames.isTruncated(0) && frames.withFrame(0, { MessageDecoder.isPing($0) }) {
                core.ping()
                return
            }
            if !frames.isTruncated(0), let batch = frames.withFrame(0, { BatchTopic.recognise($0) }) {
                handleBatch(batch, core: core, scorer: scorer)
                return
            }
            core.metrics.receivedOther.increment()
            let shown = frames.withFrame(0) { MessageDecoder.describeTopic($0) }
            core.reject(DecodeError("unknown topic '\(shown)' (expected pred, label, pred_batch, label_batch or ping)", kind: "topic"))
            return
        }
        if topic == .pred { core.metrics.receivedPred.increment() } else { core.metrics.receivedLabel.increment() }
        if frames.isTruncated(1) || frames.lengths[1] > maxMessageBytes {
            core.reject(DecodeError("body of \(frames.lengths[1]) bytes exceeds input.max_message_bytes (\(maxMessageBytes))",
                                    kind: "size", topic: topic.rawValue))
            return
        }
        do {
            try frames.withFrame(1) { body in try decoder.decode(topic: topic, body: body, into: &message) }
        } catch let error as DecodeError {
            core.reject(error)
            return
        } catch {
            core.reject(DecodeError("\(error)", kind: "json", topic: topic.rawValue))
            return
        }
        switch topic {
        case .pred:
            let scored = core.pred(message)
            if let scored, let scorer {
                frames.withFrame(1) { body in scorer.forwardScored(scored, message: message, body: body, core: core) }
            }
            core.metrics.scoringDuration.recordNanoseconds(Clock.nanoseconds() - started)
        case .label:
            if core.label(message) == .forward, let scorer {
                frames.withFrame(1) { body in scorer.forwardLabel(message, body: body, core: core) }
            }
        }
    }

    private mutating func handleBatch<S>(_ topic: BatchTopic, core: DaemonCore<S>, scorer: ScorerLink?) {
        let length = frames.lengths[1], truncated = frames.isTruncated(1)
        frames.withFrame(1) { body in
            batches.read(topic, body: body, length: length, truncated: truncated, decoder: &decoder, message: &message,
                         core: core, scorer: scorer)
        }
    }

    /// Learner: a `scored_batch` from a scorer (topic, batch body, a trailer per entry).
    private mutating func handleScoredBatch<S>(core: DaemonCore<S>) {
        let truncated = frames.isTruncated(1) || frames.isTruncated(2)
        frames.withFrame(1) { body in
            frames.withFrame(2) { trailers in
                batches.readScored(body: body, trailers: trailers, truncated: truncated, decoder: &decoder, message: &message,
                                   core: core)
            }
        }
    }

    /// Learner: a `scored` message from a scorer (topic, pred body, 24-byte trailer).
    private mutating func handleScored<S>(core: DaemonCore<S>) {
        core.metrics.receivedPred.increment()
        guard !frames.isTruncated(1), !frames.isTruncated(2), let t = frames.withFrame(2, { ScoredTrailer.read($0) }) else {
            core.reject(DecodeError("scored: malformed message from a scorer (expected topic, pred body, 24-byte trailer)",
                                    kind: "frames", topic: "scored"))
            return
        }
        do {
            try frames.withFrame(1) { body in try decoder.decode(topic: .pred, body: body, into: &message) }
        } catch let error as DecodeError {
            core.reject(error)
            return
        } catch {
            core.reject(DecodeError("\(error)", kind: "json", topic: "scored"))
            return
        }
        core.scored(message, score: t.score, average: t.average, arrival: t.arrival)
    }
}
