import Foundation
import Testing
import Online
import TestSupport
import Transport
import Wire
@testable import Daemon

/// The calibrated `probability` through the daemon core, on a manual clock: published
/// with every score, calibrated on a stationary stream, watched by calibration_drift,
/// and kept bit for bit across a restart and a crash.
@Suite struct ProbabilityTests {
    /// Three classifiers whose outputs depend on the label; labels arrive `delay`
    /// instances later. `rate(t)`: the positive rate at instance t.
    static func feed(_ h: CoreHarness, from: Int, count: Int, delay: Int = 40, seed: UInt64 = 1,
                     rate: (Int) -> Double) -> [Int8] {
        var g = SeededRandom(seed: seed &+ UInt64(from))
        var labels: [Int8] = []
        func squash(_ z: Double) -> Double { 1 / (1 + exp(-z)) }
        for t in from..<(from + count) {
            let y: Int8 = g.uniform() < rate(t) ? 1 : 0
            labels.append(y)
            let m = y == 1 ? 1.5 : -1.5
            h.pred("i\(t)", ["a": squash(m + 1.2 * g.normal()), "b": squash(0.7 * m + g.normal()), "c": squash(0.3 * m + g.normal())])
            if t - from >= delay { h.label("i\(t - delay)", labels[t - from - delay]) }
            if t % 200 == 0 { h.advance(0.25) }
        }
        for k in max(0, count - delay)..<count { h.label("i\(from + k)", labels[k]) }
        return labels
    }

    static func configured(_ c: inout DaemonConfiguration) {
        c.healthIntervalSeconds = 1
        c.health.minFiringSeconds = 0
    }

    @Test func aStationaryStreamIsCalibratedAndNeverFiresCalibrationDrift() throws {
        let h = CoreHarness(Self.configured)
        let labels = Self.feed(h, from: 0, count: 12_000) { _ in 0.05 }
        let published = h.sink.scores
        #expect(published.count == 12_000)
        #expect(published.allSatisfy { $0.probability >= 0 && $0.probability <= 1 })
        // Calibrated in the large once 1,000 labels have arrived.
        let later = published.suffix(10_000).map(\.probability).reduce(0, +) / 10_000
        let rate = Double(labels.suffix(10_000).reduce(0) { $0 + Int($1) }) / 10_000
        #expect(abs(later - rate) < 0.1 * rate, "mean probability \(later), positive rate \(rate)")
        #expect(!h.sink.alerts.contains { $0.alert == "calibration_drift" }, "\(h.sink.alerts.map(\.reason))")
        let c = try #require(h.core.healthBody().calibration)
        #expect(c.fitted && c.window == 2000)
        #expect(try #require(c.ece) < 0.02 && (try #require(c.ece_now)) < 0.02)
        #expect(abs(try #require(c.positive_rate) - 0.05) < 0.01)
    }

    @Test func calibrationDriftFiresWhenThePositiveRateTriples() throws {
        let h = CoreHarness(Self.configured)
        _ = Self.feed(h, from: 0, count: 10_000) { _ in 0.05 }
        #expect(!h.sink.alerts.contains { $0.alert == "calibration_drift" }, "fired before the change")
        _ = Self.feed(h, from: 10_000, count: 10_000) { _ in 0.15 }
        let fired = try #require(h.sink.alerts.first { $0.alert == "calibration_drift" && $0.state == "firing" })
        #expect(fired.severity == "warning" && (fired.metrics["ece"] ?? 0) > (fired.metrics["ece_bound"] ?? 1))
    }

    @Test func beforeAnyLabelTheProbabilityIsTheAverageAndAFallbackPublishesTheAveragesMap() throws {
        let h = CoreHarness()
        h.pred("x", ["a": 0.2, "b": 0.6])
        let first = try #require(h.sink.scores.last)
        #expect(abs(first.probability - 0.4) < 1e-6)
        // A collapse (scores with no spread) makes the fallback publish the average; its
        // probability is the average's map, not the score's.
        let c = CoreHarness { $0.healthIntervalSeconds = 1; $0.health.fireAfter = 1 }
        _ = Self.feed(c, from: 0, count: 3000) { _ in 0.1 }
        for i in 0..<2000 { c.pred("flat\(i)", ["a": 0.5, "b": 0.5, "c": 0.5]) }
        c.advance(2)
        c.pred("during", ["a": 0.9, "b": 0.7, "c": 0.2])
        let during = try #require(c.sink.scores.last)
        #expect(during.fallback)
        let map = c.core.calibration
        #expect(abs(during.probability - map.probability(score: 0, average: 0.6, modelPublished: false)) < 1e-6)
        #expect(abs(during.probability - map.probability(score: during.score, average: 0.6)) > 0.01, "not the score's map")
    }

    @Test(arguments: [false, true])
    func theProbabilityIsKeptBitForBitAcrossARestart(crash: Bool) throws {
        let dir = try makeTemporaryDirectory(prefix: "cfe-probability")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var h = CoreHarness(durable: true) { $0.stateDir = dir; Self.configured(&$0) }
        _ = Self.feed(h, from: 0, count: 3000) { _ in 0.08 }
        // Labels not yet learnt (a partial batch) and instances still pending.
        _ = Self.feed(h, from: 3000, count: 37, delay: 30) { _ in 0.08 }
        let probe = ["a": 0.71, "b": 0.42, "c": 0.55]
        // A clean stop learns the partial batch first: probe the model it will save.
        if !crash { h.core.finish() }
        h.pred("probe-before", probe)
        let before = try #require(h.sink.scores.last)
        let calibrator = h.core.calibrator
        h = crash ? h.crash(after: 5) : try h.restartCleanly(after: 5)
        #expect(h.core.calibrator == calibrator, "the checkpoint or the journal brings the calibrator back exactly")
        h.pred("probe-after", probe)
        let after = try #require(h.sink.scores.last)
        #expect(after.probability.bitPattern == before.probability.bitPattern, "\(before.probability) -> \(after.probability)")
        #expect(after.score.bitPattern == before.score.bitPattern)
    }
}
