import Foundation
import Testing
@testable import Online
import TestSupport

/// The label-free estimate against simulation: labels drawn from the probabilities many
/// times, the realised average precision computed directly each time.
@Suite struct ExpectedQualityTests {
    /// Average precision by its definition: mean precision at each positive, ranked by p.
    private func realisedAP(_ p: [Float], _ y: [Bool]) -> Double? {
        let order = p.indices.sorted { p[$0] > p[$1] }
        var hits = 0, sum = 0.0
        for (k, i) in order.enumerated() where y[i] {
            hits += 1
            sum += Double(hits) / Double(k + 1)
        }
        return hits > 0 ? sum / Double(hits) : nil
    }

    private func probabilities(_ n: Int, seed: UInt64, separation: Double) -> [Float] {
        var g = SeededRandom(seed: seed)
        return (0..<n).map { _ in
            let positive = g.uniform() < 0.05
            let z = (positive ? separation : -separation) + g.normal() - 2.5
            return Float(1 / (1 + exp(-z)))
        }
    }

    @Test(arguments: [0.5, 1.5, 3.0])
    func averagePrecisionIsWhatLabelsDrawnFromTheProbabilitiesGive(separation: Double) throws {
        let p = probabilities(2000, seed: 7, separation: separation)
        let estimate = try #require(ExpectedQuality.averagePrecision(p))
        var g = SeededRandom(seed: 99)
        var total = 0.0, draws = 0
        for _ in 0..<400 {
            let y = p.map { g.uniform() < Double($0) }
            if let ap = realisedAP(p, y) { total += ap; draws += 1 }
        }
        let mean = total / Double(draws)
        #expect(abs(estimate.ap - mean) < 0.01, "estimate \(estimate.ap), simulated mean \(mean)")
        #expect(abs(estimate.positives - p.reduce(0) { $0 + Double($1) }) < 1e-6)
    }

    @Test func operatingPointsAreTheTopShare() throws {
        let p: [Float] = [0.9, 0.1, 0.5, 0.3, 0.2, 0.05, 0.6, 0.02, 0.01, 0.3]
        let points = ExpectedQuality.operatingPoints(p, rates: [0.2, 0.05, 0.5])
        let total = p.reduce(0) { $0 + Double($1) }
        let top2 = try #require(points[0])
        #expect(abs(top2.precision - (0.9 + 0.6) / 2) < 1e-6 && abs(top2.recall - 1.5 / total) < 1e-6)
        #expect(points[1] == nil, "5% of 10 is less than one instance")
        let half = try #require(points[2])
        #expect(abs(half.precision - (0.9 + 0.6 + 0.5 + 0.3 + 0.3) / 5) < 1e-6)
        let pr = try #require(ExpectedQuality.precisionRecall(p, atOrAbove: 0.5))
        #expect(abs(pr.precision - 2.0 / 3) < 1e-6 && abs(pr.recall - 2.0 / total) < 1e-6)
        #expect(ExpectedQuality.averagePrecision([Float]()) == nil && ExpectedQuality.averagePrecision([0, 0]) == nil)
    }

    /// The radix ranking against the comparison sort, on values the windows can hold and
    /// some they should not (NaN, infinities, -0, out of [0, 1], many ties).
    @Test(arguments: [0, 1, 2, 257, 5000])
    func rankingIsTheComparisonSortOfTheClampedValues(n: Int) {
        var g = SeededRandom(seed: UInt64(n) + 3)
        let odd: [Float] = [.nan, .infinity, -.infinity, -0.0, 0, 1, 1.5, -0.25, 0.5, 0.5, .leastNonzeroMagnitude]
        let p: [Float] = (0..<n).map { i in i % 7 == 0 ? odd[i % odd.count] : Float(g.uniform()) * (i % 3 == 0 ? 0.01 : 1) }
        let expected = p.filter(\.isFinite).map { min(1, max(0, $0)) }.sorted(by: >)
        let got = ExpectedQuality.ranked(p)
        #expect(got.map(\.bitPattern) == expected.map { $0 == 0 ? 0 : $0.bitPattern })
        let direct = ExpectedQuality.averagePrecision(p)
        let viaRanked = ExpectedQuality.averagePrecision(ranked: got)
        #expect(direct?.ap == viaRanked?.ap && direct?.positives == viaRanked?.positives)
    }

    @Test func windowsOfPredictedRateAreTheLastValuesOldestFirst() {
        var r = PredictedRate(recentSize: 3, referenceSize: 4)
        for v in 1...9 { r.record(Double(v) / 100) }
        let w = r.windows(recent: 3, reference: 4)
        #expect(w.recent == [0.07, 0.08, 0.09].map { Float($0) })
        #expect(w.reference == [0.03, 0.04, 0.05, 0.06].map { Float($0) })
        var short = PredictedRate(recentSize: 3, referenceSize: 4)
        for v in 1...5 { short.record(Double(v) / 100) }
        #expect(short.windows(recent: 3, reference: 4).recent.count == 3 && short.windows(recent: 3, reference: 4).reference.isEmpty)
        // A ring kept longer for other windows: the rate's windows are the same, and the
        // longer windows come from the same ring.
        var long = PredictedRate(recentSize: 3, referenceSize: 4, capacity: 12)
        for v in 1...15 { long.record(Double(v) / 100) }
        #expect(long.windows(recent: 3, reference: 4).recent == [0.13, 0.14, 0.15].map { Float($0) })
        #expect(long.windows(recent: 6, reference: 6).reference == [0.04, 0.05, 0.06, 0.07, 0.08, 0.09].map { Float($0) })
        let s = long.statistic()
        #expect(s != nil && abs(s!.recent - 0.14) < 1e-6 && abs(s!.reference - 0.105) < 1e-6)
    }

    @Test func estimatedQualityDropFiresWithHysteresisOnlyWithEnoughExpectedPositives() {
        var monitor = HealthMonitor(config: HealthConfiguration())
        func check(_ recent: Double, positives: Double = 50, now: Double) -> [HealthAlert] {
            var o = HealthObservation(weights: [0.5, 0.5], classifiers: ["a", "b"], scoreStd: 0.2, scoreCount: 1000, prAUC: nil,
                                      baselinePrAUC: nil, qualityCount: 0, silentSeconds: [1, 1], negativesInARow: 0,
                                      positiveRate: 0.01, afterUpdate: false, now: now)
            o.estimate = (recent, 0.8, positives, 50)
            return monitor.check(o)
        }
        var events: [HealthAlert] = []
        for t in 0..<3 { events += check(0.75, now: Double(t)) }
        #expect(events.isEmpty, "a fall within the margin")
        for t in 3..<6 { events += check(0.4, positives: 10, now: Double(t)) }
        #expect(events.isEmpty, "10 expected positives cannot tell")
        for t in 6..<8 { events += check(0.6, now: Double(t)) }
        #expect(events.map(\.name) == [.estimatedQualityDrop] && events[0].state == "firing")
        #expect(events[0].metrics["estimated_pr_auc"] == 0.6)
        for t in 8..<30 { events += check(0.79, now: Double(t)) }
        #expect(events.map(\.state) == ["firing", "resolved"])
    }
}
