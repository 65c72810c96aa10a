import Foundation
import Testing
import Online
import Transport
import Wire
@testable import Daemon

/// The health supervisor's state survives a clean restart and a crash (checkpoint and
/// journal in a real state directory, restored by the daemon's own `StateRestore`), on a
/// manual clock: nothing that fired is resolved or fired again by the restart, timers go
/// on from where they were (the time the daemon was down counts towards none), and the
/// healthy references (weight sum, last healthy model) are kept.
@Suite struct DurableHealthTests {
    private func stateDirectory() throws -> String { try makeTemporaryDirectory(prefix: "cfe-health") }

    private func configure(_ dir: String) -> (inout DaemonConfiguration) -> Void {
        return {
            $0.stateDir = dir
            $0.batchSize = 8
            $0.healthIntervalSeconds = 1
            $0.health.silentAfterSeconds = 20
            $0.health.fireAfter = 2
            $0.health.resolveAfter = 3
            $0.health.minFiringSeconds = 10
            $0.health.outageExpectedPositives = 3
        }
    }

    /// One second of traffic from `names` (varied values), with the health timer run.
    private func second(_ h: CoreHarness, _ names: [String], tag: String) {
        for k in 0..<4 {
            var preds: [String: Double] = [:]
            for (j, n) in names.enumerated() { preds[n] = Double((k * 7 + j * 3) % 10) / 10 + 0.05 }
            h.pred("\(tag)-\(k)", preds)
        }
        h.advance(1)
    }

    enum Stop: CaseIterable { case clean, crash }

    @Test(arguments: Stop.allCases)
    func firingConditionsAndSilenceTimersSurviveARestart(stop: Stop) throws {
        let dir = try stateDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var h = CoreHarness(durable: true, configure(dir))
        // Labelled traffic at a 50% positive rate from a, b, c and nn.
        for i in 0..<64 {
            h.pred("t\(i)", ["a": i % 2 == 0 ? 0.8 : 0.2, "b": 0.3 + 0.01 * Double(i % 30), "c": 0.5, "nn": 0.4])
            h.label("t\(i)", Int8(i % 2))
        }
        // nn stops reporting; negatives only (label_outage after 6 in a row).
        for s in 0..<12 {
            second(h, ["a", "b", "c"], tag: "x\(s)")
            h.pred("neg\(s)", ["a": 0.1, "b": 0.2, "c": 0.3])
            h.label("neg\(s)", 0)
        }
        // c stops too: silent for 10 s at the stop (its limit is 20 s).
        for s in 0..<10 { second(h, ["a", "b"], tag: "y\(s)") }
        let before = h.core.healthBody()
        let firing = Set(before.alerts_firing)
        #expect(firing.isSuperset(of: ["classifier_silent:nn", "label_outage"]) && !firing.contains("classifier_silent:c"), "\(firing)")
        #expect(h.sink.alerts.allSatisfy { $0.state == "firing" })
        let sinceBefore = Dictionary(uniqueKeysWithValues: (before.firing ?? []).map { ($0.alert, $0.since) })

        // Down for five minutes.
        h = stop == .clean ? try h.restartCleanly(after: 300) : h.crash(after: 300)
        let after = h.core.healthBody()
        #expect(Set(after.alerts_firing) == firing, "restart changed what fires: \(after.alerts_firing)")
        #expect(after.status == before.status)
        // Each fires since the same time (the time it fired, as it was published).
        #expect(Dictionary(uniqueKeysWithValues: (after.firing ?? []).map { ($0.alert, $0.since) }) == sinceBefore)
        #expect(sinceBefore.count == firing.count && sinceBefore.values.allSatisfy { $0 > 1_700_000_000 })
        // a and b report; c was 10 s into its 20 s: it fires ~10 s (+1 check) after the start.
        for s in 0..<9 { second(h, ["a", "b"], tag: "z\(s)") }
        #expect(h.sink.alerts.isEmpty, "the restart resolved or fired: \(h.sink.alerts.map { "\($0.alert) \($0.state)" })")
        for s in 0..<4 { second(h, ["a", "b"], tag: "w\(s)") }
        let c = h.sink.alerts.filter { $0.alert == "classifier_silent" && $0.classifier == "c" }
        #expect(c.count == 1 && c.first?.state == "firing", "c's silence did not go on from where it was: \(h.sink.alerts.map(\.reason))")
        #expect(h.sink.alerts.count == 1, "\(h.sink.alerts.map { "\($0.alert) \($0.state)" })")

        // nn reports again: it resolves (after the hysteresis), saying so with the value now.
        for s in 0..<4 { second(h, ["a", "b", "nn"], tag: "v\(s)") }
        let resolved = try #require(h.sink.alerts.first { $0.classifier == "nn" })
        #expect(resolved.state == "resolved")
        #expect(resolved.reason.hasPrefix("classifier nn reports again (last report "), "\(resolved.reason)")
    }

    /// score_collapse (critical) keeps firing across a restart, with its fallback: the
    /// restored recent scores are still constant, so nothing resolves, and the published
    /// scores are the fallback's from the first one after the start.
    @Test(arguments: Stop.allCases)
    func aCollapsedScoreStaysFiringWithItsFallback(stop: Stop) throws {
        let dir = try stateDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var h = CoreHarness(durable: true, configure(dir))
        for i in 0..<1000 { h.pred("c\(i)", ["a": 0.5, "b": 0.5]) }
        h.advance(2)
        #expect(h.core.healthBody().alerts_firing == ["score_collapse"])
        h = stop == .clean ? try h.restartCleanly(after: 30) : h.crash(after: 30)
        #expect(h.core.healthBody().alerts_firing == ["score_collapse"] && h.core.healthBody().status == "critical")
        h.pred("after", ["a": 0.9, "b": 0.1])
        #expect(h.sink.scores.last?.fallback == true, "the fallback stopped at the restart")
        h.advance(5)
        #expect(h.sink.alerts.isEmpty, "\(h.sink.alerts.map { "\($0.alert) \($0.state)" })")
    }

    /// The healthy weight-sum reference and the last healthy model outlive a restart:
    /// after a collapse and a restart, weight_collapse still fires and a rollback brings
    /// back the model from before the collapse, not one learnt after the restart.
    @Test(arguments: Stop.allCases)
    func theLastHealthyModelSurvivesARestart(stop: Stop) throws {
        let dir = try stateDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var h = CoreHarness(durable: true, configure(dir))
        func train(_ from: Int, _ count: Int, flip: Bool) {
            for i in from..<(from + count) {
                h.pred("t\(i)", ["a": i % 2 == 0 ? 0.9 : 0.1, "b": i % 2 == 0 ? 0.7 : 0.35, "c": 0.2 + 0.02 * Double(i % 20)])
            }
            for i in from..<(from + count) { h.label("t\(i)", Int8((i % 2 == 0) != flip ? 1 : 0)) }
        }
        train(0, 64, flip: false)
        let healthyVersion = try #require(h.core.health.lastHealthy).version
        // Inverted labels until the weights collapse.
        var n = 64
        while !h.core.healthBody().alerts_firing.contains("weight_collapse") && n < 20_000 {
            train(n, 64, flip: true)
            h.advance(1)
            n += 64
        }
        #expect(h.core.healthBody().alerts_firing.contains("weight_collapse"))
        let kept = try #require(h.core.health.lastHealthy)
        #expect(kept.version < h.core.model.version)

        h = stop == .clean ? try h.restartCleanly(after: 60) : h.crash(after: 60)
        #expect(h.core.healthBody().alerts_firing.contains("weight_collapse"), "the restart resolved the collapse")
        #expect(h.core.health.lastHealthy == kept, "the last healthy model was not kept")
        // More inverted labels after the restart: updates under the collapse are not healthy.
        train(n, 64, flip: true)
        h.advance(2)
        // Inverted labels also leave the probabilities miscalibrated: calibration_drift may
        // fire on its own; nothing that fired before the restart fires again.
        #expect(h.sink.alerts.filter { $0.alert != "calibration_drift" }.isEmpty)
        let candidate = try h.core.rollbackCandidate().get()
        #expect(candidate.aggregator.w == kept.aggregator.w)
        #expect(kept.version >= healthyVersion && candidate.aggregator.w != h.core.model.aggregator.w)
    }
}
