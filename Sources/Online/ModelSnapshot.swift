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
}
