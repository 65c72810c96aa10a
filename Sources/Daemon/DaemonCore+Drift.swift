import Online
import Wire

/// The label-free drift watch (docs/alerts.md: classifier_drift, score_drift): the
/// health supervisor records every scored instance in its windows; every
/// `monitoring.drift_check_every` of them the conditions are checked here, on the
/// scoring path (counted in traffic, so a burst gets its checks too), building nothing
/// while every statistic is within its bound.
extension DaemonCore {
    func checkDrift() {
        let alerts = health.checkDrift(names: model.registry.names, now: clock.monotonic(), wall: clock.wall())
        if !alerts.isEmpty { publish(alerts) }
    }

    /// `pin_reference`: each classifier's next `monitoring.drift_reference` outputs make
    /// its new reference (after a deliberate change upstream, e.g. a recalibrated model).
    /// Checkpointed at once so that a crash does not bring the old reference back.
    func pinReference() {
        health.pinReference()
        logger.notice("drift references pinned: each classifier's next \(config.driftWindows.reference) outputs make its reference")
    }
}

extension DaemonCore {
    /// `health.drift`: each stream's statistic as the conditions judge it.
    func driftBody() -> DriftBody {
        let watch = health.drift, monitor = health.monitor
        let observation = watch.observation(names: model.registry.names)
        func body(_ s: DriftObservation.Stream?, reference: Int, recent: Int) -> DriftBody.Stream {
            DriftBody.Stream(psi: s?.psi, bound: s.map { monitor.psiBound(noise: $0.noise) }, reference: reference, recent: recent)
        }
        var b = DriftBody()
        for (u, c) in observation.classifiers.enumerated() where u < watch.classifiers.count {
            b.classifiers[c.name] = body(c.drift, reference: watch.classifiers.referenceCount(u),
                                         recent: watch.classifiers.recentCount(u))
        }
        b.score = body(observation.score, reference: watch.score.referenceCount, recent: watch.score.recentCount)
        b.predicted_positive_rate = observation.rate?.recent ?? watch.rate.recentRate
        b.reference_positive_rate = observation.rate?.reference
        b.labelled_positive_rate = calibrator.positiveRate
        return b
    }
}

extension DaemonCore {
    /// `health.estimate`, recomputed once `monitoring.drift_check_every` more instances
    /// have been scored (it sorts the windows: health checks only, never per message).
    func estimateBody() -> EstimateBody? {
        guard role != .scorer else { return nil }
        let scored = counters.scored &+ counters.predMessages
        if estimateCache.scored != .max && scored &- estimateCache.scored < UInt64(config.driftWindows.checkEvery) {
            return estimateCache.body
        }
        let windows = health.drift.estimateWindows()
        var b = EstimateBody(window: config.driftWindows.estimate)
        let recent = ExpectedQuality.ranked(windows.recent)
        if let e = ExpectedQuality.averagePrecision(ranked: recent) {
            b.pr_auc = e.ap
            b.expected_positives = e.positives
        }
        if let e = ExpectedQuality.averagePrecision(windows.reference) {
            b.pr_auc_before = e.ap
            b.expected_positives_before = e.positives
        }
        let points = ExpectedQuality.operatingPoints(ranked: recent, rates: config.alertRates)
        b.operating_points = zip(config.alertRates, points).map { .init(alert_rate: $0, precision: $1?.precision, recall: $1?.recall) }
        b.labelled_pr_auc = ExpectedQuality.averagePrecision(quality.recordedProbabilities)?.ap
        estimateCache = (scored, b)
        return b
    }
}
