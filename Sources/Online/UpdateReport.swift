/// What one mini-batch update did.
public struct UpdateReport: Sendable, Equatable {
    public var version: Int64
    public var size: Int
    public var positives: Int
    /// Weighted aggregator loss on the replay problem before and after the update; NaN
    /// unless `update` was asked to measure it (two more passes over the buffer).
    public var lossBefore: Double
    public var lossAfter: Double
}
