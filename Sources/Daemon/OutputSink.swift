import Logging
import Transport

/// The topics the daemon publishes (docs/protocol.md).
enum OutputTopic: String, Sendable {
    case score, alert, health, error
}

/// Where the core's output goes: the output PUB socket in the daemon, a recorder in
/// the in-process tests. The core is generic over it, so the scoring path calls the
/// concrete sink directly and allocates nothing.
protocol OutputSink {
    /// A `score` message (the hot path).
    mutating func score(_ message: ScoreMessage)
    /// An `alert`, `health` or `error` body, already encoded.
    mutating func publish(_ topic: OutputTopic, _ body: [UInt8])
    /// From here to `endBatch`, scores are gathered into one `score_batch` message
    /// (the core is processing a batch of input).
    mutating func beginBatch()
    /// Publishes the gathered scores, in the order scored, if there are any.
    mutating func endBatch()
}

/// The output PUB socket: two frames per message, never blocking (a slow subscriber
/// loses messages at its high-water mark, the daemon never waits for it). Without a
/// socket it encodes everything and sends nothing (`--cost-floor`).
struct PublisherSink: OutputSink {
    let socket: ZMQSocket?
    let logger: Logger
    private var writer = JSONWriter(capacity: 512)
    /// The `score_batch` body being gathered, and how many scores it holds (nil: no batch).
    private var batch = JSONWriter(capacity: 64 << 10)
    private var batched: Int?

    init(socket: ZMQSocket?, logger: Logger) {
        self.socket = socket
        self.logger = logger
    }

    mutating func score(_ message: ScoreMessage) {
        if let n = batched {
            batch.raw(n == 0 ? "{\"items\":[" : ",")
            message.append(to: &batch)
            batched = n + 1
            return
        }
        message.encode(into: &writer)
        send("score", writer.bytes)
    }

    mutating func beginBatch() {
        batch.reset()
        batched = 0
    }

    mutating func endBatch() {
        defer { batched = nil }
        guard let n = batched, n > 0 else { return }
        batch.raw("]}")
        send("score_batch", batch.bytes)
    }

    mutating func publish(_ topic: OutputTopic, _ body: [UInt8]) {
        switch topic {
        case .score: send("score", body)
        case .alert: send("alert", body)
        case .health: send("health", body)
        case .error: send("error", body)
        }
    }

    private func send(_ topic: StaticString, _ body: [UInt8]) {
        guard let socket else { return }
        do {
            let sentTopic = topic.withUTF8Buffer { t in
                Result { () throws(ZMQError) -> Bool in try socket.send(UnsafeRawBufferPointer(t), more: true, dontWait: true) }
            }
            guard try sentTopic.get() else { return }
            _ = try body.withUnsafeBytes { try socket.send($0, dontWait: true) }
        } catch {
            logger.error("publish failed: \(error)")
        }
    }
}
