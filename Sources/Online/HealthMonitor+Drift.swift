/// The label-free drift conditions (classifier_drift, score_drift: docs/alerts.md),
/// checked every `monitoring.drift_check_every` scored instances rather than on the
/// health timer.
extension HealthMonitor {
    /// Evaluates the label-free drift conditions once (classifier_drift per classifier,
    /// score_drift); the daemon runs it every `monitoring.drift_check_every` scored
    /// instances, so its hysteresis counts traffic, not label updates. Returns the alerts
    /// whose state changed.
    public mutating func checkDrift(_ o: DriftObservation) -> [HealthAlert] {
        var out: [HealthAlert] = []
        now = o.now
        wall = o.wall
        for (name, d) in o.classifiers {
            guard let d else { continue }
            let bound = psiBound(noise: d.noise), key = "classifier_drift:\(name)"
            // The texts are built on a transition only: while a drift condition is
            // engaged this runs every `drift_check_every` instances on the scoring path.
            guard let t = advance(key, holds: d.psi > bound) else { continue }
            publish(t, key,
                 reason: "classifier \(name)'s outputs moved: population stability index \(fmt(d.psi)) between its last \(d.recent) outputs and its reference of \(d.reference), above \(fmt(bound))",
                 cleared: "classifier \(name)'s outputs are back near its reference: population stability index \(fmt(d.psi)), within \(fmt(bound))",
                 metrics: ["psi": d.psi, "psi_noise": d.noise, "psi_bound": bound], classifier: name, into: &out)
        }
        // score_drift judges the predicted positive rate: a calibrated probability keeps
        // its mean through model updates, where the score's distribution moves with every
        // one (its PSI is reported beside it, in the alert's metrics and in health).
        if let r = o.rate, let t = advance("score_drift", holds: rateMoved(recent: r.recent, reference: r.reference, z: r.z)) {
            var metrics = ["predicted_positive_rate": r.recent, "reference_positive_rate": r.reference, "rate_z": r.z]
            if let d = o.score { metrics["score_psi"] = d.psi }
            let ratio = r.reference > 0 ? r.recent / r.reference : 1
            metrics["rate_ratio"] = ratio
            publish(t, "score_drift",
                 reason: "the predicted positive rate moved: \(fmtRate(r.recent)) over the recent window, \(fmt(ratio)) times the \(fmtRate(r.reference)) of the window before it (z \(fmt(r.z)))",
                 cleared: "the predicted positive rate \(fmtRate(r.recent)) is back within \(fmt(config.rateShiftRatio)) times the \(fmtRate(r.reference)) of the window before it",
                 metrics: metrics, into: &out)
        }
        return out
    }

    /// The PSI above which classifier_drift holds for windows with this sampling noise.
    @inline(__always)
    public func psiBound(noise: Double) -> Double { max(config.maxPSI, config.psiNoiseRatio * noise) }

    /// Whether score_drift holds for these predicted positive rates.
    @inline(__always)
    public func rateMoved(recent: Double, reference: Double, z: Double) -> Bool {
        let ratio = reference > 0 ? recent / reference : 1
        return (ratio >= config.rateShiftRatio || ratio <= 1 / config.rateShiftRatio) && abs(z) >= config.rateShiftZ
    }

    /// One drift check on the watch's windows: when no drift condition is engaged and no
    /// statistic is beyond its bound, nothing can change and nothing is built (no
    /// allocation: the daemon runs this on the scoring path every
    /// `monitoring.drift_check_every` instances); otherwise `checkDrift(_:)`.
    public mutating func checkDrift(_ watch: DriftWatch, names: [String], now: Double, wall: Double) -> [HealthAlert] {
        if !driftEngaged {
            var beyond = false
            for u in 0..<watch.classifiers.count {
                if let s = watch.classifiers.statistic(u), s.psi > psiBound(noise: s.noise) { beyond = true; break }
            }
            if !beyond, let r = watch.rate.statistic(), rateMoved(recent: r.recent, reference: r.reference, z: r.z) { beyond = true }
            if !beyond { return [] }
        }
        let alerts = checkDrift(watch.observation(names: names, now: now, wall: wall))
        driftEngaged = conditions.contains { key, c in
            (c.firing || c.hits > 0) && (key == HealthAlert.Name.scoreDrift.rawValue || key.hasPrefix(HealthAlert.Name.classifierDrift.rawValue))
        }
        return alerts
    }

    private func fmtRate(_ v: Double) -> String {
        let r = (v * 1e5).rounded() / 1e5
        return "\(r)"
    }
}
