/// The `health` body (docs/protocol.md), also the core of the `status` reply.
public struct HealthBody: Codable, Sendable, Equatable {
    public struct ClassPair: Codable, Sendable, Equatable {
        public var pos: Double
        public var neg: Double
        public init(pos: Double, neg: Double) { self.pos = pos; self.neg = neg }
    }

    /// The process's place in a learner/scorer deployment.
    public struct Cluster: Codable, Sendable, Equatable {
        public var role: String
        public var lineage: String?
        /// Scorer: model states applied, versions never received, snapshot requests sent.
        public var states_applied: UInt64?
        public var versions_missed: Int64?
        public var snapshot_requests: Int?
        /// Scorer: labels forwarded to the learner; instances or labels dropped on the way.
        public var labels_forwarded: UInt64?
        public var forward_dropped: UInt64?
        /// Scorer: mean time to decode and install one model state (µs).
        public var apply_us_mean: Double?
        /// Learner: model states published and snapshots served; the size of one state and
        /// the mean time to build and publish it (the per-update cost of fanning out).
        public var states_published: UInt64?
        public var snapshots_served: UInt64?
        public var state_bytes: Int?
        public var publish_us_mean: Double?
        /// With an election (etcd): this learner's part (`leader`, `standby`, `starting`),
        /// the leader's name and epoch as last seen, the other learners registered, states
        /// refused as older than the newest leadership (scorer), the last etcd failure.
        public var election: String?
        public var leader: String?
        public var epoch: Int64?
        public var standbys: [String]?
        public var states_fenced: Int?
        public var leader_changes: UInt64?
        public var etcd_error: String?

        public init(role: String) { self.role = role }
    }

    /// Where every received message went; `received` is the sum of the others.
    public struct Accounting: Codable, Sendable, Equatable {
        public var received: UInt64 = 0
        public var preds: UInt64 = 0
        public var labels_learnt: UInt64 = 0
        /// Scorer: labels passed on to the learner.
        public var labels_forwarded: UInt64 = 0
        /// Learner: labels waiting for their instance (`cluster.label_wait_s`).
        public var labels_waiting: Int = 0
        public var labels_unmatched: UInt64 = 0
        public var rejected: UInt64 = 0
        /// `ping` messages (v1 addition: absent from earlier daemons).
        public var pings: UInt64?
        /// `pred_batch` and `label_batch` messages read (v1 addition): their entries are
        /// counted in `received` and the buckets one by one.
        public var batches: UInt64?
        public var balanced = true

        public init() {}
    }

    public var ts: Double = 0
    public var model_version: Int64 = 0
    public var status = "healthy"
    public var weights: [String: Double] = [:]
    public var bias: Double = 0
    public var class_counts = ClassPair(pos: 0, neg: 0)
    public var class_weights = ClassPair(pos: 1, neg: 1)
    public var pending: Int = 0
    public var joining: Int = 0
    public var scored: UInt64 = 0
    public var labelled: UInt64 = 0
    public var unmatched_labels: UInt64 = 0
    public var rejected: UInt64 = 0
    public var rejected_by_reason: [String: UInt64] = [:]
    public var received: UInt64 = 0
    public var evicted: UInt64 = 0
    public var expired: UInt64 = 0
    public var errors_suppressed: UInt64 = 0
    /// The live model's PR-AUC and the simple average's over the quality window.
    public var pr_auc: Double?
    public var baseline_pr_auc: Double?
    public var quality_window: Int = 0
    public var alerts_firing: [String] = []
    /// The same conditions with their severity, since when they fire (Unix time) and the
    /// reason they fired with (v1 addition: absent from earlier daemons).
    public var firing: [FiringAlert]?
    public var fallback_active = false
    public var accounting = Accounting()
    /// Scale-out roles only.
    public var cluster: Cluster?
    /// The calibrated probability: its map and how well it held (v1 addition).
    public var calibration: CalibrationBody?
    /// Operating points (v1 addition): per alert budget, and for the precision target.
    public var operating_points: [OperatingPoint]?
    public var precision_target: PrecisionTargetBody?
    /// Published scores the thresholds come from (`monitoring.score_window` at most).
    public var score_window: Int?
    /// The label-free drift statistics (v1 addition).
    public var drift: DriftBody?
    /// The label-free quality estimate (v1 addition).
    public var estimate: EstimateBody?

    public init() {}
}

/// `health.calibration`: the map from scores to probabilities, the positive rate it
/// assumes, and the rolling calibration over the labelled instances of the quality
/// window (absent until it holds 100 of them): of the probabilities as published, and of
/// the map in use now applied to the same instances (what `calibration_drift` watches).
public struct CalibrationBody: Codable, Sendable, Equatable {
    /// Whether the map of the score is fitted (before: the simple average's map).
    public var fitted: Bool
    public var slope: Double
    public var intercept: Double
    public var average_intercept: Double
    /// The average's map's slope (1 until fitted); absent from earlier daemons.
    public var average_slope: Double?
    /// The mixture's weights (score's map, average's map, average), summing to 1;
    /// (1, 0, 0) past `calibration.mix_until` labels.
    public var weights: [Double]?
    public var positive_rate: Double?
    public var ece: Double?
    public var brier: Double?
    public var window: Int
    public var ece_now: Double?
    /// The ECE that sampling alone gives calibrated probabilities like the map's.
    public var ece_noise: Double?

    public init(fitted: Bool, slope: Double, intercept: Double, average_intercept: Double, average_slope: Double? = nil,
                weights: [Double]? = nil, positive_rate: Double?,
                ece: Double?, brier: Double?, window: Int, ece_now: Double?, ece_noise: Double?) {
        self.fitted = fitted
        self.slope = slope
        self.intercept = intercept
        self.average_intercept = average_intercept
        self.average_slope = average_slope
        self.weights = weights
        self.positive_rate = positive_rate
        self.ece = ece
        self.brier = brier
        self.window = window
        self.ece_now = ece_now
        self.ece_noise = ece_noise
    }
}

/// A condition that fires now (`health.firing`).
public struct FiringAlert: Codable, Sendable, Equatable {
    public var alert: String
    public var classifier: String?
    public var severity: String
    public var since: Double
    public var reason: String

    public init(alert: String, classifier: String?, severity: String, since: Double, reason: String) {
        self.alert = alert
        self.classifier = classifier
        self.severity = severity
        self.since = since
        self.reason = reason
    }
}

/// One alert budget's operating point: the score threshold that flags `alert_rate` of
/// recent traffic, and the precision and recall of that threshold over the labelled
/// instances of the quality window (each absent until there is enough to say).
public struct OperatingPoint: Codable, Sendable, Equatable {
    public var alert_rate: Double
    public var threshold: Double?
    public var precision: Double?
    public var recall: Double?

    public init(alert_rate: Double, threshold: Double? = nil, precision: Double? = nil, recall: Double? = nil) {
        self.alert_rate = alert_rate
        self.threshold = threshold
        self.precision = precision
        self.recall = recall
    }
}

/// The lowest score threshold whose precision over the quality window reaches
/// `precision_target`, its precision and recall there, and the share of recent traffic
/// it flags (absent while no threshold reaches the target).
public struct PrecisionTargetBody: Codable, Sendable, Equatable {
    public var precision_target: Double
    public var threshold: Double?
    public var precision: Double?
    public var recall: Double?
    public var alert_rate: Double?

    public init(precision_target: Double, threshold: Double? = nil, precision: Double? = nil, recall: Double? = nil,
                alert_rate: Double? = nil) {
        self.precision_target = precision_target
        self.threshold = threshold
        self.precision = precision
        self.recall = recall
        self.alert_rate = alert_rate
    }
}
