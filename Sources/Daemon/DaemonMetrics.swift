import Metrics
import Online
import Wire

/// The daemon's metrics, through swift-metrics (exported by swift-prometheus when
/// `metrics.listen` is on; no-ops otherwise). Updated by the event loop's thread only.
final class DaemonMetrics: @unchecked Sendable {
    let receivedPred = Counter(label: "cfensembled_messages_received_total", dimensions: [("topic", "pred")])
    let receivedLabel = Counter(label: "cfensembled_messages_received_total", dimensions: [("topic", "label")])
    let receivedOther = Counter(label: "cfensembled_messages_received_total", dimensions: [("topic", "other")])
    let receivedPing = Counter(label: "cfensembled_messages_received_total", dimensions: [("topic", "ping")])
    /// Batch messages (their entries count under `pred` and `label`).
    let receivedPredBatch = Counter(label: "cfensembled_messages_received_total", dimensions: [("topic", "pred_batch")])
    let receivedLabelBatch = Counter(label: "cfensembled_messages_received_total", dimensions: [("topic", "label_batch")])
    let scored = Counter(label: "cfensembled_scores_published_total", dimensions: [("fallback", "false")])
    let scoredFallback = Counter(label: "cfensembled_scores_published_total", dimensions: [("fallback", "true")])
    let publishedScore = Counter(label: "cfensembled_messages_published_total", dimensions: [("topic", "score")])
    let publishedHealth = Counter(label: "cfensembled_messages_published_total", dimensions: [("topic", "health")])
    let publishedAlert = Counter(label: "cfensembled_messages_published_total", dimensions: [("topic", "alert")])
    let publishedError = Counter(label: "cfensembled_messages_published_total", dimensions: [("topic", "error")])
    let labelsLearnt = Counter(label: "cfensembled_labels_learnt_total")
    let labelsUnmatched = Counter(label: "cfensembled_labels_unmatched_total")
    let errorsSuppressed = Counter(label: "cfensembled_error_events_suppressed_total")
    let pendingEvicted = Counter(label: "cfensembled_pending_evicted_total")
    let pendingExpired = Counter(label: "cfensembled_pending_expired_total")
    /// CURVE handshakes the ZAP handler admitted or refused (incremented on its thread).
    let authAdmitted = Counter(label: "cfensembled_curve_handshakes_total", dimensions: [("result", "admitted")])
    let authRefused = Counter(label: "cfensembled_curve_handshakes_total", dimensions: [("result", "refused")])
    /// Scale-out: model states the learner published / served on request, and applied by a scorer.
    let modelStatesPublished = Counter(label: "cfensembled_model_states_total", dimensions: [("event", "published")])
    let modelSnapshotsServed = Counter(label: "cfensembled_model_states_total", dimensions: [("event", "snapshot_served")])
    let modelStatesApplied = Counter(label: "cfensembled_model_states_total", dimensions: [("event", "applied")])
    let modelSnapshotRequests = Counter(label: "cfensembled_model_states_total", dimensions: [("event", "snapshot_requested")])
    /// Election: states a scorer refused as older than the newest leadership it saw.
    let modelStatesFenced = Counter(label: "cfensembled_model_states_total", dimensions: [("event", "fenced")])
    /// Election (created at first use, so only processes with an election export them):
    /// leaders followed (scorer) or leaderships won and lost (learner); whether etcd shows
    /// a leader; whether this learner leads; the leader's epoch.
    lazy var clusterLeaderChanges = Counter(label: "cfensembled_cluster_leader_changes_total")
    lazy var clusterLeaderPresent = Gauge(label: "cfensembled_cluster_leader_present")
    lazy var clusterIsLeader = Gauge(label: "cfensembled_cluster_is_leader")
    lazy var clusterEpoch = Gauge(label: "cfensembled_cluster_epoch")
    /// Versions a scorer never received (repaired by the next state it did receive).
    let modelVersionsMissed = Counter(label: "cfensembled_model_versions_missed_total")
    /// Scorer: instances and labels sent to the learner, and those dropped (learner down past forward_sndhwm).
    let forwardedScored = Counter(label: "cfensembled_forwarded_total", dimensions: [("kind", "scored")])
    let forwardedLabel = Counter(label: "cfensembled_forwarded_total", dimensions: [("kind", "label")])
    let forwardDropped = Counter(label: "cfensembled_forward_dropped_total")
    let scoringDuration = Timer(label: "cfensembled_scoring_duration_seconds")
    let updateDuration = Timer(label: "cfensembled_model_update_duration_seconds")
    /// Checkpoints written (periodic ones in the background, on request, at shutdown) or failed.
    let checkpointsWritten = Counter(label: "cfensembled_checkpoints_total", dimensions: [("result", "ok")])
    let checkpointsFailed = Counter(label: "cfensembled_checkpoints_total", dimensions: [("result", "failed")])
    let checkpointDuration = Timer(label: "cfensembled_checkpoint_duration_seconds")
    let checkpointBytes = Gauge(label: "cfensembled_checkpoint_bytes")
    let pending = Gauge(label: "cfensembled_pending_instances")
    /// `state.max_pending`: the pending store evicts the oldest instance beyond it.
    let pendingCapacity = Gauge(label: "cfensembled_pending_capacity")
    /// Unix time of the last checkpoint written, or of the one restored at start (0: none).
    let lastCheckpoint = Gauge(label: "cfensembled_last_checkpoint_timestamp_seconds")
    /// 1 while the journal cannot be written (changes are not journalled until the next
    /// checkpoint starts a new file), else 0.
    let journalFailing = Gauge(label: "cfensembled_journal_failing")
    let modelVersion = Gauge(label: "cfensembled_model_version")
    let bias = Gauge(label: "cfensembled_aggregator_bias")
    let classPositive = Gauge(label: "cfensembled_class_count", dimensions: [("class", "pos")])
    let classNegative = Gauge(label: "cfensembled_class_count", dimensions: [("class", "neg")])
    /// The calibrated probability: rolling ECE and Brier score over the quality window of
    /// the probabilities published and the ECE of the map in use now (NaN until the
    /// window holds 100 labelled instances), and the positive rate the calibrator estimates.
    let calibrationECE = Gauge(label: "cfensembled_calibration_ece", dimensions: [("probabilities", "published")])
    let calibrationECENow = Gauge(label: "cfensembled_calibration_ece", dimensions: [("probabilities", "current_map")])
    let calibrationBrier = Gauge(label: "cfensembled_calibration_brier")
    let positiveRate = Gauge(label: "cfensembled_positive_rate")

    /// Every reason a message can be rejected for, exposed at 0 from the start so that
    /// rates and alerts over them work before the first rejection.
    static let rejectionReasons = ["json", "field", "topic", "frames", "size", "limit", "duplicate", "role", "forward"]
    private var rejected: [String: Counter] = Dictionary(uniqueKeysWithValues: DaemonMetrics.rejectionReasons.map {
        ($0, Counter(label: "cfensembled_messages_rejected_total", dimensions: [("reason", $0)]))
    })
    private var weights: [String: Gauge] = [:]
    private var conditions: [String: Gauge] = [:]
    /// Per classifier: seconds since it last reported, and 1 while classifier_silent
    /// fires for it (the condition's gauge cannot name the classifier).
    private var classifierAge: [String: Gauge] = [:]
    /// Connections held by each bound socket, and those closed beyond its limit.
    private var connectionGauges: [String: Gauge] = [:]
    private var connectionsRefused: [String: Counter] = [:]
    let openDescriptors = Gauge(label: "cfensembled_open_descriptors")
    let descriptorLimit = Gauge(label: "cfensembled_descriptor_limit")
    private var classifierSilent: [String: Gauge] = [:]
    private var lastEvicted: UInt64 = 0
    private var lastExpired: UInt64 = 0

    /// Prometheus counters count from 0 in each process (the `status` counters are the
    /// state's totals): the store's restored eviction and expiry totals are the baseline.
    func startCounting(evicted: UInt64, expired: UInt64) {
        lastEvicted = evicted
        lastExpired = expired
    }

    func recordCheckpoint(seconds: Double, bytes: Int?, at wallTime: Double) {
        checkpointDuration.recordNanoseconds(Int64(seconds * 1e9))
        if let bytes {
            checkpointsWritten.increment()
            checkpointBytes.record(Double(bytes))
            lastCheckpoint.record(wallTime)
        } else {
            checkpointsFailed.increment()
        }
    }

    private func ensureConnectionSeries(_ role: String) {
        guard connectionGauges[role] == nil else { return }
        connectionGauges[role] = Gauge(label: "cfensembled_connections", dimensions: [("socket", role)])
        connectionsRefused[role] = Counter(label: "cfensembled_connections_refused_total", dimensions: [("socket", role)])
    }

    func connections(role: String, open: Int) {
        ensureConnectionSeries(role)
        connectionGauges[role]!.record(Double(open))
    }

    func connectionRefused(role: String) {
        ensureConnectionSeries(role)
        connectionsRefused[role]!.increment()
    }

    func rejected(reason: String, count: Int = 1) {
        if rejected[reason] == nil {
            rejected[reason] = Counter(label: "cfensembled_messages_rejected_total", dimensions: [("reason", reason)])
        }
        rejected[reason]!.increment(by: Int64(count))
    }

    private var operatingGauges: [String: (threshold: Gauge, precision: Gauge, recall: Gauge)] = [:]
    let targetThreshold = Gauge(label: "cfensembled_precision_target_threshold")
    let targetRecall = Gauge(label: "cfensembled_precision_target_recall")
    let targetAlertRate = Gauge(label: "cfensembled_precision_target_alert_rate")

    /// The operating points: per alert budget its score threshold, precision and recall
    /// (NaN while unknown); the precision target's threshold, recall and share of traffic.
    func operating(points: [OperatingPoint], target: PrecisionTargetBody?) {
        for p in points {
            let key = "\(p.alert_rate)"
            if operatingGauges[key] == nil {
                operatingGauges[key] = (Gauge(label: "cfensembled_operating_threshold", dimensions: [("alert_rate", key)]),
                                        Gauge(label: "cfensembled_operating_precision", dimensions: [("alert_rate", key)]),
                                        Gauge(label: "cfensembled_operating_recall", dimensions: [("alert_rate", key)]))
            }
            let g = operatingGauges[key]!
            g.threshold.record(p.threshold ?? .nan)
            g.precision.record(p.precision ?? .nan)
            g.recall.record(p.recall ?? .nan)
        }
        if let target {
            targetThreshold.record(target.threshold ?? .nan)
            targetRecall.record(target.recall ?? .nan)
            targetAlertRate.record(target.alert_rate ?? .nan)
        }
    }

    private var driftGauges: [String: (psi: Gauge, drifting: Gauge)] = [:]
    let scoreDriftPSI = Gauge(label: "cfensembled_score_drift_psi")
    let predictedRate = Gauge(label: "cfensembled_predicted_positive_rate", dimensions: [("window", "recent")])
    let predictedRateBefore = Gauge(label: "cfensembled_predicted_positive_rate", dimensions: [("window", "reference")])

    /// The label-free drift statistics (NaN while a window fills): per classifier its
    /// population stability index and 1 while classifier_drift fires for it; the
    /// published score's; the predicted positive rate of the recent window and the one
    /// before it.
    func drift(_ body: DriftBody, drifting: Set<String>) {
        for (name, stream) in body.classifiers {
            if driftGauges[name] == nil {
                driftGauges[name] = (Gauge(label: "cfensembled_classifier_drift_psi", dimensions: [("classifier", name)]),
                                     Gauge(label: "cfensembled_classifier_drifting", dimensions: [("classifier", name)]))
            }
            driftGauges[name]!.psi.record(stream.psi ?? .nan)
            driftGauges[name]!.drifting.record(drifting.contains(name) ? 1 : 0)
        }
        scoreDriftPSI.record(body.score?.psi ?? .nan)
        predictedRate.record(body.predicted_positive_rate ?? .nan)
        predictedRateBefore.record(body.reference_positive_rate ?? .nan)
    }

    let estimatedPrAUC = Gauge(label: "cfensembled_estimated_pr_auc", dimensions: [("window", "recent")])
    let estimatedPrAUCBefore = Gauge(label: "cfensembled_estimated_pr_auc", dimensions: [("window", "before")])
    let estimatedPrAUCLabelled = Gauge(label: "cfensembled_estimated_pr_auc", dimensions: [("window", "labelled")])
    private var estimateGauges: [String: (precision: Gauge, recall: Gauge)] = [:]
    /// The realised rolling PR-AUC over the quality window (labelled instances), of the
    /// live model and of the simple average.
    let prAUC = Gauge(label: "cfensembled_pr_auc", dimensions: [("scores", "live")])
    let prAUCAverage = Gauge(label: "cfensembled_pr_auc", dimensions: [("scores", "average")])

    /// The label-free quality estimate (NaN while unknown): expected PR-AUC of recent
    /// traffic, of the traffic before it and of the labelled window, and the expected
    /// precision and recall of each alert budget.
    func estimate(_ b: EstimateBody?, realised: Double?, average: Double?) {
        prAUC.record(realised ?? .nan)
        prAUCAverage.record(average ?? .nan)
        estimatedPrAUC.record(b?.pr_auc ?? .nan)
        estimatedPrAUCBefore.record(b?.pr_auc_before ?? .nan)
        estimatedPrAUCLabelled.record(b?.labelled_pr_auc ?? .nan)
        for p in b?.operating_points ?? [] {
            let key = "\(p.alert_rate)"
            if estimateGauges[key] == nil {
                estimateGauges[key] = (Gauge(label: "cfensembled_estimated_precision", dimensions: [("alert_rate", key)]),
                                       Gauge(label: "cfensembled_estimated_recall", dimensions: [("alert_rate", key)]))
            }
            estimateGauges[key]!.precision.record(p.precision ?? .nan)
            estimateGauges[key]!.recall.record(p.recall ?? .nan)
        }
    }

    func calibration(ece: Double?, brier: Double?, eceNow: Double?, positiveRate rate: Double?) {
        calibrationECE.record(ece ?? .nan)
        calibrationECENow.record(eceNow ?? .nan)
        calibrationBrier.record(brier ?? .nan)
        positiveRate.record(rate ?? .nan)
    }

    /// Model and store gauges; called after updates and on the health timer.
    func refresh(weights w: [(String, Double)], bias b: Double, version: Int64, pendingCount: Int, pendingCapacity capacity: Int,
                 evicted: UInt64, expired: UInt64, positives: Double, negatives: Double, firing: Set<String>, journalFailing failing: Bool,
                 reportAges: [(String, Double)] = [], silent: Set<String> = []) {
        for (name, age) in reportAges {
            if classifierAge[name] == nil {
                classifierAge[name] = Gauge(label: "cfensembled_classifier_last_report_age_seconds", dimensions: [("classifier", name)])
                classifierSilent[name] = Gauge(label: "cfensembled_classifier_silent", dimensions: [("classifier", name)])
            }
            classifierAge[name]!.record(age)
            classifierSilent[name]!.record(silent.contains(name) ? 1 : 0)
        }
        for (name, value) in w {
            if weights[name] == nil {
                weights[name] = Gauge(label: "cfensembled_aggregator_weight", dimensions: [("classifier", name)])
            }
            weights[name]!.record(value)
        }
        bias.record(b)
        modelVersion.record(Double(version))
        pending.record(Double(pendingCount))
        pendingCapacity.record(Double(capacity))
        journalFailing.record(failing ? 1 : 0)
        if evicted > lastEvicted { pendingEvicted.increment(by: Int64(evicted - lastEvicted)); lastEvicted = evicted }
        if expired > lastExpired { pendingExpired.increment(by: Int64(expired - lastExpired)); lastExpired = expired }
        classPositive.record(positives)
        classNegative.record(negatives)
        for condition in HealthAlert.Name.allCases {
            let name = condition.rawValue
            if conditions[name] == nil {
                // The severity is the daemon's, so that alerting rules route on it.
                conditions[name] = Gauge(label: "cfensembled_health_condition_firing",
                                         dimensions: [("condition", name), ("severity", condition.severity)])
            }
            conditions[name]!.record(firing.contains(name) ? 1 : 0)
        }
    }
}
