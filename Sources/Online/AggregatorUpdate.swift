/// The aggregator's part of one mini-batch update, as values: its steps on the replay
/// buffer's problem and the expert selector's decision. `CFEnsemble.beginUpdate` builds
/// it (classifier factors, class counts and the buffer are already updated); `run` needs
/// nothing else, so it can run on another thread while the model goes on scoring with
/// the weights it had; `CFEnsemble.finishUpdate` takes the result in. Run at once, the
/// three are `CFEnsemble.update`.
public struct AggregatorUpdate: Sendable {
    /// The aggregator and selector as they were when the update began.
    var aggregator: Aggregator
    var experts: ExpertSelector
    /// The replay buffer's rows (positives, then negatives), labels and loss weights.
    let rows: Rows
    let labels: [Int8]
    let omega: [Double]
    /// Strength of the equal-weights prior (l2 / n_eff).
    let strength: Double
    let config: ModelConfiguration
    let measureLoss: Bool
    /// The selector's evidence, when a decision is due: the buffer rows picked, their
    /// averages and the learned expert's scores (nil: scored with the weights after the
    /// steps, for instances restored without one), and each sampled negative's weight.
    let decision: Decision?

    /// The rows as built when the update began, or the buffer to build them from when
    /// they depend on its instances' entries alone (`CFEnsemble.observedRow`).
    enum Rows: Sendable {
        case built([Double])
        case observed(ReplayBuffer, width: Int)

        var values: [Double] {
            switch self {
            case let .built(rows): rows
            case let .observed(replay, m): CFEnsemble.rows(of: replay, width: m) { CFEnsemble.observedRow($0, into: &$1) }
            }
        }
    }

    struct Decision: Sendable {
        let picked: [Int]
        let averages: [Double]
        let learned: [Double?]
        let negativeWeight: Double
    }

    /// What the update produced.
    public struct Result: Sendable {
        var aggregator: Aggregator
        var experts: ExpertSelector
        /// Weighted loss on the problem before and after the steps (NaN unless measured).
        public let lossBefore: Double
        public let lossAfter: Double
    }

    /// The steps and the decision. Pure: the same update gives the same result anywhere.
    public func run() -> Result {
        let rows = self.rows.values
        var aggregator = self.aggregator
        var experts = self.experts
        let m = aggregator.w.count
        var before = Double.nan, after = Double.nan
        if measureLoss {
            before = aggregator.objective(rhat: rows, labels: labels, omega: omega, gamma: config.focalGamma,
                                          l2: strength, prior: .equal)
        }
        if config.stepRule == .newton && config.focalGamma == 0 {
            aggregator.newtonSolve(rhat: rows, labels: labels, omega: omega, l2: strength, prior: .equal,
                                   iterations: config.aggregatorSteps)
            if config.nonnegativeWeights { aggregator.clampNegativeWeights() }
        } else {
            var grad = [Double](repeating: 0, count: m + 1)
            for _ in 0..<config.aggregatorSteps {
                aggregator.gradient(rhat: rows, labels: labels, omega: omega, gamma: config.focalGamma, l2: strength,
                                    prior: .equal, into: &grad)
                aggregator.step(grad, learningRate: config.learningRate)
                if config.nonnegativeWeights { aggregator.clampNegativeWeights() }
            }
        }
        if measureLoss {
            after = aggregator.objective(rhat: rows, labels: labels, omega: omega, gamma: config.focalGamma,
                                         l2: strength, prior: .equal)
        }
        if let decision { decide(decision, rows: rows, aggregator: aggregator, experts: &experts) }
        return Result(aggregator: aggregator, experts: experts, lossBefore: before, lossAfter: after)
    }

    /// Scores the picked buffer instances by each expert and lets the selector decide.
    private func decide(_ d: Decision, rows: [Double], aggregator: Aggregator, experts: inout ExpertSelector) {
        let m = aggregator.w.count
        var scores = [[Double]](repeating: [Double](repeating: 0, count: d.picked.count), count: m + ExpertSelector.firstClassifier)
        let total = aggregator.w.reduce(0, +)
        for (k, i) in d.picked.enumerated() {
            var learned = d.averages[k]
            if let l = d.learned[k] {
                learned = l
            } else if total > 1e-9 {   // restored from a checkpoint without it: the current weights
                var dot = 0.0
                for u in 0..<m { dot += aggregator.w[u] * rows[i * m + u] }
                learned = dot / total
            }
            scores[ExpertSelector.learned][k] = learned
            scores[ExpertSelector.average][k] = d.averages[k]
            for u in 0..<m { scores[ExpertSelector.firstClassifier + u][k] = rows[i * m + u] }
        }
        experts.decide(scores: scores, labels: d.picked.map { labels[$0] }, negativeWeight: d.negativeWeight,
                       z: config.expertZ, eta: config.expertEta)
    }
}
