/// Prequential quality over the last `window` labelled instances: the average precision
/// (PR-AUC) of the published scores and of the simple average, each taken at scoring time.
public struct RollingQuality: Sendable, Codable, Equatable {
    public let window: Int
    private var scores: [Float] = []
    private var baselines: [Float] = []
    private var labels: [Int8] = []
    private var next = 0

    public init(window: Int) { self.window = max(1, window) }

    public var count: Int { labels.count }
    /// Positives in the window.
    public var positives: Int { labels.reduce(0) { $0 + Int($1) } }

    public mutating func record(score: Double, baseline: Double, label: Int8) {
        if labels.count < window {
            scores.append(Float(score)); baselines.append(Float(baseline)); labels.append(label)
        } else {
            scores[next] = Float(score); baselines[next] = Float(baseline); labels[next] = label
        }
        next = (next + 1) % window
    }

    /// PR-AUC of the published scores; nil until the window holds both classes.
    public var prAUC: Double? { RollingQuality.averagePrecision(scores, labels) }
    /// PR-AUC of the simple average over the same instances.
    public var baselinePrAUC: Double? { RollingQuality.averagePrecision(baselines, labels) }

    /// Average precision as scikit-learn defines it: sum over thresholds of
    /// (R_k - R_{k-1}) P_k, with tied scores forming one threshold.
    public static func averagePrecision<S: BinaryFloatingPoint>(_ scores: [S], _ labels: [Int8]) -> Double? {
        let positives = labels.reduce(0) { $0 + Int($1) }
        guard positives > 0, positives < labels.count else { return nil }
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        var tp = 0, fp = 0, ap = 0.0, lastRecall = 0.0
        var k = 0
        while k < order.count {
            let s = scores[order[k]]
            while k < order.count && scores[order[k]] == s {
                if labels[order[k]] == 1 { tp += 1 } else { fp += 1 }
                k += 1
            }
            let recall = Double(tp) / Double(positives)
            ap += (recall - lastRecall) * Double(tp) / Double(tp + fp)
            lastRecall = recall
        }
        return ap
    }
}
