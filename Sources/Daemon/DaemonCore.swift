import Logging
import Online
import Transport
import Wire

/// The state a restart brings back: what `StateRestore` reads from the checkpoint and
/// the journal, and what a fresh start begins with.
struct RestoredState {
    var model: CFEnsemble
    var pending: PendingStore
    var batch: [LabelledInstance] = []
    var counters = Counters()
    var quality: RollingQuality
    /// What turns scores into probabilities.
    var calibrator = ScoreCalibrator()
    /// The health supervisor's state (empty on a fresh start).
    var health = DurableHealth()
    /// The checkpoint restored, if any: when it was written, its size and what it held.
    var checkpoint: Persistence.LastCheckpoint?
}

/// Everything the daemon decides, without a socket: it owns the model, the pending
/// store, the join buffer, the mini-batch, the quality window and the counters, reads
/// time from an injected clock and writes its output to a sink. The event loop feeds it
/// decoded messages and ticks; in-process tests do the same with a `ManualClock` and a
/// recording sink.
///
/// Not thread-safe: one owner drives it.
final class DaemonCore<Sink: OutputSink> {
    private(set) var config: DaemonConfiguration
    let role: Role
    let clock: DaemonClock
    var logger: Logger
    let metrics: DaemonMetrics
    var sink: Sink

    private(set) var model: CFEnsemble
    private(set) var pending: PendingStore
    private(set) var joins: JoinBuffer
    private(set) var quality: RollingQuality
    /// Learns the map from scores to probabilities (learner and standalone).
    private(set) var calibrator: ScoreCalibrator
    /// Scorer: the map its learner last sent.
    var remoteCalibration = Calibration()
    private(set) var counters: Counters
    private(set) var batch: [LabelledInstance]
    var batchStarted = 0.0
    /// Learner: labels that arrived before their instance (from another scorer).
    private(set) var earlyLabels: EarlyLabels
    /// Changes since the last checkpoint (nil when `state.journal` is off, and on scorers).
    private(set) var journal: Journal?
    private var journalled: (counters: Counters, evicted: UInt64, expired: UInt64) = (Counters(), 0, 0)
    /// What the last health record held (times left out) and when it was appended.
    private var journalledHealth: (key: HealthJournalKey?, at: Double) = (nil, -1e9)
    private var journalledHealthySnapshots: UInt64 = 0
    var resolver = ClassifierResolver()
    var health: HealthSupervisor
    private var entries: [Entry] = []
    private var errorBucket: TokenBucket
    /// The batch entry being handled (its rejections name it: DaemonCore+Batch.swift).
    var batchEntry: (topic: BatchTopic, index: Int)?
    /// Labelled instances recorded in `quality`, and its PR-AUCs as last computed
    /// (DaemonCore+Quality.swift).
    var qualityRecorded: UInt64 = 0
    typealias WindowCalibration = (ece: Double, brier: Double, noise: Double, count: Int)
    /// The PR-AUCs, the calibration of the probabilities published, and that of the map
    /// in use now, over the quality window.
    var qualityCache: (recorded: UInt64, at: Double, score: Double?, baseline: Double?,
                       calibration: WindowCalibration?, current: WindowCalibration?) = (0, -1e9, nil, nil, nil, nil)
    /// The most recent published scores (alert budgets' thresholds) and the operating
    /// points as last computed.
    var recentScores: RecentScores
    var operatingCache: (at: Double, points: [OperatingPoint], target: PrecisionTargetBody?) = (-1e9, [], nil)
    /// The label-free quality estimate as last computed, and the scored count then.
    var estimateCache: (scored: UInt64, body: EstimateBody?) = (.max, nil)
    private var lastHealthPublished = -1e9
    private var nextExpiry = 0.0
    private(set) var nextHealth = 0.0
    /// Scorer: the learner's last word on status and fallback (heartbeat or state).
    var remote: ModelState?
    /// Told after every change of the model that the cluster must hear of (update,
    /// rollback); the learner publishes its state.
    var onModelChanged: () -> Void = {}
    /// Runs the aggregator's part of updates off the loop (`learning.update_thread`); nil:
    /// updates run on the loop.
    var updateWorker: UpdateWorker?
    var updateStarted = 0.0
    /// The `cluster` part of the health body (scale-out roles).
    var clusterBody: () -> HealthBody.Cluster? = { nil }

    init(config: DaemonConfiguration, role: Role, state: RestoredState, journal: Journal?, clock: DaemonClock,
         logger: Logger, metrics: DaemonMetrics, sink: Sink) {
        self.config = config
        self.role = role
        self.clock = clock
        self.logger = logger
        self.metrics = metrics
        self.sink = sink
        model = state.model
        pending = state.pending
        batch = state.batch
        counters = state.counters
        quality = state.quality
        calibrator = state.calibrator
        recentScores = RecentScores(capacity: config.scoreWindow)
        self.journal = journal
        joins = JoinBuffer(windowMs: config.joinWindowMs, capacity: config.maxJoining)
        earlyLabels = EarlyLabels(wait: role == .learner ? config.labelWaitSeconds : 0, capacity: 100_000)
        health = HealthSupervisor(config: config.health, fallback: config.fallback, modelConfig: config.model,
                                  driftWindows: config.driftWindows)
        errorBucket = TokenBucket(rate: config.errorRatePerSecond, burst: max(1, config.errorRatePerSecond), now: clock.monotonic())
        entries.reserveCapacity(config.model.maxClassifiers)
        resolver.allowed = config.allowedClassifierSet
        let now = clock.monotonic()
        // Health goes on from where it was: nothing fired is resolved, nothing re-fired.
        resolver.restoreLastSeen(health.restore(state.health, names: model.registry.names, now: now))
        metrics.startCounting(evicted: pending.evicted, expired: pending.expired)
        if !batch.isEmpty { batchStarted = now }
        nextHealth = now + config.healthIntervalSeconds
    }

    // MARK: Input

    /// A decoded `pred`. Returns what was scored for it now (a scorer forwards that to
    /// its learner), nil when it was rejected, is waiting in the join buffer, or was
    /// learnt as history.
    @discardableResult
    func pred(_ message: InputMessage) -> ScoredInstance? {
        if role == .learner && message.label == nil {
            reject(DecodeError("pred sent to a learner (--role learner): send preds to the scorers, which forward them here",
                               kind: "role", topic: "pred", id: message.id))
            return nil
        }
        if role == .all && message.label == nil && pending.contains(message.id) {
            rejectDuplicate(message, topic: "pred")
            return nil
        }
        guard resolve(message) else { return nil }
        counters.predMessages &+= 1
        if role == .learner, let label = message.label {
            // Replayed history sent straight to the learner: learnt at once, nothing published.
            let s = model.score(entries)
            recordQuality(score: s.score, baseline: s.average, probability: calibration.probability(score: s.score, average: s.average),
                          label: label)
            learn(entries, label: label, scored: true)
            return nil
        }
        if role == .scorer {
            return scoreAndPublish(id: message.id, entries: entries, ts: message.ts, label: message.label)
        }
        let now = clock.monotonic()
        if joins.isEnabled && (joins.contains(message.id) || entries.count < model.classifierCount) {
            let joined = joins.add(id: message.id, entries: entries, ts: message.ts, label: message.label, now: now)
            if joined >= model.classifierCount, let j = joins.take(message.id) {
                scoreAndPublish(id: message.id, entries: j.entries, ts: j.ts, label: j.label)
            }
            while let due = joins.popDue(now: now) {
                if due.joining.deadline > now { counters.joinOverflow &+= 1 }
                scoreAndPublish(id: due.id, entries: due.joining.entries, ts: due.joining.ts, label: due.joining.label)
            }
            return nil
        }
        return scoreAndPublish(id: message.id, entries: entries, ts: message.ts, label: message.label)
    }

    /// Where a label goes.
    enum LabelRoute { case handled, forward }

    /// A decoded `label`. A scorer passes labels on to its learner (`.forward`: the
    /// caller forwards it and reports `labelForwarded` or `forwardDropped`).
    func label(_ message: InputMessage) -> LabelRoute {
        guard let label = message.label else { return .handled }
        if role == .scorer { return .forward }
        if joins.contains(message.id), let j = joins.take(message.id) {
            scoreAndPublish(id: message.id, entries: j.entries, ts: j.ts, label: j.label)
        }
        if let instance = pending.take(message.id) {
            journal?.append(.taken(id: message.id))
            counters.labelMessages &+= 1
            recordQuality(score: Double(instance.score), baseline: Double(instance.average),
                          probability: Double(instance.probability), label: label)
            learn(instance.entries, label: label, scored: false)
        } else if !message.preds.isEmpty {
            guard resolve(message) else { return .handled }
            counters.labelMessages &+= 1
            learn(entries, label: label, scored: false)
        } else if role == .learner && earlyLabels.add(id: message.id, label: label, now: clock.monotonic()) {
            // Its instance may still be on its way from another scorer.
        } else {
            counters.unmatchedLabels &+= 1
            metrics.labelsUnmatched.increment()
            logger.debug("unmatched label", metadata: ["id": "\(message.id)"])
        }
        return .handled
    }

    /// Learner: an instance a scorer scored (its score, simple average and arrival time).
    /// Kept pending (or learnt at once if it carries its label), and learnt from
    /// unlabelled as if scored here.
    /// The scorer's probability is not forwarded: the learner's own map (the one the
    /// scorer applies too, from the learner's state) gives it.
    func scored(_ message: InputMessage, score: Double, average: Double, arrival: Double) {
        if message.label == nil && pending.contains(message.id) {
            rejectDuplicate(message, topic: "scored")
            return
        }
        guard resolve(message) else { return }
        counters.predMessages &+= 1
        model.observe(entries)
        health.recordScore(score)
        let probability = calibration.probability(score: score, average: average)
        if health.recordDrift(entries, score: score, probability: probability, fitted: calibration.fitted) { checkDrift() }
        if message.label == nil, let early = earlyLabels.take(message.id) {
            // Its label overtook it (sent through another scorer).
            counters.labelMessages &+= 1
            recordQuality(score: score, baseline: average, probability: probability, label: early)
            learn(entries, label: early, scored: true)
        } else if let label = message.label {
            recordQuality(score: score, baseline: average, probability: probability, label: label)
            learn(entries, label: label, scored: true)
        } else {
            // The scorer's clock is not ours: an arrival in the future would hold up the
            // expiry of every instance behind it (the store expires in arrival order).
            let now = clock.steady()
            let at = arrival.isFinite ? min(now, max(now - config.pendingTTLSeconds, arrival)) : now
            let instance = PendingInstance(entries: entries, arrival: at, score: score, average: average, probability: probability)
            pending.insert(id: message.id, instance)
            journal?.append(.pending(id: message.id, instance))
        }
    }

    /// Scorer: a label reached the learner's queue, or did not (learner down or slow).
    func labelForwarded(count: Int = 1) {
        counters.labelsForwarded &+= UInt64(count)
        metrics.forwardedLabel.increment(by: Int64(count))
    }

    func forwardDropped(kind: String, count: Int = 1) {
        let before = counters.forwardDropped
        counters.forwardDropped &+= UInt64(count)
        metrics.forwardDropped.increment(by: Int64(count))
        let n = counters.forwardDropped
        if before < 10 || n / 10_000 != before / 10_000 {
            logger.warning("\(kind) not forwarded to the learner: its queue is full (learner down or slow)",
                           metadata: ["forward_dropped_total": "\(n)"])
        }
    }

    /// Counts the message received (every one is, before it is decoded).
    func received() { counters.received &+= 1 }
    func countReceived(extra: UInt64) { counters.received &+= extra }
    func countBatch() { counters.batches &+= 1 }

    /// A `ping`: counted as such (a producer's readiness check), nothing else.
    func ping() {
        counters.pings &+= 1
        metrics.receivedPing.increment()
    }

    /// A pred whose id is already pending: its score was published; scoring it again
    /// would publish a second score and leave one of its labels unmatched.
    private func rejectDuplicate(_ message: InputMessage, topic: String) {
        reject(DecodeError("id: \(message.id) is already scored and waiting for its label; a pred's id must be unique "
                           + "(a retry, or a pred later than input.join_window_ms, is not scored again)",
                           kind: "duplicate", topic: topic, id: message.id))
    }

    /// A message (or `count` entries of a batch) that was not accepted: counted by reason
    /// and reported on the `error` topic, at most `output.error_rate_per_s` a second. While
    /// a batch entry is handled, the error names the batch topic and the entry.
    func reject(_ error: DecodeError, count: Int = 1) {
        var error = error
        if let b = batchEntry {
            error.topic = b.topic.rawValue
            error.entry = b.index
        }
        counters.rejected[error.kind, default: 0] &+= UInt64(count)
        metrics.rejected(reason: error.kind, count: count)
        logger.debug("rejected input", metadata: ["reason": "\(error.reason)", "id": "\(error.id ?? "-")"])
        guard errorBucket.take(now: clock.monotonic()) else {
            counters.errorsSuppressed &+= 1
            metrics.errorsSuppressed.increment()
            return
        }
        metrics.publishedError.increment()
        let reason = error.entry.map { "items[\($0)]: " + error.reason } ?? error.reason
        sink.publish(.error, WireJSON.encode(ErrorBody(ts: clock.wall(), topic: error.topic, id: error.id, reason: reason,
                                                       entry: error.entry)))
    }


    // MARK: Scoring

    /// Maps the message's classifier names into `entries`; rejects (registering
    /// nothing) when they would exceed `model.max_classifiers`.
    private func resolve(_ message: InputMessage) -> Bool {
        let outcome = resolver.resolve(message.preds, name: { $0.name }, value: { $0.value }, model: model, into: &entries,
                                       now: clock.monotonic()) { name in journal?.append(.classifier(name: name)) }
        if case let .tooMany(newNames) = outcome {
            reject(DecodeError("preds: \(newNames) new classifier(s) would exceed model.max_classifiers (\(config.model.maxClassifiers)); known: \(model.classifierCount)",
                               kind: "limit", topic: message.topic.rawValue, id: message.id))
            return false
        }
        if case let .notAllowed(name) = outcome {
            reject(DecodeError("preds.\(name): classifier \(name) is not in model.allowed_classifiers",
                               kind: "field", topic: message.topic.rawValue, id: message.id))
            return false
        }
        return true
    }

    /// What is published instead of the live model's score, if anything: decided by the
    /// health supervisor here, or by the learner for a scorer.
    var activeFallback: DaemonConfiguration.Fallback? {
        if role == .scorer {
            guard let r = remote, r.fallback != "none" else { return nil }
            return DaemonConfiguration.Fallback(rawValue: r.fallback) ?? .average
        }
        return health.localFallback
    }

    @discardableResult
    func scoreAndPublish(id: String, entries: [Entry], ts: Double?, label: Int8?) -> ScoredInstance {
        // A scorer's model is the learner's: it learns nothing locally.
        let scored = model.score(entries, learnUnlabelled: role == .all)
        health.recordScore(scored.score)
        var published = scored.score
        var fallback = false
        var modelPublished = true
        if let mode = activeFallback {
            fallback = true
            published = scored.average
            modelPublished = false
            if mode == .last_healthy {
                let covering = health.coveringFallbackModel(for: model)
                if let dropped = covering.dropped { logger.error("last_healthy fallback dropped, scoring the average: \(dropped)") }
                if let healthy = covering.model {
                    published = healthy.score(entries, learnUnlabelled: role == .all).score
                    modelPublished = true
                }
            }
        }
        let probability = calibration.probability(score: published, average: scored.average, modelPublished: modelPublished)
        recentScores.record(published)
        if role != .scorer, health.recordDrift(entries, score: scored.score, probability: probability, fitted: calibration.fitted) {
            checkDrift()
        }
        let explanation = config.explain ? explain(entries, modelPublished: modelPublished, fallback: fallback) : nil
        sink.score(ScoreMessage(id: id, score: published, probability: probability, ts: ts ?? clock.wall(),
                                modelVersion: model.version, nPreds: entries.count, fallback: fallback, explain: explanation))
        counters.scored &+= 1
        if fallback { metrics.scoredFallback.increment() } else { metrics.scored.increment() }
        metrics.publishedScore.increment()
        if role == .scorer {
            // The learner keeps the pending instance and learns (the caller forwards it).
            return scored
        } else if let label {
            // Replayed history: learnt from at once, never pending.
            recordQuality(score: scored.score, baseline: scored.average, probability: probability, label: label)
            learn(entries, label: label, scored: true)
        } else {
            // The store copies the entries into its slab.
            let instance = PendingInstance(entries: entries, arrival: clock.steady(), score: scored.score, average: scored.average,
                                           probability: probability)
            pending.insert(id: id, instance)
            journal?.append(.pending(id: id, instance))
        }
        return scored
    }

    // MARK: Quality (views: DaemonCore+Quality.swift)

    /// A labelled instance with what was published for it at scoring time: its quality,
    /// and what the calibrator learns from (the model's score and the simple average).
    func recordQuality(score: Double, baseline: Double, probability: Double, label: Int8) {
        quality.record(score: score, baseline: baseline, probability: probability, label: label)
        calibrator.record(score: score, average: baseline, label: label)
        journal?.append(.quality(score: Float(score), baseline: Float(baseline), probability: Float(probability), label: label))
        qualityRecorded &+= 1
    }

    /// The calibrator's fit, run by the update worker (or here).
    func installCalibration(_ fitted: Calibration) { calibrator.install(fitted) }

    /// The calibrator's next fit (it first judges the labels since the last one).
    func nextCalibrationFit() -> CalibrationFit { calibrator.fit() }

    // MARK: State changes from outside

    /// Installs a model (a rollback, a scorer's new state from its learner).
    func install(_ new: CFEnsemble) {
        precondition(!model.updateInProgress, "a model installed over a running update")
        model = new
        resolver.forgetPositions()
    }

    /// Applies a reloaded configuration's live keys (the caller decided which).
    func reconfigure(_ new: DaemonConfiguration) {
        config = new
        resolver.allowed = new.allowedClassifierSet
        health.thresholds = new.health
        health.fallback = new.fallback
        if let level = new.logLevelValue { logger.logLevel = level }
        errorBucket = TokenBucket(rate: new.errorRatePerSecond, burst: max(1, new.errorRatePerSecond), now: clock.monotonic())
        nextHealth = min(nextHealth, clock.monotonic() + new.healthIntervalSeconds)
    }

    /// Appends the counters to the journal when they changed since it last had them,
    /// so that what is flushed carries the counters that go with it; then flushes.
    func flushJournal() {
        guard let journal else { return }
        let c = checkpointCounters
        if c != journalled.counters || pending.evicted != journalled.evicted || pending.expired != journalled.expired {
            journal.append(.counters(c, evicted: pending.evicted, expired: pending.expired))
            journalled = (c, pending.evicted, pending.expired)
        }
        if clock.monotonic() - journalledHealth.at >= 1 { journalHealth(force: false) }
        journal.flush()
    }

    /// Appends the health supervisor's state when it changed since the last record (or
    /// `force`: an alert changed state), and marks a new last healthy model.
    func journalHealth(force: Bool) {
        guard let journal else { return }
        journalHealthyModel()
        let state = durableHealth(full: false)
        let key = HealthJournalKey(monitor: state.monitor, lastSeen: resolver.lastSeen, negatives: state.negativesInARow)
        guard force || key != journalledHealth.key else { return }
        journal.append(.health(WireJSON.encode(state)))
        journalledHealth = (key, clock.monotonic())
    }

    /// Marks in the journal that the model is now the last healthy one (replay keeps it).
    func journalHealthyModel() {
        guard let journal, health.healthySnapshots != journalledHealthySnapshots else { return }
        journal.append(.healthyModel)
        journalledHealthySnapshots = health.healthySnapshots
    }

    /// The health supervisor's state as of now, for a checkpoint (`full`) or the journal.
    func durableHealth(full: Bool) -> DurableHealth {
        health.durable(names: model.registry.names, lastSeen: resolver.lastSeen, now: clock.monotonic(), full: full)
    }

    /// Labels still waiting for their instance are not checkpointed: a restart finds
    /// them counted unmatched, so the restored accounting balances.
    var checkpointCounters: Counters {
        var c = counters
        c.unmatchedLabels &+= UInt64(earlyLabels.count)
        return c
    }

    // MARK: Internal, for the learning extension

    func appendToBatch(_ item: LabelledInstance) { batch.append(item) }
    func takeBatch() -> [LabelledInstance] {
        defer { batch.removeAll(keepingCapacity: true) }
        return batch
    }
    func countLearnt() { counters.labelled &+= 1 }
    func countUpdate() { counters.updates &+= 1 }
    func expirePending(now: Double) -> Int { pending.expire(now: now) }
    func expireEarlyLabels(now: Double) -> Int {
        let n = earlyLabels.expire(now: now)
        if n > 0 { counters.unmatchedLabels &+= UInt64(n) }
        return n
    }
    func popDueJoin(now: Double) -> (id: String, joining: JoinBuffer.Joining)? { joins.popDue(now: now) }
    func drainJoins() -> [(id: String, joining: JoinBuffer.Joining)] { joins.drain() }
    func joinDeadline() -> Double? { joins.nextDeadline() }
    var healthDue: Double { nextHealth }
    func scheduleHealth(after now: Double) { nextHealth = now + config.healthIntervalSeconds }
    func healthPublished(at now: Double) { lastHealthPublished = now }
    var lastHealthPublication: Double { lastHealthPublished }
    var expiryDue: Double { nextExpiry }
    func scheduleExpiry(after now: Double) { nextExpiry = now + 1 }
}

/// What decides whether the health state changed since the journal last had it: the
/// conditions without their ages, when each classifier last reported, the run of
/// negatives.
struct HealthJournalKey: Equatable {
    var monitor: HealthMonitor.State
    var lastSeen: [Double]
    var negatives: Int

    init(monitor: HealthMonitor.State, lastSeen: [Double], negatives: Int) {
        var m = monitor
        for key in m.conditions.keys {
            m.conditions[key]!.firedAgo = nil
            m.conditions[key]!.reason = nil
            m.conditions[key]!.firedWall = nil
        }
        self.monitor = m
        self.lastSeen = lastSeen
        self.negatives = negatives
    }
}
