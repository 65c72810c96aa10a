/// The step rule used for the aggregator's gradient steps.
public enum StepRule: String, Sendable, Codable, CaseIterable {
    case sgd
    case adagrad
    case adam
}

/// Every parameter of the online CF-Ensemble model and its learning (ALGORITHM.md).
public struct ModelConfiguration: Sendable, Equatable, Codable {
    /// Latent dimensions d of classifier and instance factors.
    public var latentDim = 8
    /// Ridge lambda of every least-squares solve.
    public var lambda = 0.01
    /// Most classifiers the model registers; further names are rejected.
    public var maxClassifiers = 64
    /// alpha in the confidence c = 1 + alpha * |2r - 1|.
    public var confidenceAlpha = 1.0
    /// How much label agreement raises (and disagreement lowers) a labelled entry's
    /// confidence: c * (1 + a * (2 * agreement - 1)), with a in [0, 1).
    public var labelConfidence = 0.5
    /// Forgetting factor beta applied to the classifier sufficient statistics per batch.
    public var forgetting = 0.99
    /// ALS sweeps (solve X, re-fold the batch) per mini-batch.
    public var innerSweeps = 2
    /// Learn the aggregator with inverse-frequency class weights from running counts.
    public var classWeights = true
    /// Half-life of the running class counts, in labels (0: no decay).
    public var classCountHalfLife = 0.0
    /// Focal loss gamma (0: plain weighted cross-entropy).
    public var focalGamma = 0.0
    /// Aggregator step size.
    public var learningRate = 0.05
    /// Aggregator step rule.
    public var stepRule = StepRule.adam
    /// L2 penalty on the aggregator weights (not the bias).
    public var l2 = 0.0001
    /// Gradient steps on each mini-batch.
    public var aggregatorSteps = 1

    public init() {}

    /// A description of the first invalid parameter, or nil when all are usable.
    public func validationError() -> String? {
        if latentDim < 1 || latentDim > 128 { return "model.latent_dim must be in 1...128" }
        if !(lambda > 0) { return "model.lambda must be > 0" }
        if maxClassifiers < 1 || maxClassifiers > 4096 { return "model.max_classifiers must be in 1...4096" }
        if !(confidenceAlpha >= 0) { return "model.confidence_alpha must be >= 0" }
        if !(labelConfidence >= 0 && labelConfidence < 1) { return "learning.label_confidence must be in [0, 1)" }
        if !(forgetting > 0 && forgetting <= 1) { return "learning.forgetting must be in (0, 1]" }
        if innerSweeps < 1 || innerSweeps > 100 { return "learning.inner_sweeps must be in 1...100" }
        if !(classCountHalfLife >= 0) { return "learning.class_count_half_life must be >= 0" }
        if !(focalGamma >= 0 && focalGamma <= 10) { return "learning.focal_gamma must be in [0, 10]" }
        if !(learningRate > 0) { return "learning.lr must be > 0" }
        if !(l2 >= 0) { return "learning.l2 must be >= 0" }
        if aggregatorSteps < 1 || aggregatorSteps > 1000 { return "learning.aggregator_steps must be in 1...1000" }
        return nil
    }
}
