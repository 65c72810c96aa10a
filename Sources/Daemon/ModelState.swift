import Foundation
import Online

/// One state of the learner's model as the cluster sees it: what scorers score with.
///
/// Every mini-batch changes every classifier factor and weight, so an update carries the
/// whole (scoring) model rather than a delta: a scorer that missed versions is repaired by
/// the next one it receives. Heartbeats carry everything but the model.
struct ModelState: Codable, Sendable, Equatable {
    /// Identifies one learner's history of versions; a new one starts with a fresh model.
    var lineage: String
    var version: Int64
    /// The learner's health status (`healthy`, `warning`, `critical`).
    var status: String
    /// What scorers publish: `none` (the model), `average` or `last_healthy`.
    var fallback: String
    var ts: Double
    /// The model to score with; nil in heartbeats.
    var model: ModelSnapshot?
    /// The last healthy model, while `fallback` is `last_healthy`.
    var healthy: ModelSnapshot?

    static let topicModel = "model"
    static let topicHeartbeat = "heartbeat"
    static let snapshotRequest = "snapshot"

    var heartbeat: ModelState {
        var h = self
        h.model = nil
        h.healthy = nil
        return h
    }

    /// Non-finite numbers (a poisoned model) are written as the strings "nan", "inf" and
    /// "-inf", as checkpoints write them, so that the state still reaches the scorers
    /// (which then score what the learner scores, and see its `weight_collapse`).
    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        // With non-finite numbers allowed, arrays of numbers and strings cannot fail to encode.
        return Array((try? encoder.encode(self)) ?? Data())
    }

    static func decode(_ bytes: [UInt8]) throws -> ModelState {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(ModelState.self, from: Data(bytes))
    }
}
