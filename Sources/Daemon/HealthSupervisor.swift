import Online

/// The aggregator's health and what follows from it: the recent scores that
/// `score_collapse` looks at, the model kept at the last healthy update (for rollback
/// and the `last_healthy` fallback), and which scorer publishes while a critical
/// condition fires. It decides; the core publishes.
struct HealthSupervisor {
    private(set) var monitor: HealthMonitor
    /// What is published while a critical condition fires (`health.fallback`).
    var fallback: DaemonConfiguration.Fallback
    let modelConfig: ModelConfiguration
    /// Recent scores of the live model (published or not).
    /// How many recent scores `score_collapse` looks at (and a checkpoint keeps).
    static let recentScoreWindow = 1000
    private var recentScores: [Double] = []
    private var recentNext = 0
    /// Labels in a row without a positive (label_outage).
    private(set) var negativesInARow = 0
    /// The model after the last update at which no critical condition fired.
    private(set) var lastHealthy: ModelSnapshot?
    /// How many times `lastHealthy` was taken (the journal marks each).
    private(set) var healthySnapshots: UInt64 = 0
    /// The model scores come from under `last_healthy` while a critical condition fires.
    private(set) var fallbackModel: CFEnsemble?

    /// The label-free drift windows (classifier_drift, score_drift).
    private(set) var drift: DriftWatch

    init(config: HealthConfiguration, fallback: DaemonConfiguration.Fallback, modelConfig: ModelConfiguration,
         driftWindows: DriftWindows = DriftWindows()) {
        monitor = HealthMonitor(config: config)
        drift = DriftWatch(windows: driftWindows)
        self.fallback = fallback
        self.modelConfig = modelConfig
    }

    var thresholds: HealthConfiguration {
        get { monitor.config }
        set { monitor.config = newValue }
    }

    var criticalFiring: Bool { monitor.criticalFiring }
    var status: String { monitor.status }

    mutating func recordScore(_ score: Double) {
        if recentScores.count < Self.recentScoreWindow { recentScores.append(score) } else { recentScores[recentNext] = score }
        recentNext = (recentNext + 1) % Self.recentScoreWindow
    }

    /// Records a scored instance in the drift windows (the live model's score, at the
    /// precision the journal keeps it, so that a replay bins it alike). The probability
    /// counts towards the predicted positive rate only once its map is fitted: before, it
    /// is the simple average, whose mean is no rate.
    /// Returns true when a drift check is due (every `monitoring.drift_check_every`).
    @inline(__always)
    mutating func recordDrift(_ entries: [Entry], score: Double, probability: Double, fitted: Bool) -> Bool {
        drift.record(entries, score: Double(Float(score)), probability: fitted ? probability : .nan)
    }

    /// Runs the drift conditions once (nothing is built while every statistic is within
    /// its bound and none is engaged); returns the alerts whose state changed.
    mutating func checkDrift(names: [String], now: Double, wall: Double) -> [HealthAlert] {
        monitor.checkDrift(drift, names: names, now: now, wall: wall)
    }

    /// Every classifier's outputs from now on make its new reference.
    mutating func pinReference() { drift.pin() }

    mutating func noteLabel(_ label: Int8) {
        negativesInARow = label == 1 ? 0 : negativesInARow + 1
    }

    /// Before the first update the starting weights are healthy by definition.
    mutating func noteHealthy(weightSum: Double) { monitor.noteHealthy(weightSum: weightSum) }

    /// The fallback that applies now in a standalone or learner process (a scorer follows
    /// its learner's, see `DaemonCore.activeFallback`).
    var localFallback: DaemonConfiguration.Fallback? {
        monitor.criticalFiring && fallback != .none ? fallback : nil
    }

    /// Runs every condition once and keeps the last healthy model; returns the alerts
    /// whose state changed.
    mutating func check(model: CFEnsemble, lastSeen: [Double], quality: (score: Double?, baseline: Double?, count: Int, positives: Int),
                        afterUpdate: Bool, now: Double, wall: Double = 0,
                        calibration: (ece: Double, noise: Double, count: Int)? = nil,
                        estimate: (recent: Double, before: Double, recentPositives: Double, beforePositives: Double)? = nil) -> [HealthAlert] {
        let names = model.registry.names
        var mean = 0.0, sq = 0.0
        for v in recentScores { mean += v }
        mean /= Double(max(1, recentScores.count))
        for v in recentScores { sq += (v - mean) * (v - mean) }
        let std = recentScores.isEmpty ? 0 : (sq / Double(recentScores.count)).squareRoot()
        let cw = model.classWeights
        let total = cw.positives + cw.negatives
        var observation = HealthObservation(
            weights: model.aggregator.w, classifiers: names, scoreStd: std, scoreCount: recentScores.count,
            prAUC: quality.score, baselinePrAUC: quality.baseline, qualityCount: quality.count,
            qualityPositives: quality.positives, silentSeconds: names.indices.map { $0 < lastSeen.count ? now - lastSeen[$0] : 0 },
            negativesInARow: negativesInARow, positiveRate: total > 0 ? cw.positives / total : 0,
            afterUpdate: afterUpdate, now: now, wall: wall, calibration: calibration)
        observation.estimate = estimate
        let wasCritical = monitor.criticalFiring
        let alerts = monitor.check(observation)
        if monitor.criticalFiring {
            if !wasCritical, fallback == .last_healthy, let healthy = lastHealthy {
                fallbackModel = try? CFEnsemble(config: modelConfig, restoring: healthy)
            }
        } else {
            fallbackModel = nil
            if afterUpdate && model.version > 0 {
                lastHealthy = model.snapshot()
                healthySnapshots &+= 1
            }
        }
        return alerts
    }

    /// The `last_healthy` model, extended to every classifier the live model knows (a
    /// classifier registered after it was kept starts from its initial factors and
    /// weight); nil when there is none or it cannot be extended (then the average is
    /// published).
    mutating func coveringFallbackModel(for model: CFEnsemble) -> (model: CFEnsemble?, dropped: String?) {
        guard let healthy = fallbackModel else { return (nil, nil) }
        if healthy.classifierCount != model.classifierCount {
            do { try healthy.cover(model.registry.names) } catch {
                fallbackModel = nil
                return (nil, error.description)
            }
        }
        return (healthy, nil)
    }

    // MARK: Durable state

    /// The state to persist as of `now` (the checks' clock); `lastSeen` by classifier
    /// index, `names` the registry's. `full`: with recent scores and the last healthy
    /// model (checkpoints).
    func durable(names: [String], lastSeen: [Double], now: Double, full: Bool) -> DurableHealth {
        var d = DurableHealth()
        d.monitor = monitor.state(now: now)
        d.negativesInARow = negativesInARow
        for (u, name) in names.enumerated() where u < lastSeen.count {
            d.silentFor[name] = max(0, now - lastSeen[u])
        }
        if full {
            d.recentScores = recentScores.count < Self.recentScoreWindow ? recentScores
                : Array(recentScores[recentNext...] + recentScores[..<recentNext])
            d.lastHealthy = lastHealthy
            d.drift = drift
        }
        return d
    }

    /// Takes up a persisted state at `now`; returns when each of `names` last reported
    /// on this run's clock (a classifier the state does not know reported just now).
    /// With a critical condition still firing, the fallback resumes at once.
    mutating func restore(_ d: DurableHealth, names: [String], now: Double) -> [Double] {
        monitor.restore(d.monitor, now: now)
        negativesInARow = max(0, d.negativesInARow)
        if let scores = d.recentScores {
            recentScores = Array(scores.suffix(Self.recentScoreWindow))
            recentNext = recentScores.count % Self.recentScoreWindow
        }
        if let healthy = d.lastHealthy { lastHealthy = healthy }
        // Windows of other sizes (a changed configuration) start afresh.
        if let saved = d.drift, saved.windows == drift.windows { drift = saved }
        if monitor.criticalFiring, fallback == .last_healthy, let healthy = lastHealthy {
            fallbackModel = try? CFEnsemble(config: modelConfig, restoring: healthy)
        }
        return names.map { now - max(0, d.silentFor[$0] ?? 0) }
    }

    /// A scorer's fallback model comes with the learner's state.
    mutating func setFallbackModel(_ model: CFEnsemble?) { fallbackModel = model }
}
