/// Why an instance scored what it did (`output.explain`).
public struct Explanation: Sendable, Equatable {
    /// The expert with the largest weight in the published combination: `learned`,
    /// `average`, or a classifier's name.
    public var expert: String
    /// Per known classifier, its share of the combination the score was published from:
    /// its weight in it times its value, summed over the experts (for the normalized
    /// output the shares add up to the combination v, score = σ(s (v − ½))).
    public var names: [String]
    public var shares: [Double]
    /// Classifiers that did not report: their value was filled in (`model.missing_fill`).
    public var filled: [String]
}

extension CFEnsemble {
    /// The explanation of the instance scored last (`score` must have been called for
    /// `entries` just before: it reads that instance's aggregator row). Allocates; only
    /// with `output.explain`.
    public func explain(_ entries: [Entry]) -> Explanation {
        let names = registry.names
        let v = lastReconstruction
        let m = min(names.count, v.count)
        var reported = [Bool](repeating: false, count: m)
        for e in entries where Int(e.classifier) < m { reported[Int(e.classifier)] = true }
        let nReported = Double(max(1, reported.filter { $0 }.count))
        let w = aggregator.w
        let total = w.prefix(m).reduce(0, +)
        var shares = [Double](repeating: 0, count: m)
        var expert = "learned"
        if config.scoreOutput == .logistic {
            for u in 0..<m { shares[u] = w[u] * v[u] }
        } else {
            let pi = experts.weights.isEmpty ? [1.0] : experts.weights
            for u in 0..<m {
                let learned = total > 1e-9 ? w[u] * v[u] / total : (reported[u] ? v[u] / nReported : 0)
                var share = pi[ExpertSelector.learned] * learned
                if pi.count > ExpertSelector.average, reported[u] { share += pi[ExpertSelector.average] * v[u] / nReported }
                let own = ExpertSelector.firstClassifier + u
                if own < pi.count { share += pi[own] * v[u] }
                shares[u] = share
            }
            if let top = pi.indices.max(by: { pi[$0] < pi[$1] }) {
                expert = top == ExpertSelector.learned ? "learned" : top == ExpertSelector.average ? "average"
                    : names[top - ExpertSelector.firstClassifier]
            }
        }
        return Explanation(expert: expert, names: Array(names.prefix(m)), shares: shares,
                           filled: (0..<m).filter { !reported[$0] }.map { names[$0] })
    }
}
