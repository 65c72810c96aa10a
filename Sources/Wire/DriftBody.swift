/// `health.drift`: how far what flows through the daemon has moved, without labels
/// (docs/alerts.md: classifier_drift, score_drift). Each stream's population stability
/// index (absent while its windows fill), the bound it is judged against, and how many
/// values each window holds; the predicted positive rate (mean published probability) of
/// the recent window, of the window before it, and the positive rate of the labels.
public struct DriftBody: Codable, Sendable, Equatable {
    public struct Stream: Codable, Sendable, Equatable {
        public var psi: Double?
        public var bound: Double?
        public var reference: Int
        public var recent: Int

        public init(psi: Double?, bound: Double?, reference: Int, recent: Int) {
            self.psi = psi
            self.bound = bound
            self.reference = reference
            self.recent = recent
        }
    }

    /// By classifier name; the reference is pinned (`pin_reference`).
    public var classifiers: [String: Stream] = [:]
    /// The live model's scores; the reference trails the recent window.
    public var score: Stream?
    public var predicted_positive_rate: Double?
    public var reference_positive_rate: Double?
    public var labelled_positive_rate: Double?

    public init() {}
}
