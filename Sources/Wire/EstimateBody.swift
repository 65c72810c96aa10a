/// `health.estimate`: the quality expected of recent traffic before its labels arrive,
/// from its calibrated probabilities (docs/alerts.md, estimated_quality_drop): the
/// expected PR-AUC of the last `window` scored instances and of the `window` before
/// them, the positives each expects, the expected precision and recall of each alert
/// budget's share of recent traffic, and the same estimator over the labelled
/// instances of the quality window, beside whose realised PR-AUC (`pr_auc` in
/// `health`) it shows how good the estimate has been.
public struct EstimateBody: Codable, Sendable, Equatable {
    public struct Point: Codable, Sendable, Equatable {
        public var alert_rate: Double
        public var precision: Double?
        public var recall: Double?

        public init(alert_rate: Double, precision: Double?, recall: Double?) {
            self.alert_rate = alert_rate
            self.precision = precision
            self.recall = recall
        }
    }

    public var window: Int
    public var pr_auc: Double?
    public var pr_auc_before: Double?
    public var expected_positives: Double?
    public var expected_positives_before: Double?
    public var operating_points: [Point] = []
    /// The estimator applied to the labelled instances of the quality window.
    public var labelled_pr_auc: Double?

    public init(window: Int) { self.window = window }
}
