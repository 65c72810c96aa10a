/// The `alert` body: one change of state of one health condition.
public struct AlertBody: Codable, Sendable, Equatable {
    public var alert: String
    public var state: String
    public var severity: String
    public var ts: Double
    public var model_version: Int64
    public var reason: String
    public var metrics: [String: Double]
    public var action: String
    public var classifier: String?

    public init(alert: String, state: String, severity: String, ts: Double, model_version: Int64, reason: String,
                metrics: [String: Double], action: String, classifier: String? = nil) {
        self.alert = alert
        self.state = state
        self.severity = severity
        self.ts = ts
        self.model_version = model_version
        self.reason = reason
        self.metrics = metrics
        self.action = action
        self.classifier = classifier
    }
}

/// The `error` body: one rejected input message, or one rejected entry of a batch.
public struct ErrorBody: Codable, Sendable, Equatable {
    public var ts: Double
    public var topic: String?
    public var id: String?
    public var reason: String
    /// The entry's position in its batch, from 0 (absent for single messages and for a
    /// batch rejected as a whole).
    public var entry: Int?

    public init(ts: Double, topic: String?, id: String?, reason: String, entry: Int? = nil) {
        self.ts = ts
        self.topic = topic
        self.id = id
        self.reason = reason
        self.entry = entry
    }
}
