import Foundation
import Online

/// One state of the learner's model as the cluster sees it: what scorers score with
/// (docs/scale-out.md).
///
/// Every mini-batch changes every classifier factor and weight, so an update carries the
/// whole (scoring) model rather than a delta: a scorer that missed versions is repaired by
/// the next one it receives. Heartbeats carry everything but the model.
public struct ModelState: Codable, Sendable, Equatable {
    /// Identifies one learner's history of versions; a new one starts with a fresh model.
    public var lineage: String
    public var version: Int64
    /// With an election (etcd): the epoch of the leadership that produced this state;
    /// scorers apply none older than the newest they have seen. Absent without one.
    public var epoch: Int64?
    /// The learner's health status (`healthy`, `warning`, `critical`).
    public var status: String
    /// What scorers publish: `none` (the model), `average` or `last_healthy`.
    public var fallback: String
    public var ts: Double
    /// The model to score with; nil in heartbeats.
    public var model: ModelSnapshot?
    /// The last healthy model, while `fallback` is `last_healthy`.
    public var healthy: ModelSnapshot?
    /// What scorers turn scores into probabilities with (in heartbeats too); absent from
    /// learners of earlier builds.
    public var calibration: Calibration?

    public static let topicModel = "model"
    public static let topicHeartbeat = "heartbeat"
    public static let snapshotRequest = "snapshot"

    public init(lineage: String, version: Int64, status: String, fallback: String, ts: Double,
                model: ModelSnapshot?, healthy: ModelSnapshot?, calibration: Calibration? = nil, epoch: Int64? = nil) {
        self.lineage = lineage
        self.epoch = epoch
        self.version = version
        self.status = status
        self.fallback = fallback
        self.ts = ts
        self.model = model
        self.healthy = healthy
        self.calibration = calibration
    }

    public var heartbeat: ModelState {
        var h = self
        h.model = nil
        h.healthy = nil
        return h
    }

    /// Non-finite numbers (a poisoned model) are written as the strings "nan", "inf" and
    /// "-inf", as checkpoints write them, so that the state still reaches the scorers
    /// (which then score what the learner scores, and see its `weight_collapse`).
    public func encoded() -> [UInt8] {
        // With non-finite numbers allowed, arrays of numbers and strings cannot fail to encode.
        (try? Array(WireJSON.encoder.encode(self))) ?? []
    }

    public static func decode(_ bytes: [UInt8]) throws -> ModelState {
        try WireJSON.decode(ModelState.self, from: bytes)
    }
}
