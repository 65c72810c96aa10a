/// The learnt state of a `CFEnsemble`, Codable for checkpoints.
public struct ModelSnapshot: Sendable, Equatable, Codable {
    public var latentDim: Int
    public var classifiers: [String]
    public var factors: ClassifierFactors
    public var aggregator: Aggregator
    public var classWeights: ClassWeights
    public var replay: ReplayBuffer
    public var priorShift: Double
    public var version: Int64
    public var labelled: UInt64
    /// Instances scored since the last unlabelled classifier-factor solve, so that a
    /// restored model solves at the same instance as the one it was taken from (absent
    /// in checkpoints written before it existed: 0).
    public var scoredSinceSolve: Int?
    /// What the published score follows (absent in checkpoints written before it existed:
    /// the learned combination).
    public var experts: ExpertSelector?
}
