/// The two input topics of docs/protocol.md.
public enum InputTopic: String, Sendable {
    case pred
    case label
}

/// One classifier's probability for the positive class.
public struct Reading: Sendable, Equatable {
    public var name: String
    public var value: Double

    public init(name: String, value: Double) {
        self.name = name
        self.value = value
    }
}

/// A decoded and validated `pred` or `label` message.
///
/// Decoding fills an existing value in place, so a receive loop that reuses one
/// `InputMessage` keeps its storage from message to message.
public struct InputMessage: Sendable, Equatable {
    public var topic: InputTopic = .pred
    public var id: String = ""
    /// Event time in seconds since the Unix epoch, when the producer gave one.
    public var ts: Double?
    /// Reported probabilities; empty when a `label` message carries none.
    public var preds: [Reading] = []
    /// 0 or 1 when known.
    public var label: Int8?

    public init() {}

    public init(topic: InputTopic, id: String, ts: Double? = nil, preds: [Reading] = [], label: Int8? = nil) {
        self.topic = topic
        self.id = id
        self.ts = ts
        self.preds = preds
        self.label = label
    }
}

/// Why an input message was rejected, phrased for the `error` topic.
public struct DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A precise reason, e.g. `preds.xgb: 1.7 is outside [0, 1]`.
    public var reason: String
    /// The topic when it was recognised.
    public var topic: String?
    /// The message id when it could be read before the fault.
    public var id: String?
    /// A short, stable category for counters (`json`, `field`, `topic`, `frames`, `size`, `limit`).
    public var kind: String
    /// The entry's position in its batch (`pred_batch`, `label_batch`), from 0.
    public var entry: Int?

    public init(_ reason: String, kind: String, topic: String? = nil, id: String? = nil, entry: Int? = nil) {
        self.reason = reason
        self.kind = kind
        self.topic = topic
        self.id = id
        self.entry = entry
    }

    public var description: String { reason }
}
