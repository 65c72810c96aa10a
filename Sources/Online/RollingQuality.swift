/// Prequential quality over the last `window` labelled instances: the average precision
/// (PR-AUC) of the published scores and of the simple average, and the calibration of the
/// published probabilities (expected calibration error, Brier score), each taken at
/// scoring time.
public struct RollingQuality: Sendable, Codable, Equatable {
    public let window: Int
    private var scores: [Float] = []
    private var baselines: [Float] = []
    /// NaN for instances scored by a build without the probability.
    private var probabilities: [Float] = []
    private var labels: [Int8] = []
    private var next = 0

    public init(window: Int) { self.window = max(1, window) }

    private enum CodingKeys: String, CodingKey { case window, scores, baselines, probabilities, labels, next }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        window = try c.decode(Int.self, forKey: .window)
        scores = try c.decode([Float].self, forKey: .scores)
        baselines = try c.decode([Float].self, forKey: .baselines)
        labels = try c.decode([Int8].self, forKey: .labels)
        next = try c.decode(Int.self, forKey: .next)
        // Absent in checkpoints of earlier builds.
        probabilities = try c.decodeIfPresent([Float].self, forKey: .probabilities)
            ?? [Float](repeating: .nan, count: labels.count)
        guard probabilities.count == labels.count, scores.count == labels.count, baselines.count == labels.count else {
            throw DecodingError.dataCorruptedError(forKey: .labels, in: c, debugDescription: "quality window columns differ in length")
        }
    }

    public var count: Int { labels.count }

    /// The published probabilities of the window's instances (NaN for one recorded by a
    /// build without them), in no particular order.
    public var recordedProbabilities: [Float] { probabilities }
    /// Positives in the window.
    public var positives: Int { labels.reduce(0) { $0 + Int($1) } }

    /// Equal when every column is, an absent probability (NaN) equal to another absent one.
    public static func == (l: RollingQuality, r: RollingQuality) -> Bool {
        l.window == r.window && l.scores == r.scores && l.baselines == r.baselines && l.labels == r.labels && l.next == r.next
            && l.probabilities.count == r.probabilities.count
            && zip(l.probabilities, r.probabilities).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
    }

    public mutating func record(score: Double, baseline: Double, probability: Double = .nan, label: Int8) {
        if labels.count < window {
            scores.append(Float(score)); baselines.append(Float(baseline)); labels.append(label)
            probabilities.append(Float(probability))
        } else {
            scores[next] = Float(score); baselines[next] = Float(baseline); labels[next] = label
            probabilities[next] = Float(probability)
        }
        next = (next + 1) % window
    }

    /// Calibration of the probabilities in the window (those recorded with one): the
    /// expected calibration error over `bins` bins of equal count (the mean of |mean
    /// probability − positive share| over the bins, weighted by their size) and the Brier
    /// score; nil while fewer than `minimum` instances have a probability. `noise` is the
    /// ECE that sampling alone gives calibrated probabilities like these (expected
    /// |mean(y − p)| per bin, y ~ Bernoulli(p), normal approximation): an ECE well above
    /// it is miscalibration, not chance.
    ///
    /// With `map`, the probabilities are those `map` gives the window's scores and
    /// averages now (every instance counts), instead of those published.
    public func calibration(bins: Int = 10, minimum: Int = 100, map: Calibration? = nil)
        -> (ece: Double, brier: Double, noise: Double, count: Int)? {
        var pairs: [(Float, Int8)] = []
        pairs.reserveCapacity(labels.count)
        if let map {
            for k in labels.indices {
                pairs.append((Float(map.probability(score: Double(scores[k]), average: Double(baselines[k]))), labels[k]))
            }
        } else {
            for k in labels.indices where probabilities[k].isFinite { pairs.append((probabilities[k], labels[k])) }
        }
        guard pairs.count >= max(1, minimum) else { return nil }
        pairs.sort { $0.0 < $1.0 }
        let n = pairs.count, b = max(1, min(bins, n))
        var ece = 0.0, brier = 0.0, noise = 0.0
        for k in 0..<b {
            let lo = k * n / b, hi = (k + 1) * n / b
            var p = 0.0, y = 0.0, variance = 0.0
            for (q, l) in pairs[lo..<hi] {
                p += Double(q); y += Double(l)
                variance += Double(q) * (1 - Double(q))
                brier += (Double(q) - Double(l)) * (Double(q) - Double(l))
            }
            ece += abs(p - y) / Double(n)
            noise += (2 / Double.pi).squareRoot() * variance.squareRoot() / Double(n)
        }
        return (ece, brier / Double(n), noise, n)
    }

    /// PR-AUC of the published scores; nil until the window holds both classes.
    public var prAUC: Double? { RollingQuality.averagePrecision(scores, labels) }
    /// PR-AUC of the simple average over the same instances.
    public var baselinePrAUC: Double? { RollingQuality.averagePrecision(baselines, labels) }

    /// Precision and recall, over the window's labelled instances, of flagging every score
    /// >= `threshold` (scores as the model gave them at scoring time): nil precision while
    /// nothing is flagged, nil recall while the window holds no positive.
    public func precisionRecall(atThreshold threshold: Double) -> (precision: Double?, recall: Double?) {
        var flagged = 0, hits = 0, positives = 0
        for k in labels.indices {
            let positive = labels[k] == 1
            if positive { positives += 1 }
            if Double(scores[k]) >= threshold {
                flagged += 1
                if positive { hits += 1 }
            }
        }
        return (flagged > 0 ? Double(hits) / Double(flagged) : nil, positives > 0 ? Double(hits) / Double(positives) : nil)
    }

    /// The lowest score threshold (the largest recall) at which the precision over the
    /// window is at least `target`, counting tied scores as one threshold, with at least
    /// `minimumHits` positives flagged; nil when none reaches it.
    public func threshold(forPrecision target: Double, minimumHits: Int = 5)
        -> (threshold: Double, precision: Double, recall: Double)? {
        let positives = labels.reduce(0) { $0 + Int($1) }
        guard positives > 0 else { return nil }
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        var tp = 0, fp = 0, k = 0
        var best: (threshold: Double, precision: Double, recall: Double)?
        while k < order.count {
            let s = scores[order[k]]
            while k < order.count && scores[order[k]] == s {
                if labels[order[k]] == 1 { tp += 1 } else { fp += 1 }
                k += 1
            }
            let precision = Double(tp) / Double(tp + fp)
            if tp >= minimumHits && precision >= target {
                best = (Double(s), precision, Double(tp) / Double(positives))
            }
        }
        return best
    }

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
