import Foundation
import Testing
@testable import Online
import TestSupport

/// The drift statistics against a direct computation written here: bins from the
/// log-odds by division (not the edges' binary search), windows by slicing the whole
/// history, PSI by its definition.
@Suite struct DriftTests {
    /// The bin of p by its log-odds: 0.75 wide from -7.5, the tails below and above.
    private func directBin(_ p: Double) -> Int {
        let z = log(p / (1 - p))
        if z < -7.5 { return 0 }
        return min(21, Int(((z + 7.5) / 0.75).rounded(.down)) + 1)
    }

    private func directPSI(recent: ArraySlice<Double>, reference: ArraySlice<Double>) -> (psi: Double, noise: Double) {
        let k = 22
        var r = [Double](repeating: 0, count: k), q = r
        for p in recent { r[directBin(p)] += 1 }
        for p in reference { q[directBin(p)] += 1 }
        let nr = Double(recent.count) + 0.5 * Double(k), nq = Double(reference.count) + 0.5 * Double(k)
        var psi = 0.0
        for i in 0..<k {
            let a = (r[i] + 0.5) / nr, b = (q[i] + 0.5) / nq
            psi += (a - b) * log(a / b)
        }
        let used = (0..<k).filter { r[$0] > 0 || q[$0] > 0 }.count
        return (psi, Double(used - 1) * (1 / Double(recent.count) + 1 / Double(reference.count)))
    }

    private func values(_ n: Int, seed: UInt64, shift: Double = 0) -> [Double] {
        var rng = SeededRandom(seed: seed)
        return (0..<n).map { _ in
            // A fraud classifier's outputs: mostly low log-odds, a long upper tail.
            let z = -4 + 1.5 * rng.normal() + shift
            return 1 / (1 + exp(-z))
        }
    }

    @Test func binsAgreeWithTheLogOdds() {
        var rng = SeededRandom(seed: 1)
        for _ in 0..<20_000 {
            let z = 20 * rng.uniform() - 10
            let p = 1 / (1 + exp(-z))
            // Exactly on an edge the two may round differently: skip a hair around edges.
            let offEdge = abs((z + 7.5) / 0.75 - ((z + 7.5) / 0.75).rounded()) > 1e-9
            if offEdge { #expect(ProbabilityBins.index(of: p) == directBin(p), "p \(p)") }
        }
        #expect(ProbabilityBins.index(of: 0) == 0 && ProbabilityBins.index(of: 1) == 21)
        #expect(ProbabilityBins.count == 22)
    }

    /// One classifier's windows in a table shared with others.
    private struct Pinned {
        var table: ClassifierDriftTable
        let u: Int

        init(recentSize: Int, referenceSize: Int, classifier u: Int = 0) {
            table = ClassifierDriftTable(recentSize: recentSize, referenceSize: referenceSize)
            table.grow(to: u + 1)
            self.u = u
        }

        mutating func record(_ p: Double) {
            let entries = [Entry(classifier: u, value: p)]
            entries.withUnsafeBufferPointer { table.record($0) }
        }

        mutating func pin() { table.pin() }
        func statistic() -> (psi: Double, noise: Double, recent: Int, reference: Int)? { table.statistic(u) }
    }

    @Test func theFloatLookupBinsAsTheSearchDoes() {
        // Every bucket's first and last values and their neighbours, the edges' nearest
        // Floats, and a million values spread over the log-odds and over the bit patterns.
        var probes: [Float] = [0, 1, 0.5, .leastNonzeroMagnitude, Float(1).nextDown, Float(0.5).nextUp, Float(0.5).nextDown]
        for k in 0..<0x3F1 {
            let lo = Float(bitPattern: UInt32(k) << 20), hi = Float(bitPattern: UInt32(k + 1) << 20)
            for v in [lo, lo.nextUp, hi.nextDown, hi.nextDown.nextDown, 1 - lo, 1 - hi.nextDown, (1 - lo).nextUp,
                      (1 - lo).nextDown] where v >= 0 && v <= 1 { probes.append(v) }
        }
        for e in ProbabilityBins.edges {
            let f = Float(e)
            probes += [f, f.nextUp, f.nextDown, f.nextUp.nextUp, f.nextDown.nextDown]
        }
        var rng = SeededRandom(seed: 41)
        for _ in 0..<500_000 {
            probes.append(Float(1 / (1 + exp(-(24 * rng.uniform() - 12)))))
            probes.append(Float(bitPattern: UInt32(rng.uniform() * Double(0x3F80_0000))))
        }
        var mismatches = 0
        for p in probes where ProbabilityBins.lookup.index(of: p) != ProbabilityBins.index(of: Double(p)) { mismatches += 1 }
        #expect(mismatches == 0, "of \(probes.count)")
        #expect(ProbabilityBins.lookup.index(of: .nan) == ProbabilityBins.index(of: .nan))
        #expect(ProbabilityBins.lookup.index(of: -0.5) == 0 && ProbabilityBins.lookup.index(of: 2) == 21)
    }

    @Test func pinnedReferenceIsTheFirstValuesAndRecentTheLast() throws {
        let history = values(3000, seed: 2) + values(700, seed: 3, shift: 1.5)
        var d = Pinned(recentSize: 500, referenceSize: 1200)
        for (i, p) in history.enumerated() {
            d.record(Double(Float(p)))
            if i + 1 < 1200 { #expect(d.statistic() == nil, "nil until the reference is full") }
        }
        let s = try #require(d.statistic())
        let want = directPSI(recent: history[(history.count - 500)...], reference: history[..<1200])
        #expect(abs(s.psi - want.psi) < 1e-12 && abs(s.noise - want.noise) < 1e-15)
        #expect(s.recent == 500 && s.reference == 1200)
    }

    @Test func classifiersKeepTheirOwnWindowsInTheSharedTable() throws {
        // Three classifiers interleaved in messages (the middle one reports every third
        // message only, one classifier not at all): each against its own history.
        let histories = [values(4000, seed: 31), values(4000, seed: 32, shift: 0.5), values(4000, seed: 33, shift: -1)]
        var table = ClassifierDriftTable(recentSize: 300, referenceSize: 700)
        table.grow(to: 4)
        var seen: [[Double]] = [[], [], [], []]
        for i in 0..<4000 {
            var entries: [Entry] = []
            for (u, h) in [(0, histories[0]), (1, histories[1]), (3, histories[2])] where u != 1 || i % 3 == 0 {
                entries.append(Entry(classifier: u, value: h[i]))
                seen[u].append(Double(Float(h[i])))
            }
            entries.withUnsafeBufferPointer { table.record($0) }
            if i == 1500 { table.pin() }
        }
        #expect(table.statistic(2) == nil && table.recorded(2) == 0)
        for u in [0, 1, 3] {
            let h = seen[u]
            let pinnedAt = u == 1 ? 501 : 1501
            let s = try #require(table.statistic(u), "classifier \(u)")
            let want = directPSI(recent: h[(h.count - 300)...], reference: h[pinnedAt..<(pinnedAt + 700)])
            #expect(abs(s.psi - want.psi) < 1e-12, "classifier \(u): \(s.psi) vs \(want.psi)")
            #expect(table.recorded(u) == h.count - pinnedAt && table.recentCount(u) == 300 && table.referenceCount(u) == 700)
        }
    }

    @Test func trailingReferenceIsTheWindowBeforeTheRecentOne() throws {
        let history = values(2345, seed: 4) + values(321, seed: 5, shift: -1)
        var d = OutputDrift(recentSize: 400, referenceSize: 1000)
        for (i, p) in history.enumerated() {
            d.record(p)
            if i + 1 == 1399 { #expect(d.statistic() == nil, "nil until both windows are full") }
            if i + 1 >= 1400 && (i + 1) % 97 == 0 {
                let s = try #require(d.statistic())
                let n = i + 1
                let want = directPSI(recent: history[(n - 400)..<n], reference: history[(n - 1400)..<(n - 400)])
                #expect(abs(s.psi - want.psi) < 1e-12, "at \(n)")
            }
        }
    }

    @Test func pinStartsANewReference() throws {
        var d = Pinned(recentSize: 300, referenceSize: 600, classifier: 2)
        for p in values(2000, seed: 6) { d.record(p) }
        let shifted = values(900, seed: 7, shift: 2)
        for p in shifted[..<300] { d.record(p) }
        let before = try #require(d.statistic()).psi
        #expect(before > 0.5, "a shift of 2 in log-odds is a large PSI: \(before)")
        d.pin()
        #expect(d.statistic() == nil, "the new reference fills first")
        for p in shifted[300...] { d.record(p) }
        let after = try #require(d.statistic())
        let want = directPSI(recent: shifted[600...], reference: shifted[300..<900])
        #expect(abs(after.psi - want.psi) < 1e-12 && after.psi < 0.1)
    }

    @Test func stationaryPSIStaysNearItsNoise() throws {
        // Under no change PSI is about χ²(k−1)/n_eff: its mean is the noise figure.
        var total = 0.0, worst = 0.0
        for seed in 0..<40 {
            var d = Pinned(recentSize: 1000, referenceSize: 5000)
            for p in values(8000, seed: UInt64(100 + seed)) { d.record(p) }
            let s = try #require(d.statistic())
            total += s.psi / s.noise
            worst = max(worst, s.psi / s.noise)
        }
        #expect(abs(total / 40 - 1) < 0.35, "mean PSI / noise \(total / 40)")
        #expect(worst < 4, "no stationary window passes psi_noise_ratio 4: worst \(worst)")
    }

    @Test func predictedRateWindowsAndZ() throws {
        var rng = SeededRandom(seed: 8)
        let history = (0..<3000).map { i in rng.uniform() * (i < 2400 ? 0.02 : 0.06) }
        var rate = PredictedRate(recentSize: 500, referenceSize: 1500)
        for (i, p) in history.enumerated() {
            rate.record(p)
            if i + 1 < 2000 { #expect(rate.statistic() == nil) }
        }
        let s = try #require(rate.statistic())
        let recent = history[2500...].reduce(0, +) / 500, before = history[1000..<2500].reduce(0, +) / 1500
        #expect(abs(s.recent - recent) < 1e-6 && abs(s.reference - before) < 1e-6)
        let z = (recent - before) / (before * (1 / 500.0 + 1 / 1500.0)).squareRoot()
        #expect(abs(s.z - z) < 1e-3 && s.z > 3)
        // The same windows from a ring kept longer (as the daemon keeps it for the estimate).
        var longer = PredictedRate(recentSize: 500, referenceSize: 1500, capacity: 2800)
        for p in history { longer.record(p) }
        let l = try #require(longer.statistic())
        #expect(abs(l.recent - recent) < 1e-6 && abs(l.reference - before) < 1e-6 && abs(l.z - z) < 1e-3)
    }

    @Test func driftWatchRecordsByClassifierAndSchedulesChecks() throws {
        var watch = DriftWatch(windows: DriftWindows(recent: 200, reference: 400, checkEvery: 50))
        var due = 0
        let a = values(1000, seed: 9), b = values(1000, seed: 10)
        for i in 0..<1000 {
            // Classifier 1 reports every other instance only.
            var entries = [Entry(classifier: 0, value: a[i])]
            if i % 2 == 0 { entries.append(Entry(classifier: 1, value: b[i])) }
            if watch.record(entries, score: a[i], probability: 0.01) { due += 1 }
        }
        #expect(due == 20)
        #expect(watch.classifiers.count == 2)
        #expect(watch.classifiers.recorded(0) == 1000 && watch.classifiers.recorded(1) == 500)
        let o = watch.observation(names: ["a", "b", "c"])
        #expect(o.classifiers.map(\.name) == ["a", "b", "c"])
        #expect(o.classifiers[0].drift != nil && o.classifiers[1].drift != nil && o.classifiers[2].drift == nil)
        #expect(o.score != nil && o.rate != nil)
        let data = try JSONEncoder().encode(watch)
        #expect(try JSONDecoder().decode(DriftWatch.self, from: data) == watch, "the windows survive a checkpoint")
        // A checkpoint with the earlier layout (an array of per-classifier windows) keeps
        // the score's and the rate's windows; the classifiers' references fill afresh.
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        object["classifiers"] = [["recentSize": 200, "referenceSize": 400]]
        let old = try JSONDecoder().decode(DriftWatch.self, from: JSONSerialization.data(withJSONObject: object))
        #expect(old.classifiers.count == 0 && old.score == watch.score && old.rate == watch.rate)
    }
}

@Suite struct DriftConditionTests {
    private func stream(_ psi: Double) -> DriftObservation.Stream { .init(psi: psi, noise: 0.01, recent: 1000, reference: 5000) }

    private func observation(a: Double, b: Double, score: Double = 0.01, rate: (Double, Double, Double)? = (0.01, 0.01, 0),
                             now: Double) -> DriftObservation {
        DriftObservation(classifiers: [("a", stream(a)), ("b", stream(b)), ("new", nil)], score: stream(score),
                         rate: rate.map { (recent: $0.0, reference: $0.1, z: $0.2) }, now: now)
    }

    @Test func classifierDriftNamesTheClassifierWithHysteresis() {
        var monitor = HealthMonitor(config: HealthConfiguration())   // fire 2, resolve 3, 10 s dwell
        var events: [HealthAlert] = []
        var t = 0.0
        func run(_ o: (Double) -> DriftObservation, _ n: Int) {
            for _ in 0..<n {
                t += 1
                events += monitor.checkDrift(o(t))
            }
        }
        run({ observation(a: 0.02, b: 0.03, now: $0) }, 5)
        #expect(events.isEmpty)
        run({ observation(a: 0.02, b: 0.9, now: $0) }, 1)
        #expect(events.isEmpty, "one check over the bound is not enough")
        run({ observation(a: 0.02, b: 0.9, now: $0) }, 4)
        #expect(events.count == 1 && events[0].name == .classifierDrift && events[0].classifier == "b" && events[0].state == "firing")
        #expect(events[0].reason.contains("classifier b") && events[0].metrics["psi"] == 0.9)
        #expect(monitor.status == "warning" && !monitor.criticalFiring)
        run({ observation(a: 0.02, b: 0.01, now: $0) }, 3)
        #expect(events.count == 1, "resolves no sooner than min_firing_s after firing")
        run({ observation(a: 0.02, b: 0.01, now: $0) }, 8)
        #expect(events.count == 2 && events[1].state == "resolved" && events[1].classifier == "b")
        #expect(!events.contains { $0.name == .scoreDrift })
    }

    @Test func boundFollowsTheNoiseOfSmallWindows() {
        var monitor = HealthMonitor(config: HealthConfiguration())
        // PSI 0.3 over a max_psi of 0.25, but noise 0.1 makes the bound 0.4.
        let noisy = DriftObservation(classifiers: [("a", .init(psi: 0.3, noise: 0.1, recent: 100, reference: 100))],
                                     score: nil, rate: nil)
        var events: [HealthAlert] = []
        for _ in 0..<5 { events += monitor.checkDrift(noisy) }
        #expect(events.isEmpty)
    }

    @Test func scoreDriftOnThePredictedPositiveRate() {
        var monitor = HealthMonitor(config: HealthConfiguration())
        var events: [HealthAlert] = []
        // Three times the rate but within noise (z 3): nothing; with z 8: fires.
        for t in 0..<4 { events += monitor.checkDrift(observation(a: 0, b: 0, rate: (0.03, 0.01, 3), now: Double(t))) }
        #expect(events.isEmpty)
        for t in 4..<6 { events += monitor.checkDrift(observation(a: 0, b: 0, rate: (0.03, 0.01, 8), now: Double(t))) }
        #expect(events.map(\.name) == [.scoreDrift] && events[0].reason.contains("predicted positive rate"))
        #expect(events[0].metrics["predicted_positive_rate"] == 0.03)
        // A fall counts the same.
        var other = HealthMonitor(config: HealthConfiguration())
        var falls: [HealthAlert] = []
        for t in 0..<2 { falls += other.checkDrift(observation(a: 0, b: 0, rate: (0.002, 0.01, -6), now: Double(t))) }
        #expect(falls.map(\.name) == [.scoreDrift])
        // The score's own PSI moves with every model update: reported, not judged.
        var third = HealthMonitor(config: HealthConfiguration())
        var moved: [HealthAlert] = []
        for t in 0..<4 { moved += third.checkDrift(observation(a: 0, b: 0, score: 0.7, now: Double(t))) }
        #expect(moved.isEmpty)
    }

    @Test func driftStateSurvivesARestartOfTheMonitor() {
        var monitor = HealthMonitor(config: HealthConfiguration())
        for t in 0..<3 { _ = monitor.checkDrift(observation(a: 0.9, b: 0, now: Double(t))) }
        var restored = HealthMonitor(config: HealthConfiguration())
        restored.restore(monitor.state(now: 3), now: 100)
        #expect(restored.firing.contains { $0.name == .classifierDrift && $0.classifier == "a" })
        var events: [HealthAlert] = []
        for t in 101..<104 { events += restored.checkDrift(observation(a: 0.9, b: 0, now: Double(t))) }
        #expect(events.isEmpty, "no second firing after a restart")
    }
}
