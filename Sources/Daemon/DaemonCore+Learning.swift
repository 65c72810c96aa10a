import Logging
import Online
import Wire

/// Learning, health, timers and the views of the state (health body, checkpoint head).
extension DaemonCore {
    /// `scored`: the instance was scored or observed just now (the journal replays that).
    func learn(_ entries: [Entry], label: Int8, scored: Bool) {
        health.noteLabel(label)
        if batch.isEmpty { batchStarted = clock.monotonic() }
        let labelled = LabelledInstance(entries: entries, label: label)
        appendToBatch(labelled)
        journal?.append(.learnt(labelled, scored: scored))
        countLearnt()
        metrics.labelsLearnt.increment()
        if batch.count >= config.batchSize { update() }
    }

    /// Learns the mini-batch so far (one model update), then checks health, tells the
    /// cluster, refreshes metrics and publishes health (at most once a second). With an
    /// update worker the aggregator's part runs on its thread and the rest follows when
    /// the loop takes its result in (`takeFinishedUpdate`, `settleUpdate`).
    func update() {
        guard !batch.isEmpty else { return }
        settleUpdate()
        let t0 = clock.monotonic()
        if model.version == 0 { health.noteHealthy(weightSum: model.aggregator.w.reduce(0, +)) }
        // The losses are only for the debug log line: two extra passes over the buffer.
        // The calibrator refits on what it has recorded up to this update (the journal's
        // `update` record marks the same point for a replay).
        let calibration = nextCalibrationFit()
        let begun = model.beginUpdate(takeBatch(), measureLoss: logger.logLevel <= .debug)
        journal?.append(.update)
        countUpdate()
        guard let begun, let job = begun.aggregator else {
            installCalibration(calibration.run())
            updated(begun?.report, started: t0)
            return
        }
        let both = UpdateJob(aggregator: job, calibration: calibration)
        if let updateWorker {
            updateStarted = t0
            updateWorker.submit(both)
        } else {
            finish(both.run(), started: t0)
        }
    }

    /// Takes in the update running on the worker, if it has finished.
    func takeFinishedUpdate() {
        guard model.updateInProgress, let result = updateWorker?.poll() else { return }
        finish(result, started: updateStarted)
    }

    /// Waits for the update running on the worker, if any, and takes it in: before the
    /// next update and before anything reads the whole model.
    func settleUpdate() {
        guard model.updateInProgress, let result = updateWorker?.wait() else { return }
        finish(result, started: updateStarted)
    }

    private func finish(_ result: UpdateJob.Result, started t0: Double) {
        installCalibration(result.calibration)
        guard let aggregator = result.aggregator else { return }
        updated(model.finishUpdate(aggregator), started: t0)
    }

    /// What follows an update once its weights apply.
    private func updated(_ report: UpdateReport?, started t0: Double) {
        if let report {
            logger.debug("model updated", metadata: [
                "model_version": "\(report.version)", "batch": "\(report.size)", "positives": "\(report.positives)",
                "loss_before": "\(report.lossBefore)", "loss_after": "\(report.lossAfter)",
                "ms": "\(Int((clock.monotonic() - t0) * 1000))",
            ])
        }
        metrics.updateDuration.recordNanoseconds(Int64((clock.monotonic() - t0) * 1e9))
        checkHealth(afterUpdate: true)
        onModelChanged()
        refreshMetrics()
        if clock.monotonic() - lastHealthPublication >= 1 { publishHealth() }
    }

    /// Runs the health checks and publishes every alert state change.
    func checkHealth(afterUpdate: Bool) {
        let auc = qualityAUCs()
        // Calibration drift is judged on the map in use now: the probabilities published
        // while the calibrator warmed up are in the window too, and are no drift.
        let c = rollingCalibration().current
        let e = estimateBody()
        var estimate: (Double, Double, Double, Double)?
        if let e, let r = e.pr_auc, let b = e.pr_auc_before, let rp = e.expected_positives, let bp = e.expected_positives_before {
            estimate = (r, b, rp, bp)
        }
        let alerts = health.check(model: model, lastSeen: resolver.lastSeen,
                                  quality: (auc.score, auc.baseline, quality.count, quality.positives),
                                  afterUpdate: afterUpdate, now: clock.monotonic(), wall: clock.wall(),
                                  calibration: c.map { ($0.ece, $0.noise, $0.count) }, estimate: estimate)
        // A new healthy model is marked.
        journalHealthyModel()
        publish(alerts)
    }

    /// Publishes alert state changes on the `alert` topic and logs them; a changed state
    /// is journalled at once.
    func publish(_ alerts: [HealthAlert]) {
        if !alerts.isEmpty { journalHealth(force: true) }
        for alert in alerts {
            let action = alert.severity == "critical" && config.fallback != .none ? "fallback" : "none"
            let body = AlertBody(alert: alert.name.rawValue, state: alert.state, severity: alert.severity, ts: clock.wall(),
                                 model_version: model.version, reason: alert.reason, metrics: alert.metrics,
                                 action: action, classifier: alert.classifier)
            sink.publish(.alert, WireJSON.encode(body))
            metrics.publishedAlert.increment()
            let meta: Logger.Metadata = ["alert": "\(alert.name.rawValue)", "state": "\(alert.state)", "action": "\(action)"]
            if alert.severity == "critical" && alert.state == "firing" {
                logger.critical("\(alert.reason)", metadata: meta)
            } else {
                logger.warning("\(alert.reason)", metadata: meta)
            }
        }
    }

    func refreshMetrics() {
        let names = model.registry.names
        let now = clock.monotonic(), seen = resolver.lastSeen
        let ages = role == .scorer ? [] : names.indices.map { (names[$0], $0 < seen.count ? max(0, now - seen[$0]) : 0) }
        let silent = Set(health.monitor.firing.compactMap { $0.name == .classifierSilent ? $0.classifier : nil })
        metrics.refresh(weights: names.indices.map { (names[$0], model.aggregator.w[$0]) }, bias: model.aggregator.b,
                        version: model.version, pendingCount: pending.count, pendingCapacity: config.maxPending, evicted: pending.evicted,
                        expired: pending.expired, positives: model.classWeights.positives,
                        negatives: model.classWeights.negatives, firing: Set(health.monitor.firing.map(\.name.rawValue)),
                        journalFailing: journal?.failure != nil, reportAges: ages, silent: silent)
        if role != .scorer {
            let rolling = rollingCalibration()
            metrics.calibration(ece: rolling.published?.ece, brier: rolling.published?.brier, eceNow: rolling.current?.ece,
                                positiveRate: calibrator.positiveRate)
            let auc = qualityAUCs()
            metrics.estimate(estimateBody(), realised: auc.score, average: auc.baseline)
            metrics.drift(driftBody(), drifting: Set(health.monitor.firing.compactMap { $0.name == .classifierDrift ? $0.classifier : nil }))
        }
        let operating = operatingPoints()
        metrics.operating(points: operating.points, target: operating.target)
    }

    func publishHealth() {
        healthPublished(at: clock.monotonic())
        if let open = DescriptorLimit.openCount() { metrics.openDescriptors.record(Double(open)) }
        metrics.descriptorLimit.record(Double(DescriptorLimit.soft))
        sink.publish(.health, WireJSON.encode(healthBody()))
        metrics.publishedHealth.increment()
    }

    // MARK: Timers

    /// Does what is due at `now`: joins whose window closed, a mini-batch waiting too
    /// long, expiry, and the periodic health check. Returns the next deadline.
    @discardableResult
    func tick(now: Double) -> Double {
        if role == .scorer {
            if now >= healthDue {
                refreshMetrics()
                publishHealth()
                scheduleHealth(after: now)
            }
            return healthDue
        }
        if role == .learner {
            let n = expireEarlyLabels(now: now)
            if n > 0 { metrics.labelsUnmatched.increment(by: Int64(n)) }
        }
        while let due = popDueJoin(now: now) {
            scoreAndPublish(id: due.id, entries: due.joining.entries, ts: due.joining.ts, label: due.joining.label)
        }
        if !batch.isEmpty && config.maxBatchDelaySeconds > 0 && now - batchStarted >= config.maxBatchDelaySeconds {
            update()
        }
        if now >= expiryDue {
            let at = clock.steady()
            let n = expirePending(now: at)
            if n > 0 {
                journal?.append(.expire(now: at))
                logger.info("expired pending instances without a label", metadata: ["count": "\(n)"])
            }
            scheduleExpiry(after: now)
        }
        if now >= healthDue {
            let before = activeFallback
            checkHealth(afterUpdate: false)
            // A fallback that starts or ends between updates reaches the scorers at once.
            if role == .learner && activeFallback != before { onModelChanged() }
            refreshMetrics()
            publishHealth()
            scheduleHealth(after: now)
        }
        return nextDeadline()
    }

    /// The earliest time `tick` has something to do.
    func nextDeadline() -> Double {
        var wake = min(healthDue, role == .scorer ? .infinity : expiryDue)
        if let j = joinDeadline() { wake = min(wake, j) }
        if !batch.isEmpty && config.maxBatchDelaySeconds > 0 { wake = min(wake, batchStarted + config.maxBatchDelaySeconds) }
        return wake
    }

    /// Shutdown: scores what is still joining and learns the partial mini-batch.
    func finish() {
        for item in drainJoins() {
            scoreAndPublish(id: item.id, entries: item.joining.entries, ts: item.joining.ts, label: item.joining.label)
        }
        update()
    }

    // MARK: Views

    func healthBody() -> HealthBody {
        var h = HealthBody()
        let names = model.registry.names
        for (u, name) in names.enumerated() { h.weights[name] = model.aggregator.w[u] }
        let cw = model.classWeights
        let auc = qualityAUCs()
        h.ts = clock.wall()
        h.model_version = model.version
        h.status = role == .scorer ? (remote?.status ?? "waiting_for_model") : health.status
        h.bias = model.aggregator.b
        h.class_counts = .init(pos: cw.positives, neg: cw.negatives)
        h.class_weights = .init(pos: cw.weight(for: 1), neg: cw.weight(for: 0))
        h.pending = pending.count
        h.joining = joins.count
        h.scored = counters.scored
        h.labelled = counters.labelled
        h.unmatched_labels = counters.unmatchedLabels
        h.rejected = counters.rejectedTotal
        h.rejected_by_reason = counters.rejected
        h.received = counters.received
        h.evicted = pending.evicted
        h.expired = pending.expired
        h.errors_suppressed = counters.errorsSuppressed
        h.pr_auc = auc.score
        h.baseline_pr_auc = auc.baseline
        h.quality_window = quality.count
        h.alerts_firing = health.monitor.firing.map { f in f.classifier.map { "\(f.name.rawValue):\($0)" } ?? f.name.rawValue }
        if role != .scorer {
            h.firing = health.monitor.firingDetails.map {
                FiringAlert(alert: $0.name.rawValue, classifier: $0.classifier, severity: $0.name.severity,
                            since: $0.since, reason: $0.reason)
            }
        }
        h.fallback_active = activeFallback != nil
        h.accounting.received = counters.received
        h.accounting.preds = counters.predMessages
        h.accounting.labels_learnt = counters.labelMessages
        h.accounting.labels_forwarded = counters.labelsForwarded
        h.accounting.labels_waiting = earlyLabels.count
        h.accounting.labels_unmatched = counters.unmatchedLabels
        h.accounting.rejected = counters.rejectedTotal
        h.accounting.pings = counters.pings
        h.accounting.batches = counters.batches
        h.accounting.balanced = counters.balanced(waiting: earlyLabels.count)
        h.cluster = clusterBody()
        let map = calibration, rolling = rollingCalibration()
        h.calibration = CalibrationBody(fitted: map.fitted, slope: map.slope, intercept: map.intercept,
                                        average_intercept: map.averageIntercept, average_slope: map.averageSlope,
                                        weights: [map.weights.x, map.weights.y, map.weights.z],
                                        positive_rate: role == .scorer ? nil : calibrator.positiveRate,
                                        ece: rolling.published?.ece, brier: rolling.published?.brier, window: rolling.published?.count ?? 0,
                                        ece_now: rolling.current?.ece, ece_noise: rolling.current?.noise)
        let operating = operatingPoints()
        h.operating_points = operating.points
        h.precision_target = operating.target
        h.score_window = recentScores.count
        if role != .scorer {
            h.drift = driftBody()
            h.estimate = estimateBody()
        }
        return h
    }

    /// The state as of now but for the pending instances (which the caller freezes at
    /// the same moment): model, counters, quality and the labels not learnt yet.
    func checkpointHead(journal number: UInt64?) -> Checkpoint.Head {
        settleUpdate()
        return Checkpoint.Head(writtenAt: clock.wall(), model: model.snapshot(), evicted: pending.evicted,
                        expired: pending.expired, counters: checkpointCounters, quality: quality, calibrator: calibrator,
                        batch: batch.isEmpty ? nil : batch, journal: number, health: durableHealth(full: true))
    }

    /// The last healthy model, extended to every classifier registered since, as the
    /// next version; nil and why when there is none or it does not fit.
    func rollbackCandidate() -> Result<CFEnsemble, RollbackRefused> {
        guard let healthy = health.lastHealthy else {
            return .failure(RollbackRefused(description: "no healthy model snapshot yet (one is kept after each healthy update)"))
        }
        do {
            let restored = try CFEnsemble(config: config.model, restoring: healthy, version: model.version + 1)
            // Classifiers registered since keep their indices (pending instances carry them).
            try restored.cover(model.registry.names)
            return .success(restored)
        } catch {
            return .failure(RollbackRefused(description: "rollback failed: \(error.description)"))
        }
    }
}

struct RollbackRefused: Error, CustomStringConvertible {
    let description: String
}
