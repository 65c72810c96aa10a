import Online
import Wire

/// The quality window's views: prequential PR-AUC, the calibration of the probability,
/// and the operating points of the alert budgets.
extension DaemonCore {
    // MARK: Quality

    /// What probabilities are published with: the calibrator's map, or on a scorer its
    /// learner's.
    var calibration: Calibration { role == .scorer ? remoteCalibration : calibrator.calibration }

    /// PR-AUC of the live model and of the simple average over the quality window.
    /// Sorting the window twice after every update was 6% of the daemon's time when
    /// learning 100k labels/s, so the pair is recomputed only once half a second has
    /// passed (or the whole window is new).
    func qualityAUCs() -> (score: Double?, baseline: Double?) {
        refreshQuality()
        return (qualityCache.score, qualityCache.baseline)
    }

    /// The rolling calibration (ECE, Brier score, the ECE's sampling noise, over how
    /// many) of the published probabilities and of the map in use now, cached like the
    /// PR-AUCs.
    func rollingCalibration() -> (published: WindowCalibration?, current: WindowCalibration?) {
        refreshQuality()
        return (qualityCache.calibration, qualityCache.current)
    }

    func refreshQuality() {
        let now = clock.monotonic()
        let fresh = qualityRecorded &- qualityCache.recorded
        if qualityCache.at < 0 || (fresh > 0 && (fresh >= UInt64(quality.window) || now - qualityCache.at >= 0.5)) {
            qualityCache = (qualityRecorded, now, quality.prAUC, quality.baselinePrAUC, quality.calibration(),
                            quality.calibration(map: calibration))
        }
    }

    /// The operating points of `monitoring.alert_rates` (score threshold over the recent
    /// published scores; precision and recall over the quality window) and of
    /// `monitoring.precision_target`, recomputed at most once a second (sorting the recent
    /// scores: about a millisecond for 20,000).
    func operatingPoints() -> (points: [OperatingPoint], target: PrecisionTargetBody?) {
        let now = clock.monotonic()
        if operatingCache.at < 0 || now - operatingCache.at >= 1 {
            let rates = config.alertRates
            let thresholds = recentScores.thresholds(rates: rates)
            let points = zip(rates, thresholds).map { rate, t -> OperatingPoint in
                guard let t else { return OperatingPoint(alert_rate: rate) }
                let pr = quality.precisionRecall(atThreshold: t)
                return OperatingPoint(alert_rate: rate, threshold: t, precision: pr.precision, recall: pr.recall)
            }
            var target: PrecisionTargetBody?
            if config.precisionTarget > 0 {
                target = PrecisionTargetBody(precision_target: config.precisionTarget)
                if let found = quality.threshold(forPrecision: config.precisionTarget) {
                    target?.threshold = found.threshold
                    target?.precision = found.precision
                    target?.recall = found.recall
                    target?.alert_rate = recentScores.share(atOrAbove: found.threshold)
                }
            }
            operatingCache = (now, points, target)
        }
        return (operatingCache.points, operatingCache.target)
    }
}
