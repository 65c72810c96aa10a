/// Thresholds of the weight-health monitor (docs/alerts.md).
public struct HealthConfiguration: Sendable, Equatable, Codable {
    /// weight_collapse: weight sum below this fraction of its healthy reference.
    public var minWeightSumRatio = 0.25
    /// weight_drift: the weight sum fell at every one of this many consecutive updates...
    public var driftUpdates = 10
    /// ...and by more than this fraction overall.
    public var driftRatio = 0.3
    /// score_collapse: standard deviation of recent published scores below this.
    public var minScoreStd = 0.005
    /// quality_regression: rolling PR-AUC below the simple average's by more than this...
    public var qualityMargin = 0.05
    /// ...once the window holds at least this many labelled instances...
    public var qualityMinLabels = 200
    /// ...and this many positives (PR-AUC over a handful of positives is noise).
    public var qualityMinPositives = 30
    /// calibration_drift: the rolling expected calibration error of the published
    /// probabilities above this...
    public var maxECE = 0.01
    /// ...and above this many times what sampling alone gives (its noise)...
    public var eceNoiseRatio = 3.0
    /// classifier_drift: the population stability index between a classifier's recent
    /// outputs and its reference above this...
    public var maxPSI = 0.25
    /// ...and above this many times what sampling alone gives for windows of their sizes.
    public var psiNoiseRatio = 4.0
    /// score_drift: the predicted positive rate (mean probability) of the recent window this many times
    /// that of the window before it (or that many times lower)...
    public var rateShiftRatio = 2.0
    /// ...and that many standard errors away from it.
    public var rateShiftZ = 4.0
    /// estimated_quality_drop: the label-free PR-AUC estimate of recent traffic below
    /// that of the traffic before it by more than this (both windows expecting at least
    /// quality_min_positives positives).
    public var estimateMargin = 0.1
    /// classifier_silent: a known classifier has not reported for this many seconds.
    public var silentAfterSeconds = 600.0
    /// label_outage: this many expected positives in a row did not arrive.
    public var outageExpectedPositives = 10.0
    /// Consecutive checks a condition must hold before it fires...
    public var fireAfter = 2
    /// ...and must be clear before it resolves...
    public var resolveAfter = 3
    /// ...and a firing condition resolves no sooner than this many seconds after it fired
    /// (checks run after every update, which can be many a second: no flapping).
    public var minFiringSeconds = 10.0

    public init() {}

    public func validationError() -> String? {
        if !(minWeightSumRatio > 0 && minWeightSumRatio < 1) { return "health.min_weight_sum_ratio must be in (0, 1)" }
        if driftUpdates < 2 { return "health.drift_updates must be >= 2" }
        if !(driftRatio > 0 && driftRatio < 1) { return "health.drift_ratio must be in (0, 1)" }
        if !(minScoreStd >= 0) { return "health.min_score_std must be >= 0" }
        if !(qualityMargin >= 0) { return "health.quality_margin must be >= 0" }
        if qualityMinLabels < 10 { return "health.quality_min_labels must be >= 10" }
        if qualityMinPositives < 1 { return "health.quality_min_positives must be >= 1" }
        if !(maxECE > 0 && maxECE < 1) { return "health.max_ece must be in (0, 1)" }
        if !(eceNoiseRatio >= 0) { return "health.ece_noise_ratio must be >= 0" }
        if !(maxPSI > 0) { return "health.max_psi must be > 0" }
        if !(psiNoiseRatio >= 0) { return "health.psi_noise_ratio must be >= 0" }
        if !(rateShiftRatio > 1) { return "health.rate_shift_ratio must be > 1" }
        if !(rateShiftZ > 0) { return "health.rate_shift_z must be > 0" }
        if !(estimateMargin > 0 && estimateMargin < 1) { return "health.estimate_margin must be in (0, 1)" }
        if !(silentAfterSeconds > 0) { return "health.silent_after_s must be > 0" }
        if !(outageExpectedPositives >= 1) { return "health.outage_expected_positives must be >= 1" }
        if fireAfter < 1 || resolveAfter < 1 { return "health.fire_after and health.resolve_after must be >= 1" }
        if !(minFiringSeconds >= 0) { return "health.min_firing_s must be >= 0" }
        return nil
    }
}

/// One state change of one condition: what the `alert` topic carries.
public struct HealthAlert: Sendable, Equatable {
    public enum Name: String, Sendable, CaseIterable {
        case weightCollapse = "weight_collapse"
        case weightDrift = "weight_drift"
        case scoreCollapse = "score_collapse"
        case qualityRegression = "quality_regression"
        case classifierSilent = "classifier_silent"
        case labelOutage = "label_outage"
        case calibrationDrift = "calibration_drift"
        case classifierDrift = "classifier_drift"
        case scoreDrift = "score_drift"
        case estimatedQualityDrop = "estimated_quality_drop"

        public var severity: String {
            switch self {
            case .weightCollapse, .scoreCollapse: "critical"
            default: "warning"
            }
        }
    }

    public var name: Name
    /// `firing` or `resolved`.
    public var state: String
    public var severity: String { name.severity }
    /// A human-readable reason carrying the numbers that triggered it.
    public var reason: String
    public var metrics: [String: Double]
    /// The classifier concerned (classifier_silent and classifier_drift only).
    public var classifier: String?
}

/// What the monitor looks at in one check.
public struct HealthObservation: Sendable {
    public var weights: [Double]
    public var classifiers: [String]
    /// Standard deviation of recent published scores and how many there were.
    public var scoreStd: Double
    public var scoreCount: Int
    public var prAUC: Double?
    public var baselinePrAUC: Double?
    public var qualityCount: Int
    /// Positives among them.
    public var qualityPositives: Int
    /// Rolling calibration of the probability map in use, over the recent labelled
    /// instances (nil until the window holds enough): expected calibration error, its
    /// sampling noise, and over how many.
    public var calibration: (ece: Double, noise: Double, count: Int)?
    /// The label-free PR-AUC estimate of the recent window and of the window before it,
    /// with the positives each expects (nil until both are full).
    public var estimate: (recent: Double, before: Double, recentPositives: Double, beforePositives: Double)?
    /// Seconds since each classifier last reported (same order as `classifiers`).
    public var silentSeconds: [Double]
    /// Labels in a row without a positive, and the running positive rate.
    public var negativesInARow: Int
    public var positiveRate: Double
    /// Whether this check follows a model update (drift counts updates).
    public var afterUpdate: Bool
    /// Monotonic time of the check, in seconds, and the Unix time.
    public var now: Double
    public var wall: Double

    public init(weights: [Double], classifiers: [String], scoreStd: Double, scoreCount: Int, prAUC: Double?,
                baselinePrAUC: Double?, qualityCount: Int, qualityPositives: Int = .max, silentSeconds: [Double], negativesInARow: Int,
                positiveRate: Double, afterUpdate: Bool, now: Double = 0, wall: Double = 0,
                calibration: (ece: Double, noise: Double, count: Int)? = nil) {
        self.weights = weights
        self.classifiers = classifiers
        self.scoreStd = scoreStd
        self.scoreCount = scoreCount
        self.prAUC = prAUC
        self.baselinePrAUC = baselinePrAUC
        self.qualityCount = qualityCount
        self.qualityPositives = qualityPositives
        self.silentSeconds = silentSeconds
        self.negativesInARow = negativesInARow
        self.positiveRate = positiveRate
        self.afterUpdate = afterUpdate
        self.now = now
        self.wall = wall
        self.calibration = calibration
    }
}

/// Watches the aggregator's health: every condition of docs/alerts.md, with
/// hysteresis (a condition fires after `fireAfter` consecutive checks and resolves after
/// `resolveAfter` clear ones), reporting each change of state exactly once.
public struct HealthMonitor: Sendable {
    struct Condition: Sendable {
        var hits = 0
        var clears = 0
        var firing = false
        var firedAt = 0.0
        /// Unix time it fired (for people; timers use `firedAt`).
        var firedWall = 0.0
        var reason = ""
    }

    /// What the monitor knows, with its times as ages, so that it survives a restart:
    /// firing conditions keep firing (with the time they have fired for), hysteresis
    /// counts go on, and the healthy weight-sum reference and drift window are kept.
    public struct State: Codable, Sendable, Equatable {
        public struct ConditionState: Codable, Sendable, Equatable {
            public var hits: Int
            public var clears: Int
            public var firing: Bool
            /// Seconds since it fired, and why (firing conditions only).
            public var firedAgo: Double?
            public var reason: String?
            /// Unix time it fired.
            public var firedWall: Double?
        }

        /// Keyed as the alerts are: the condition's name, `classifier_silent:<name>`,
        /// `classifier_drift:<name>`.
        public var conditions: [String: ConditionState] = [:]
        public var healthySums: [Double] = []
        public var recentSums: [Double] = []

        public init() {}
    }

    /// Thresholds; replaceable at run time (SIGHUP) without losing the conditions' state.
    public var config: HealthConfiguration
    private(set) var conditions: [String: Condition] = [:]
    /// Weight sums at recent healthy checks; the reference is their maximum.
    private var healthySums: [Double] = []
    /// Weight sums after recent updates, for drift.
    private var recentSums: [Double] = []
    var now = 0.0
    var wall = 0.0

    public init(config: HealthConfiguration) { self.config = config }

    /// The names (and classifiers) of the conditions firing now.
    public var firing: [(name: HealthAlert.Name, classifier: String?)] {
        firingDetails.map { ($0.name, $0.classifier) }
    }

    /// A condition's key (`weight_collapse`, `classifier_silent:<name>`) as its name and
    /// classifier; nil for a key that names no condition (a damaged saved state).
    private static func parse(_ key: String) -> (name: HealthAlert.Name, classifier: String?)? {
        let parts = key.split(separator: ":", maxSplits: 1).map(String.init)
        guard let first = parts.first, let name = HealthAlert.Name(rawValue: first) else { return nil }
        return (name, parts.count > 1 ? parts[1] : nil)
    }

    /// The conditions firing now with when they fired (Unix time) and why.
    public var firingDetails: [(name: HealthAlert.Name, classifier: String?, since: Double, reason: String)] {
        conditions.filter(\.value.firing).sorted { $0.key < $1.key }.map { key, c in
            let parsed = Self.parse(key)!
            return (parsed.name, parsed.classifier, c.firedWall, c.reason)
        }
    }

    /// Whether a critical condition fires (scores then come from the fallback scorer).
    public var criticalFiring: Bool { firing.contains { $0.name.severity == "critical" } }

    /// `healthy`, `warning` or `critical`.
    public var status: String {
        let f = firing
        if f.contains(where: { $0.name.severity == "critical" }) { return "critical" }
        return f.isEmpty ? "healthy" : "warning"
    }

    /// The healthy reference weight sum (the largest of recent healthy checks).
    public var referenceWeightSum: Double? { healthySums.max() }

    /// The state as of `now` (on the clock of `check`). Hit and clear counts are capped
    /// at what the thresholds can still tell apart, so an idle monitor's state does not
    /// change from check to check.
    public func state(now: Double) -> State {
        var s = State()
        let cap = max(config.fireAfter, config.resolveAfter)
        for (key, c) in conditions {
            s.conditions[key] = .init(hits: min(c.hits, cap), clears: min(c.clears, cap), firing: c.firing,
                                      firedAgo: c.firing ? max(0, now - c.firedAt) : nil, reason: c.firing ? c.reason : nil,
                                      firedWall: c.firing ? c.firedWall : nil)
        }
        s.healthySums = healthySums
        s.recentSums = recentSums
        return s
    }

    /// Takes up a state saved by `state(now:)`, at `now` on this run's clock: the time
    /// between the two (the daemon was down) does not count towards any timer.
    /// Publishes nothing: what fired before still fires, and resolves only as usual.
    public mutating func restore(_ s: State, now: Double) {
        conditions = [:]
        for (key, c) in s.conditions {
            guard Self.parse(key) != nil else { continue }
            conditions[key] = Condition(hits: c.hits, clears: c.clears, firing: c.firing, firedAt: now - (c.firedAgo ?? 0),
                                        firedWall: c.firedWall ?? 0, reason: c.reason ?? "")
        }
        driftEngaged = true   // the next drift check steps every condition once
        healthySums = Array(s.healthySums.filter { $0 > 0 && $0.isFinite }.suffix(100))
        recentSums = Array(s.recentSums.suffix(config.driftUpdates + 1))
        self.now = now
    }

    /// Records a weight sum known to be healthy without a check, e.g. the starting weights
    /// before the first update (which can already move them a long way).
    public mutating func noteHealthy(weightSum: Double) {
        guard weightSum > 0, weightSum.isFinite else { return }
        healthySums.append(weightSum)
        if healthySums.count > 100 { healthySums.removeFirst() }
    }

    /// Evaluates every condition once; returns the alerts whose state changed.
    public mutating func check(_ o: HealthObservation) -> [HealthAlert] {
        var out: [HealthAlert] = []
        now = o.now
        wall = o.wall
        let m = o.weights.count
        let sum = o.weights.reduce(0, +)
        let nonPositive = o.weights.filter { $0 <= 0 }.count
        // Zero weights alone are no collapse: learning.nonnegative_weights projects onto
        // w >= 0, and a sparse weighted average with a healthy sum is a fine model. Most
        // weights below zero, or the sum falling (zeros included), is.
        let negative = o.weights.filter { $0 < 0 }.count
        let minWeight = o.weights.min() ?? 0

        // weight_collapse
        if m > 0 {
            let reference = referenceWeightSum ?? sum
            let lowSum = reference > 0 && sum < config.minWeightSumRatio * reference
            let mostNegative = negative * 2 > m
            // A poisoned model (NaN or infinite weights) scores nothing useful.
            let nonFinite = o.weights.filter { !$0.isFinite }.count
            var reason = "aggregator weight sum \(fmt(sum))"
            reason += lowSum ? " is below \(fmt(config.minWeightSumRatio)) of its healthy level \(fmt(reference))" : " (healthy level \(fmt(reference)))"
            reason += "; \(nonPositive) of \(m) weights <= 0"
            if nonFinite > 0 { reason = "\(nonFinite) of \(m) aggregator weights are not finite (NaN or infinite)" }
            step("weight_collapse", holds: lowSum || mostNegative || nonFinite > 0, reason: reason,
                 cleared: "aggregator weight sum \(fmt(sum)) is back above \(fmt(config.minWeightSumRatio)) of its healthy level \(fmt(reference)), \(nonPositive) of \(m) weights <= 0",
                 metrics: ["weight_sum": sum, "reference_weight_sum": reference, "min_weight": minWeight,
                           "negative_weights": Double(nonPositive)], into: &out)
        }

        // weight_drift (counted over updates only)
        if o.afterUpdate && m > 0 {
            recentSums.append(sum)
            if recentSums.count > config.driftUpdates + 1 { recentSums.removeFirst() }
        }
        if recentSums.count == config.driftUpdates + 1 && o.afterUpdate {
            let falling = zip(recentSums, recentSums.dropFirst()).allSatisfy { $1 < $0 }
            let first = recentSums.first!, last = recentSums.last!
            let drop = first > 0 ? (first - last) / first : 0
            step("weight_drift", holds: falling && drop > config.driftRatio,
                 reason: "aggregator weight sum fell at each of the last \(config.driftUpdates) updates, from \(fmt(first)) to \(fmt(last)) (\(fmt(drop * 100))%)",
                 cleared: "aggregator weight sum is \(fmt(last)), no longer falling by more than \(fmt(config.driftRatio * 100))% over \(config.driftUpdates) updates",
                 metrics: ["weight_sum": last, "drift": drop], into: &out)
        }

        // score_collapse
        if o.scoreCount >= 100 {
            step("score_collapse", holds: o.scoreStd < config.minScoreStd,
                 reason: "standard deviation of the last \(o.scoreCount) scores is \(fmt(o.scoreStd)), below \(fmt(config.minScoreStd))",
                 cleared: "standard deviation of the last \(o.scoreCount) scores is \(fmt(o.scoreStd)), back above \(fmt(config.minScoreStd))",
                 metrics: ["score_std": o.scoreStd], into: &out)
        }

        // quality_regression
        if let q = o.prAUC, let base = o.baselinePrAUC, o.qualityCount >= config.qualityMinLabels,
           o.qualityPositives >= config.qualityMinPositives {
            step("quality_regression", holds: q < base - config.qualityMargin,
                 reason: "rolling PR-AUC \(fmt(q)) over \(o.qualityCount) labelled instances is below the simple average's \(fmt(base)) by more than \(fmt(config.qualityMargin))",
                 cleared: "rolling PR-AUC \(fmt(q)) over \(o.qualityCount) labelled instances is back within \(fmt(config.qualityMargin)) of the simple average's \(fmt(base))",
                 metrics: ["pr_auc": q, "baseline_pr_auc": base], into: &out)
        }

        // calibration_drift (once the window holds as many probabilities as quality needs)
        if let c = o.calibration, c.count >= config.qualityMinLabels {
            let bound = max(config.maxECE, config.eceNoiseRatio * c.noise)
            step("calibration_drift", holds: c.ece > bound,
                 reason: "expected calibration error of the probabilities published now is \(fmt(c.ece)) over \(c.count) labelled instances, above \(fmt(bound)) (health.max_ece \(fmt(config.maxECE)), \(fmt(config.eceNoiseRatio)) x its sampling noise \(fmt(c.noise)))",
                 cleared: "expected calibration error of the probabilities published now is \(fmt(c.ece)) over \(c.count) labelled instances, back within \(fmt(bound))",
                 metrics: ["ece": c.ece, "ece_noise": c.noise, "ece_bound": bound], into: &out)
        }

        // estimated_quality_drop (both windows expecting enough positives to tell)
        if let e = o.estimate, min(e.recentPositives, e.beforePositives) >= Double(config.qualityMinPositives) {
            step("estimated_quality_drop", holds: e.recent < e.before - config.estimateMargin,
                 reason: "the PR-AUC expected of recent traffic from its calibrated probabilities is \(fmt(e.recent)), below the \(fmt(e.before)) expected of the traffic before it by more than \(fmt(config.estimateMargin)) (no label needed)",
                 cleared: "the PR-AUC expected of recent traffic is \(fmt(e.recent)), within \(fmt(config.estimateMargin)) of the \(fmt(e.before)) before it",
                 metrics: ["estimated_pr_auc": e.recent, "estimated_pr_auc_before": e.before,
                           "expected_positives": e.recentPositives], into: &out)
        }

        // classifier_silent, one condition per classifier
        for (name, seconds) in zip(o.classifiers, o.silentSeconds) {
            step("classifier_silent:\(name)", holds: seconds > config.silentAfterSeconds,
                 reason: "classifier \(name) has not reported for \(Int(seconds)) s (limit \(Int(config.silentAfterSeconds)) s)",
                 cleared: "classifier \(name) reports again (last report \(Int(seconds)) s ago, limit \(Int(config.silentAfterSeconds)) s)",
                 metrics: ["silent_s": seconds], classifier: name, into: &out)
        }

        // label_outage: a run of negatives that the positive rate makes very unlikely.
        if o.positiveRate > 0 {
            let expected = Double(o.negativesInARow) * o.positiveRate
            step("label_outage", holds: expected >= config.outageExpectedPositives,
                 reason: "\(o.negativesInARow) labels in a row without a positive, where the positive rate \(fmt(o.positiveRate)) predicts \(fmt(expected))",
                 cleared: "positive labels arrive again: \(o.negativesInARow) labels since the last positive, where the positive rate \(fmt(o.positiveRate)) predicts \(fmt(expected))",
                 metrics: ["negatives_in_a_row": Double(o.negativesInARow), "expected_positives": expected], into: &out)
        }

        if !criticalFiring && m > 0 && sum > 0 && sum.isFinite {
            healthySums.append(sum)
            if healthySums.count > 100 { healthySums.removeFirst() }
        }
        return out
    }

    /// Whether a drift condition fires or has started to hold: then every drift check
    /// must step the conditions (hysteresis). Otherwise a check whose statistics are all
    /// within bounds changes nothing, and `checkDrift(_:names:now:wall:)` skips it.
    public internal(set) var driftEngaged = true

    /// What one check did to a condition.
    enum Transition { case fired, resolved }

    /// One check of a condition with its hysteresis; returns whether it fired or resolved.
    mutating func advance(_ key: String, holds: Bool) -> Transition? {
        var c = conditions[key] ?? Condition()
        var transition: Transition?
        if holds {
            c.hits += 1
            c.clears = 0
            if !c.firing && c.hits >= config.fireAfter {
                c.firing = true
                c.firedAt = now
                c.firedWall = wall
                transition = .fired
            }
        } else {
            c.clears += 1
            c.hits = 0
            if c.firing && c.clears >= config.resolveAfter && now - c.firedAt >= config.minFiringSeconds {
                c.firing = false
                transition = .resolved
            }
        }
        conditions[key] = c
        return transition
    }

    /// The alert of a transition (a firing one keeps its reason).
    mutating func publish(_ t: Transition, _ key: String, reason: String, cleared: String, metrics: [String: Double],
                          classifier: String? = nil, into out: inout [HealthAlert]) {
        let name = Self.parse(key)!.name
        switch t {
        case .fired:
            conditions[key]?.reason = reason
            out.append(HealthAlert(name: name, state: "firing", reason: reason, metrics: metrics, classifier: classifier))
        case .resolved:
            out.append(HealthAlert(name: name, state: "resolved", reason: cleared, metrics: metrics, classifier: classifier))
        }
    }

    private mutating func step(_ key: String, holds: Bool, reason: String, cleared: String, metrics: [String: Double],
                               classifier: String? = nil, into out: inout [HealthAlert]) {
        if let t = advance(key, holds: holds) {
            publish(t, key, reason: reason, cleared: cleared, metrics: metrics, classifier: classifier, into: &out)
        }
    }

    func fmt(_ v: Double) -> String {
        let r = (v * 1000).rounded() / 1000
        return r == r.rounded() && abs(r) < 1e12 ? String(Int64(r)) : "\(r)"
    }
}
