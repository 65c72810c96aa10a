import Foundation

/// The `health` body (docs/protocol.md), also the core of the `status` reply.
struct HealthBody: Encodable {
    struct ClassPair: Encodable { var pos: Double; var neg: Double }

    var ts: Double
    var model_version: Int64
    var status: String
    var weights: [String: Double]
    var bias: Double
    var class_counts: ClassPair
    var class_weights: ClassPair
    var pending: Int
    var joining: Int
    var scored: UInt64
    var labelled: UInt64
    var unmatched_labels: UInt64
    var rejected: UInt64
    var rejected_by_reason: [String: UInt64]
    var received: UInt64
    var evicted: UInt64
    var expired: UInt64
    var errors_suppressed: UInt64
    var pr_auc: Double?
    var baseline_pr_auc: Double?
    var quality_window: Int
    var alerts_firing: [String]
    var fallback_active: Bool
    var accounting: Accounting
    /// Scale-out roles only.
    var cluster: Cluster?

    /// The process's place in a learner/scorer deployment.
    struct Cluster: Encodable {
        var role: String
        var lineage: String?
        /// Scorer: model states applied, versions never received, snapshot requests sent.
        var states_applied: UInt64?
        var versions_missed: Int64?
        var snapshot_requests: Int?
        /// Scorer: labels forwarded to the learner; instances or labels dropped on the way.
        var labels_forwarded: UInt64?
        var forward_dropped: UInt64?
        /// Scorer: mean time to decode and install one model state (µs).
        var apply_us_mean: Double?
        /// Learner: model states published and snapshots served; the size of one state and
        /// the mean time to build and publish it (the per-update cost of fanning out).
        var states_published: UInt64?
        var snapshots_served: UInt64?
        var state_bytes: Int?
        var publish_us_mean: Double?
    }

    /// Where every received message went; `received` is the sum of the other four.
    struct Accounting: Encodable {
        var received: UInt64
        var preds: UInt64
        var labels_learnt: UInt64
        /// Scorer: labels passed on to the learner.
        var labels_forwarded: UInt64
        /// Learner: labels waiting for their instance (`cluster.label_wait_s`).
        var labels_waiting: Int
        var labels_unmatched: UInt64
        var rejected: UInt64
        var balanced: Bool
    }
}

/// The `alert` body: one change of state of one health condition.
struct AlertBody: Encodable {
    var alert: String
    var state: String
    var severity: String
    var ts: Double
    var model_version: Int64
    var reason: String
    var metrics: [String: Double]
    var action: String
    var classifier: String?
}

/// The `error` body: one rejected input message.
struct ErrorBody: Encodable {
    var ts: Double
    var topic: String?
    var id: String?
    var reason: String
}

/// A summary of the running configuration, in the `status` reply.
struct ConfigSummary: Encodable {
    var inputs: [String]
    var input_type: String
    var output: String
    var control: String
    var state_dir: String
    var latent_dim: Int
    var max_classifiers: Int
    var batch_size: Int
    var class_weights: Bool
    var join_window_ms: Int
    var classifiers: [String]
    var version: String
    var role: String
}

/// The reply to `{"cmd": "status"}`: `ok`, the health body's fields, and `config`.
struct StatusReply: Encodable {
    var health: HealthBody
    var config: ConfigSummary
    var persistence: Persistence

    /// Checkpoints and the journal: when the state was last made durable.
    struct Persistence: Encodable {
        /// The last checkpoint written since start (nil: none yet).
        var last_checkpoint: LastCheckpoint?
        var checkpoints_written: UInt64
        var checkpoints_failed: UInt64
        var checkpoint_in_progress: Bool
        /// The journal file being appended to and its size (nil: journal off).
        var journal_file: UInt64?
        var journal_bytes: Int?
        var journal_error: String?

        struct LastCheckpoint: Encodable {
            var at: Double
            var bytes: Int
            var model_version: Int64
            var pending: Int
            var ms: Int
            var background: Bool
        }

        enum Keys: String, CodingKey {
            case last_checkpoint, checkpoints_written, checkpoints_failed, checkpoint_in_progress, journal_file, journal_bytes, journal_error
        }

        /// `last_checkpoint` and the journal fields are written as null when absent (the
        /// protocol documents them so), not left out.
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(last_checkpoint, forKey: .last_checkpoint)
            try c.encode(checkpoints_written, forKey: .checkpoints_written)
            try c.encode(checkpoints_failed, forKey: .checkpoints_failed)
            try c.encode(checkpoint_in_progress, forKey: .checkpoint_in_progress)
            try c.encode(journal_file, forKey: .journal_file)
            try c.encode(journal_bytes, forKey: .journal_bytes)
            try c.encode(journal_error, forKey: .journal_error)
        }
    }

    enum Keys: String, CodingKey { case ok, config, persistence }

    func encode(to encoder: Encoder) throws {
        try health.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(true, forKey: .ok)
        try c.encode(config, forKey: .config)
        try c.encode(persistence, forKey: .persistence)
    }
}

/// A control reply that is just `ok` and an optional error or fields.
struct ControlReply: Encodable {
    var ok: Bool
    var error: String?
    var path: String?
    var bytes: Int?
    var model_version: Int64?
}

enum JSON {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }()

    static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        (try? Array(encoder.encode(value))) ?? Array(#"{"ok":false,"error":"internal encoding failure"}"#.utf8)
    }
}
