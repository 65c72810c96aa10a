/// What scoring one instance produced.
public struct ScoredInstance: Sendable, Equatable {
    /// sigmoid(w . rhat + b): the ensembled probability of the positive class.
    public var score: Double
    /// The simple average of the reported probabilities (baseline and fallback).
    public var average: Double
}
