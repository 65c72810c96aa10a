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

/// The `error` body: one rejected input message.
public struct ErrorBody: Codable, Sendable, Equatable {
    public var ts: Double
    public var topic: String?
    public var id: String?
    public var reason: String

    public init(ts: Double, topic: String?, id: String?, reason: String) {
        self.ts = ts
        self.topic = topic
        self.id = id
        self.reason = reason
    }
}
