import Foundation
import Testing
import Online
import TestSupport
import Wire
@testable import Daemon

/// Operating points through the daemon core on a manual clock, against thresholds,
/// precisions and recalls computed here from what the core published and was told.
@Suite struct OperatingPointTests {
    @Test func alertBudgetsAndAPrecisionTargetMatchAComputationFromThePublishedScores() throws {
        let h = CoreHarness {
            $0.alertRates = [0.01, 0.05]
            $0.precisionTarget = 0.8
            $0.scoreWindow = 5000
            $0.healthWindow = 2000
        }
        var g = SeededRandom(seed: 21)
        var labels: [String: Int8] = [:]
        for t in 0..<6000 {
            let y: Int8 = g.uniform() < 0.05 ? 1 : 0
            let m = y == 1 ? 1.2 : -1.2
            func squash(_ z: Double) -> Double { 1 / (1 + exp(-z)) }
            h.pred("i\(t)", ["a": squash(m + g.normal()), "b": squash(m + 1.5 * g.normal())])
            labels["i\(t)"] = y
            if t >= 50 { h.label("i\(t - 50)", labels["i\(t - 50)"]!) }
        }
        h.advance(2)
        let body = h.core.healthBody()
        let points = try #require(body.operating_points)
        #expect(points.map(\.alert_rate) == [0.01, 0.05] && body.score_window == 5000)

        // The thresholds: the k-th largest of the last 5,000 published scores.
        let recent = h.sink.scores.suffix(5000).map { Double(Float($0.score)) }.sorted(by: >)
        #expect(points[0].threshold == recent[49] && points[1].threshold == recent[249])
        // Precision and recall over the last 2,000 labelled instances, at their scoring-time scores.
        let scoreOf = Dictionary(uniqueKeysWithValues: h.sink.scores.map { ($0.id, Double(Float($0.score))) })
        let window = (5950 - 2000..<5950).map { (scoreOf["i\($0)"]!, labels["i\($0)"]!) }
        for p in points {
            let t = try #require(p.threshold)
            let flagged = window.filter { $0.0 >= t }
            let hits = flagged.filter { $0.1 == 1 }.count
            let positives = window.filter { $0.1 == 1 }.count
            #expect(abs(try #require(p.precision) - Double(hits) / Double(flagged.count)) < 1e-12)
            #expect(abs(try #require(p.recall) - Double(hits) / Double(positives)) < 1e-12)
        }
        // The precision target: the lowest threshold whose precision reaches 0.8.
        let target = try #require(body.precision_target)
        var best: Double?
        for t in Set(window.map(\.0)) {
            let flagged = window.filter { $0.0 >= t }
            let hits = flagged.filter { $0.1 == 1 }.count
            if hits >= 5 && Double(hits) / Double(flagged.count) >= 0.8 && t < (best ?? .infinity) { best = t }
        }
        #expect(target.threshold == best && (target.precision ?? 0) >= 0.8)
        let share = Double(h.sink.scores.suffix(5000).filter { Double(Float($0.score)) >= best! }.count) / 5000
        #expect(abs(try #require(target.alert_rate) - share) < 1e-12)
        // The same in the metrics' inputs and in `cfe status`'s rendering come from this body.
        #expect(points[0].threshold! > points[1].threshold!)
    }

    @Test func beforeEnoughTrafficTheThresholdsAreUnknown() throws {
        let h = CoreHarness { $0.alertRates = [0.001] }
        for t in 0..<500 { h.pred("i\(t)", ["a": Double(t % 100) / 100, "b": 0.5]) }
        let p = try #require(h.core.healthBody().operating_points?.first)
        #expect(p.alert_rate == 0.001 && p.threshold == nil && p.precision == nil)
        #expect(h.core.healthBody().precision_target == nil, "no precision target configured")
    }
}

/// `output.explain` through the core: off, scores carry no explanation; on, each carries
/// the expert and a share per classifier, the missing ones marked filled.
@Suite struct ExplainOutputTests {
    @Test func explanationsAreOptInAndNameEveryClassifier() throws {
        let off = CoreHarness()
        off.pred("x", ["a": 0.2, "b": 0.6])
        #expect(try #require(off.sink.scores.last).explain == nil)
        let on = CoreHarness { $0.explain = true }
        on.pred("x", ["a": 0.2, "b": 0.6, "c": 0.9])
        on.pred("y", ["a": 0.3, "c": 0.5])
        let y = try #require(on.sink.scores.last?.explain)
        #expect(y.expert == "learned" && y.names == ["a", "b", "c"] && y.filled == ["b"])
        let s = try #require(on.sink.scores.last).score
        #expect(abs(1 / (1 + exp(-4 * (y.shares.reduce(0, +) - 0.5))) - s) < 1e-9)
    }
}
