/// Confidence-based performance estimation: what the PR-AUC (average precision) of a
/// set of scored instances is expected to be when their labels arrive, if each one's
/// published probability is right (docs/algorithm.md, "Quality without labels").
///
/// Ranked by probability, instance k is a positive with probability p_k, and then its
/// precision is (1 + the positives ranked above it) / k; so
/// E[Σ y_k · precision_k] = Σ_k p_k (1 + C_{k−1}) / k, C_k = p_1 + … + p_k, and the
/// estimate is that over the expected number of positives C_n (a ratio of
/// expectations, as the realised AP is a ratio).
public enum ExpectedQuality {
    /// The expected average precision of `probabilities`, and the expected positives
    /// among them; nil when there are none (or they expect no positive).
    public static func averagePrecision(_ probabilities: some Collection<Float>) -> (ap: Double, positives: Double)? {
        var sorted = probabilities.filter(\.isFinite)
        guard !sorted.isEmpty else { return nil }
        sorted.sort(by: >)
        var cumulative = 0.0, total = 0.0
        for (i, p) in sorted.enumerated() {
            let q = Double(min(1, max(0, p)))
            total += q * (1 + cumulative) / Double(i + 1)
            cumulative += q
        }
        guard cumulative > 0 else { return nil }
        return (min(1, total / cumulative), cumulative)
    }

    /// Expected precision and recall of flagging every instance with a probability of at
    /// least `threshold`: the expected positives above it over how many are flagged, and
    /// over all expected positives. Nil when none is flagged or none is expected.
    public static func precisionRecall(_ probabilities: some Collection<Float>, atOrAbove threshold: Double)
        -> (precision: Double, recall: Double)? {
        var flagged = 0, hits = 0.0, all = 0.0
        for p in probabilities where p.isFinite {
            let q = Double(min(1, max(0, p)))
            all += q
            if Double(p) >= threshold {
                flagged += 1
                hits += q
            }
        }
        guard flagged > 0, all > 0 else { return nil }
        return (hits / Double(flagged), hits / all)
    }
}

extension ExpectedQuality {
    /// For each alert budget r, the expected precision and recall of flagging the top
    /// ceil(r · n) of `probabilities` (nil while that is less than one instance or no
    /// positive is expected).
    public static func operatingPoints(_ probabilities: [Float], rates: [Double]) -> [(precision: Double, recall: Double)?] {
        let sorted = probabilities.filter(\.isFinite).sorted(by: >)
        var cumulative = [Double](repeating: 0, count: sorted.count + 1)
        for (i, p) in sorted.enumerated() { cumulative[i + 1] = cumulative[i] + Double(min(1, max(0, p))) }
        let all = cumulative.last ?? 0
        return rates.map { r in
            guard r > 0, r < 1, Double(sorted.count) * r >= 1, all > 0 else { return nil }
            let k = min(sorted.count, Int((Double(sorted.count) * r).rounded(.up)))
            return (cumulative[k] / Double(k), cumulative[k] / all)
        }
    }
}
