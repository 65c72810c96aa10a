import Testing
@testable import Online

@Suite struct HealthMonitorTests {
    private func observation(weights: [Double], scoreStd: Double = 0.2, prAUC: Double? = nil, baseline: Double? = nil,
                             quality: Int = 0, silent: [Double]? = nil, negatives: Int = 0, rate: Double = 0.1,
                             afterUpdate: Bool = true, now: Double = 1000) -> HealthObservation {
        HealthObservation(weights: weights, classifiers: weights.indices.map { "c\($0)" }, scoreStd: scoreStd,
                          scoreCount: 1000, prAUC: prAUC, baselinePrAUC: baseline, qualityCount: quality,
                          silentSeconds: silent ?? weights.map { _ in 1 }, negativesInARow: negatives,
                          positiveRate: rate, afterUpdate: afterUpdate, now: now)
    }

    @Test func collapseFiresOnceWithHysteresisAndResolvesOnce() {
        var config = HealthConfiguration()   // fire_after 2, resolve_after 3
        config.minFiringSeconds = 0          // counts alone here; the dwell time has its own test
        var monitor = HealthMonitor(config: config)
        var events: [HealthAlert] = []
        for _ in 0..<5 { events += monitor.check(observation(weights: [0.5, 0.6, 0.4])) }
        #expect(events.isEmpty && monitor.status == "healthy")
        events += monitor.check(observation(weights: [-0.1, -0.2, 0.05]))
        #expect(events.isEmpty, "fired before fire_after checks")
        events += monitor.check(observation(weights: [-0.1, -0.2, 0.05]))
        #expect(events.map(\.state) == ["firing"])
        #expect(events.first?.name == .weightCollapse && events.first?.severity == "critical")
        #expect(events.first?.reason.contains("2 of 3 weights <= 0") == true)
        for _ in 0..<5 { events += monitor.check(observation(weights: [-0.1, -0.2, 0.05])) }
        #expect(events.count == 1, "one alert per change of state")
        #expect(monitor.criticalFiring && monitor.status == "critical")
        for _ in 0..<2 { events += monitor.check(observation(weights: [0.5, 0.6, 0.4])) }
        #expect(events.count == 1, "resolved before resolve_after clear checks")
        events += monitor.check(observation(weights: [0.5, 0.6, 0.4]))
        #expect(events.map(\.state) == ["firing", "resolved"])
        #expect(!monitor.criticalFiring)
    }

    /// calibration_drift: fires when the ECE passes max(max_ece, ratio x its noise) at
    /// fire_after checks in a row, waits for enough labelled instances, and resolves with
    /// the same hysteresis and dwell time as the others.
    @Test func calibrationDriftHasABoundAboveNoiseAndHysteresis() {
        var monitor = HealthMonitor(config: HealthConfiguration())   // max_ece 0.01, ratio 3, min_firing_s 10
        func check(_ ece: Double, noise: Double, count: Int = 2000, at now: Double) -> [HealthAlert] {
            var o = observation(weights: [1, 1], now: now)
            o.calibration = (ece, noise, count)
            return monitor.check(o).filter { $0.name == .calibrationDrift }
        }
        var events: [HealthAlert] = []
        for t in 0..<3 { events += check(0.05, noise: 0.001, count: 150, at: Double(t)) }
        #expect(events.isEmpty, "fewer labelled instances than quality_min_labels")
        for t in 3..<6 { events += check(0.05, noise: 0.02, at: Double(t)) }
        #expect(events.isEmpty, "0.05 is within 3 x a noise of 0.02")
        for t in 6..<8 { events += check(0.008, noise: 0.001, at: Double(t)) }
        #expect(events.isEmpty, "0.008 is below max_ece")
        events += check(0.02, noise: 0.004, at: 8)
        #expect(events.isEmpty, "one check above the bound")
        events += check(0.02, noise: 0.004, at: 9)
        #expect(events.map(\.state) == ["firing"] && events.first?.severity == "warning")
        #expect(events.first?.metrics["ece_bound"] == 0.012)
        for t in 10..<15 { events += check(0.004, noise: 0.004, at: Double(t)) }
        #expect(events.count == 1, "resolved before min_firing_s")
        events += check(0.004, noise: 0.004, at: 19.5)
        #expect(events.map(\.state) == ["firing", "resolved"])
    }

    @Test func aFiringConditionStaysFiringForTheMinimumTime() {
        var monitor = HealthMonitor(config: HealthConfiguration())   // min_firing_s 10
        var events: [HealthAlert] = []
        for t in 0..<2 { events += monitor.check(observation(weights: [-1, -1], now: Double(t) * 0.05)) }
        #expect(events.map(\.state) == ["firing"])
        for t in 2..<20 { events += monitor.check(observation(weights: [1, 1], now: Double(t) * 0.05)) }
        #expect(events.count == 1, "resolved within a second of firing")
        events += monitor.check(observation(weights: [1, 1], now: 10.1))
        #expect(events.map(\.state) == ["firing", "resolved"])
    }

    /// A poisoned model: NaN or infinite weights compare false with every threshold, so
    /// they are a collapse of their own, and never become the healthy reference.
    @Test(arguments: [Double.nan, .infinity, -.infinity])
    func nonFiniteWeightsAreACollapse(poison: Double) {
        var monitor = HealthMonitor(config: HealthConfiguration())
        for _ in 0..<3 { _ = monitor.check(observation(weights: [1, 1, 1])) }
        var events: [HealthAlert] = []
        for _ in 0..<2 { events += monitor.check(observation(weights: [1, poison, 1])) }
        #expect(events.map(\.name) == [.weightCollapse])
        #expect(events.first?.reason.contains("1 of 3 aggregator weights are not finite") == true)
        #expect(monitor.referenceWeightSum == 3)
    }

    @Test func collapseFiresOnAWeightSumFarBelowItsHealthyLevel() {
        var monitor = HealthMonitor(config: HealthConfiguration())
        for _ in 0..<3 { _ = monitor.check(observation(weights: [1, 1, 1, 1])) }
        var events: [HealthAlert] = []
        for _ in 0..<2 { events += monitor.check(observation(weights: [0.2, 0.2, 0.2, 0.3])) }   // 0.9 < 0.25 * 4
        #expect(events.first?.name == .weightCollapse)
        #expect(events.first?.metrics["reference_weight_sum"] == 4)
    }

    /// Zero weights are the projection's sparsity (learning.nonnegative_weights), not a
    /// collapse: most weights at zero with a healthy sum stay healthy; the sum falling, or
    /// most weights below zero, fires.
    @Test func zeroWeightsWithAHealthySumAreNoCollapse() {
        var monitor = HealthMonitor(config: HealthConfiguration())
        var events: [HealthAlert] = []
        for _ in 0..<5 { events += monitor.check(observation(weights: [0, 0, 0, 1.5, 2.5])) }
        #expect(events.isEmpty && monitor.status == "healthy")
        for _ in 0..<2 { events += monitor.check(observation(weights: [0, 0, 0, 0, 0.5])) }   // 0.5 < 0.25 * 4
        #expect(events.map(\.name) == [.weightCollapse])
        #expect(events.first?.reason.contains("5 of 5 weights <= 0") == false)
        #expect(events.first?.reason.contains("4 of 5 weights <= 0") == true)

        var negative = HealthMonitor(config: HealthConfiguration())
        events = []
        for _ in 0..<2 { events += negative.check(observation(weights: [-0.1, -0.1, -0.1, 1.5, 2.5])) }
        #expect(events.map(\.name) == [.weightCollapse], "3 of 5 weights below zero")
    }

    @Test func driftWarnsBeforeCollapse() {
        var monitor = HealthMonitor(config: HealthConfiguration())
        var events: [HealthAlert] = []
        var w = 2.0
        for _ in 0..<14 {
            events += monitor.check(observation(weights: [w, w, w]))
            w *= 0.95
        }
        #expect(events.contains { $0.name == .weightDrift && $0.state == "firing" && $0.severity == "warning" })
        #expect(!events.contains { $0.name == .weightCollapse })
    }

    @Test func scoreQualitySilenceAndOutageConditions() {
        var monitor = HealthMonitor(config: HealthConfiguration())
        var events: [HealthAlert] = []
        for _ in 0..<2 {
            events += monitor.check(observation(weights: [1, 1], scoreStd: 0.0001, prAUC: 0.3, baseline: 0.6, quality: 500,
                                                silent: [5, 900], negatives: 200, rate: 0.1))
        }
        let names = Set(events.filter { $0.state == "firing" }.map(\.name))
        #expect(names == [.scoreCollapse, .qualityRegression, .classifierSilent, .labelOutage])
        #expect(events.first { $0.name == .classifierSilent }?.classifier == "c1")
        // Not enough labels in the window: no quality verdict.
        var quiet = HealthMonitor(config: HealthConfiguration())
        var none: [HealthAlert] = []
        for _ in 0..<3 { none += quiet.check(observation(weights: [1, 1], prAUC: 0.1, baseline: 0.9, quality: 50, negatives: 20, rate: 0.1)) }
        #expect(none.isEmpty)
    }

    /// No false alarms: healthy learning on 50%, 10% and 1% positives raises no critical alert.
    @Test(arguments: [0.5, 0.1, 0.01])
    func healthyStreamsRaiseNoCriticalAlert(rate: Double) {
        let cfe = CFEnsemble(config: ModelConfiguration())
        for u in 0..<10 { _ = cfe.classifier(named: "c\(u)") }
        var monitor = HealthMonitor(config: HealthConfiguration())
        var stream = SyntheticStream(seed: 31, positiveRate: rate)
        var scores: [Double] = []
        var alerts: [HealthAlert] = []
        var batch: [LabelledInstance] = []
        for _ in 0..<20000 {
            let item = stream.next()
            scores.append(cfe.score(item.entries).score)
            if scores.count > 1000 { scores.removeFirst() }
            batch.append(item)
            if batch.count == 64 {
                cfe.update(batch)
                batch.removeAll()
                let mean = scores.reduce(0, +) / Double(scores.count)
                let std = (scores.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(scores.count)).squareRoot()
                alerts += monitor.check(HealthObservation(
                    weights: cfe.aggregator.w, classifiers: cfe.registry.names, scoreStd: std, scoreCount: scores.count,
                    prAUC: nil, baselinePrAUC: nil, qualityCount: 0, silentSeconds: cfe.registry.names.map { _ in 0 },
                    negativesInARow: 0, positiveRate: rate, afterUpdate: true))
            }
        }
        #expect(!alerts.contains { $0.severity == "critical" }, "\(alerts.map(\.reason))")
    }
}
