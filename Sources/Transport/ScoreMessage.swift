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
    /// Why this score (`output.explain`); nil: not written.
    public var explain: ScoreExplanation?

    public init(id: String, score: Double, probability: Double, ts: Double, modelVersion: Int64, nPreds: Int, fallback: Bool,
                explain: ScoreExplanation? = nil) {
        self.explain = explain
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
        append(to: &writer)
    }

    /// Appends the JSON body to what `writer` holds (an entry of a `score_batch`).
    public func append(to writer: inout JSONWriter) {
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
        if let explain { explain.encode(into: &writer) }
        writer.raw("}")
    }
}

/// The `explain` object of a score (docs/protocol.md): the expert that weighs most in
/// the published combination, each classifier's share of it, and the classifiers whose
/// value was filled in because they did not report.
public struct ScoreExplanation: Sendable, Equatable {
    public var expert: String
    public var names: [String]
    public var shares: [Double]
    public var filled: [String]

    public init(expert: String, names: [String], shares: [Double], filled: [String]) {
        self.expert = expert
        self.names = names
        self.shares = shares
        self.filled = filled
    }

    func encode(into writer: inout JSONWriter) {
        writer.raw(",\"explain\":{\"expert\":")
        writer.string(expert)
        writer.raw(",\"shares\":{")
        for k in names.indices {
            if k > 0 { writer.raw(",") }
            writer.string(names[k])
            writer.raw(":")
            writer.double(k < shares.count ? shares[k] : 0)
        }
        writer.raw("},\"filled\":[")
        for k in filled.indices {
            if k > 0 { writer.raw(",") }
            writer.string(filled[k])
        }
        writer.raw("]}")
    }
}
