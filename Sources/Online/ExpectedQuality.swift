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
    public static func averagePrecision(_ probabilities: [Float]) -> (ap: Double, positives: Double)? {
        averagePrecision(ranked: ranked(probabilities))
    }

    /// `averagePrecision` of probabilities already `ranked`.
    public static func averagePrecision(ranked sorted: [Float]) -> (ap: Double, positives: Double)? {
        guard !sorted.isEmpty else { return nil }
        var cumulative = 0.0, total = 0.0
        for (i, p) in sorted.enumerated() {
            let q = Double(p)
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
        operatingPoints(ranked: ranked(probabilities), rates: rates)
    }

    /// `operatingPoints` of probabilities already `ranked`.
    public static func operatingPoints(ranked sorted: [Float], rates: [Double]) -> [(precision: Double, recall: Double)?] {
        var cumulative = [Double](repeating: 0, count: sorted.count + 1)
        for (i, p) in sorted.enumerated() { cumulative[i + 1] = cumulative[i] + Double(p) }
        let all = cumulative.last ?? 0
        return rates.map { r in
            guard r > 0, r < 1, Double(sorted.count) * r >= 1, all > 0 else { return nil }
            let k = min(sorted.count, Int((Double(sorted.count) * r).rounded(.up)))
            return (cumulative[k] / Double(k), cumulative[k] / all)
        }
    }
}

extension ExpectedQuality {
    /// The finite probabilities clamped to [0, 1], highest first: what the estimates rank.
    ///
    /// A radix sort on the bit patterns (for floats ≥ +0 their order is the values'
    /// order): four passes of one byte, about six times faster than the comparison sort
    /// on the 5,000-value windows the health checks rank after every model update. Equal
    /// values are interchangeable in every sum taken over the ranking, so the result is
    /// the same as a comparison sort's.
    /// (Arrays, not any collection: a generic called from another module runs
    /// unspecialised, several times slower.)
    public static func ranked(_ probabilities: [Float]) -> [Float] {
        var keys: [UInt32] = []
        keys.reserveCapacity(probabilities.count)
        for p in probabilities where p.isFinite {
            // +0 for 0 and below (-0 too): its sign bit would rank it first.
            keys.append(p > 0 ? min(p, 1).bitPattern : 0)
        }
        let n = keys.count
        guard n > 1 else { return keys.map { Float(bitPattern: $0) } }
        var other = [UInt32](repeating: 0, count: n)
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: 256)
        defer { counts.deallocate() }
        keys.withUnsafeMutableBufferPointer { a in
            other.withUnsafeMutableBufferPointer { b in
                var from = a, to = b
                for shift in stride(from: 0, to: 32, by: 8) {
                    let s = UInt32(shift)
                    for k in 0..<256 { counts[k] = 0 }
                    for v in from { counts[Int((v >> s) & 0xFF)] += 1 }
                    // Descending: the highest byte value first.
                    var start = 0
                    for k in stride(from: 255, through: 0, by: -1) {
                        let c = counts[k]
                        counts[k] = start
                        start += c
                    }
                    for v in from {
                        let k = Int((v >> s) & 0xFF)
                        to[counts[k]] = v
                        counts[k] += 1
                    }
                    swap(&from, &to)
                }
            }
        }
        // Four passes: the result is back in `keys`.
        return keys.map { Float(bitPattern: $0) }
    }
}
