/// The body of a `score` message (docs/protocol.md).
public struct ScoreMessage: Sendable, Equatable {
    public var id: String
    public var score: Double
    /// The calibrated probability of the positive class (docs/protocol.md).
    public var probability: Double
    public var ts: Double
    public var modelVersion: Int64
    public var nPreds: Int
    public var fallback: Bool

    public init(id: String, score: Double, probability: Double, ts: Double, modelVersion: Int64, nPreds: Int, fallback: Bool) {
        self.id = id
        self.score = score
        self.probability = probability
        self.ts = ts
        self.modelVersion = modelVersion
        self.nPreds = nPreds
        self.fallback = fallback
    }

    /// Writes the JSON body into `writer` (which is reset first).
    public func encode(into writer: inout JSONWriter) {
        writer.reset()
        writer.raw("{\"id\":")
        writer.string(id)
        writer.raw(",\"score\":")
        writer.double(score)
        writer.raw(",\"probability\":")
        writer.double(probability)
        writer.raw(",\"ts\":")
        writer.double(ts)
        writer.raw(",\"model_version\":")
        writer.int(modelVersion)
        writer.raw(",\"n_preds\":")
        writer.int(Int64(nPreds))
        writer.raw(",\"fallback\":")
        writer.bool(fallback)
        writer.raw("}")
    }
}
