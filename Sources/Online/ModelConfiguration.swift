/// The step rule used for the aggregator's gradient steps.
public enum StepRule: String, Sendable, Codable, CaseIterable {
    /// Damped Newton (IRLS) to convergence on the replay buffer at every update; with
    /// focal_gamma > 0 it falls back to Adam steps.
    case newton
    case sgd
    case adagrad
    case adam
}

/// What the aggregator reads for a classifier that reported.
public enum AggregatorInput: String, Sendable, Codable, CaseIterable {
    /// Its observed probability; the reconstruction fills only the classifiers that did not report.
    case observed
    /// The low-rank reconstruction x_u . y for every classifier (denoised, the literal form in docs/algorithm.md).
    case reconstructed
}

/// How the aggregator fills the classifiers that did not report.
public enum MissingFill: String, Sendable, Codable, CaseIterable {
    /// The plain mean of the probabilities the instance's classifiers reported: a missing
    /// classifier counts as agreeing with the instance's own consensus, so an instance
    /// that looks fraudulent to those that reported keeps that look in every column.
    case average
    /// Their CF reconstruction x_u . y.
    case reconstruction
    /// The aggregator-weighted mean of the reported probabilities (the untrained model
    /// then ranks exactly like the average of what was reported).
    case mean
}

/// How the published score is formed from the aggregator.
public enum ScoreOutput: String, Sendable, Codable, CaseIterable {
    /// sigmoid(w . v + b), the form in docs/algorithm.md.
    case logistic
    /// sigmoid(s (w . v / sum(w) - 1/2)): the learnt weights as a weighted average at the
    /// starting scale s, so scores from successive model versions stay comparable.
    /// Falls back to `logistic` while sum(w) <= 0.
    case normalized
}

/// Every parameter of the online CF-Ensemble model and its learning (docs/algorithm.md).
public struct ModelConfiguration: Sendable, Equatable, Codable {
    /// Latent dimensions d of classifier and instance factors.
    public var latentDim = 2
    /// Ridge lambda of every least-squares solve.
    public var lambda = 0.01
    /// Most classifiers the model registers; further names are rejected.
    public var maxClassifiers = 64
    /// What the aggregator reads for reported classifiers.
    public var aggregatorInput = AggregatorInput.observed
    /// How the published score is formed.
    public var scoreOutput = ScoreOutput.normalized
    /// How the aggregator fills classifiers that did not report.
    public var missingFill = MissingFill.average
    /// Starting aggregator: w = s/m, b = -s/2. Any s ranks like the simple average; s = 4
    /// matches the average's slope at 0.5, so early scores approximate the average itself.
    public var initialScale = 4.0
    /// alpha in the confidence c = 1 + alpha * |2r - 1|.
    public var confidenceAlpha = 1.0
    /// How much label agreement raises (and disagreement lowers) a labelled entry's
    /// confidence: c * (1 + a * (2 * agreement - 1)), with a in [0, 1).
    public var labelConfidence = 0.5
    /// Forgetting factor beta applied to the classifier sufficient statistics per batch.
    public var forgetting = 0.99
    /// Also learn the classifier factors from every scored instance (its observed entries at
    /// base confidence), not only from labelled ones, so imputation improves before labels.
    public var unlabelledFactors = true
    /// Scored instances between classifier-factor solves when learning from unlabelled ones.
    public var factorRefreshInterval = 256
    /// ALS sweeps (solve X, re-fold the batch) per mini-batch.
    public var innerSweeps = 2
    /// Learn the aggregator with inverse-frequency class weights from running counts.
    public var classWeights = true
    /// Half-life of the running class counts, in labels (0: no decay).
    public var classCountHalfLife = 0.0
    /// Publish calibrated probabilities: class-weighted learning fits a 50/50 prior, so the
    /// published logit adds logit(pi) for the running positive rate pi.
    public var calibratePrior = false
    /// Focal loss gamma (0: plain weighted cross-entropy).
    public var focalGamma = 0.0
    /// Aggregator step size.
    public var learningRate = 3.0
    /// Aggregator step rule. Plain gradient steps move each weight as far as its gradient
    /// says: Adam's per-coordinate normalisation moved weights whose gradient was noise as
    /// fast as those that carried signal, and collapsed healthy weak-classifier streams.
    public var stepRule = StepRule.sgd
    /// Strength of the prior pulling the aggregator weights toward equal weights (the
    /// simple average's ranking, at any scale), divided by the effective number of
    /// labelled instances in the replay buffer: strong with few labels, weak with many.
    public var l2 = 0.0001
    /// Keep every aggregator weight at or above zero (projected steps): the published score
    /// stays a weighted average of the classifiers, and a few dozen labels cannot buy a
    /// negative weight that only cancels noise between correlated classifiers.
    public var nonnegativeWeights = false
    /// Gradient steps per mini-batch update, each over the whole replay buffer.
    public var aggregatorSteps = 5
    /// Most recent labelled positives the aggregator learns from.
    public var replayPositives = 512
    /// Most recent labelled negatives the aggregator learns from.
    public var replayNegatives = 2048
    /// Let prequential evidence choose what the published score follows: the learned
    /// combination, the simple average or one classifier (`ExpertSelector`; needs the
    /// normalized score output).
    public var expertSelection = true
    /// Standard errors by which another expert must beat the learned combination's
    /// average precision on the replay buffer before it takes weight.
    public var expertZ = 3.0
    /// How fast weight moves with the evidence (per positive).
    public var expertEta = 1.0

    public init() {}

    /// A description of the first invalid parameter, or nil when all are usable.
    public func validationError() -> String? {
        if !(initialScale > 0 && initialScale <= 100) { return "model.initial_scale must be in (0, 100]" }
        if latentDim < 1 || latentDim > 128 { return "model.latent_dim must be in 1...128" }
        if !(lambda > 0) { return "model.lambda must be > 0" }
        if maxClassifiers < 1 || maxClassifiers > 4096 { return "model.max_classifiers must be in 1...4096" }
        if !(confidenceAlpha >= 0) { return "model.confidence_alpha must be >= 0" }
        if !(labelConfidence >= 0 && labelConfidence < 1) { return "learning.label_confidence must be in [0, 1)" }
        if !(forgetting > 0 && forgetting <= 1) { return "learning.forgetting must be in (0, 1]" }
        if factorRefreshInterval < 1 { return "learning.factor_refresh_interval must be >= 1" }
        if innerSweeps < 1 || innerSweeps > 100 { return "learning.inner_sweeps must be in 1...100" }
        if !(classCountHalfLife >= 0) { return "learning.class_count_half_life must be >= 0" }
        if !(focalGamma >= 0 && focalGamma <= 10) { return "learning.focal_gamma must be in [0, 10]" }
        if !(learningRate > 0) { return "learning.lr must be > 0" }
        if !(l2 >= 0) { return "learning.l2 must be >= 0" }
        if aggregatorSteps < 1 || aggregatorSteps > 1000 { return "learning.aggregator_steps must be in 1...1000" }
        if replayPositives < 1 || replayPositives > 1_000_000 { return "learning.replay_positives must be in 1...1000000" }
        if replayNegatives < 1 || replayNegatives > 1_000_000 { return "learning.replay_negatives must be in 1...1000000" }
        if !(expertZ >= 0 && expertZ <= 100) { return "learning.expert_z must be in [0, 100]" }
        if !(expertEta > 0 && expertEta <= 1000) { return "learning.expert_eta must be in (0, 1000]" }
        return nil
    }
}
