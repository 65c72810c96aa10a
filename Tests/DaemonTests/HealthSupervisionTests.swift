import Foundation
import Testing
import Online
import Transport
import Wire
@testable import Daemon

/// Health timers, hysteresis and the fallbacks, in process on a manual clock.
@Suite struct HealthSupervisionTests {
    /// Scores with no spread fire score_collapse (critical) after fire_after checks;
    /// it resolves only after resolve_after clear checks and min_firing_s.
    @Test func scoreCollapseFiresAfterTwoChecksAndResolvesAfterTheMinimumTime() throws {
        let h = CoreHarness {
            $0.healthIntervalSeconds = 1
            $0.health.fireAfter = 2
            $0.health.resolveAfter = 3
            $0.health.minFiringSeconds = 10
        }
        for i in 0..<1000 { h.pred("c\(i)", ["a": 0.5, "b": 0.5]) }
        h.advance(1)
        #expect(h.sink.alerts.isEmpty, "fired on one check")
        h.advance(1)
        let fired = try #require(h.sink.alerts.first)
        #expect(fired.alert == "score_collapse" && fired.state == "firing" && fired.severity == "critical")
        #expect(fired.action == "fallback")
        #expect(fired.ts == h.clock.wall())
        #expect(h.core.healthBody().status == "critical")

        h.pred("during", ["a": 0.9, "b": 0.1])
        let during = try #require(h.sink.scores.last)
        #expect(during.fallback && abs(during.score - 0.5) < 1e-6, "the average is published while it fires")

        for i in 0..<1000 { h.pred("v\(i)", ["a": Double(i % 10) / 10, "b": Double(i % 7) / 7]) }
        h.advance(9)
        #expect(h.sink.alerts.count == 1, "resolved before min_firing_s")
        h.advance(1)
        let resolved = try #require(h.sink.alerts.last)
        #expect(resolved.alert == "score_collapse" && resolved.state == "resolved")
        h.pred("after", ["a": 0.9, "b": 0.1])
        #expect(h.sink.scores.last?.fallback == false)
        #expect(h.core.healthBody().status == "healthy")
    }

    @Test func aClassifierSilentPastItsLimitFiresNamingIt() throws {
        let h = CoreHarness {
            $0.healthIntervalSeconds = 5
            $0.health.silentAfterSeconds = 30
            $0.health.minFiringSeconds = 0
            $0.health.resolveAfter = 1
        }
        h.pred("first", ["a": 0.2, "b": 0.3])
        for t in 0..<8 {
            h.pred("a\(t)", ["a": 0.1 * Double(t % 9), "b": 0.4])
            h.advance(5)
        }
        // b reported 40 s ago until now too: only silence counts.
        #expect(h.sink.alerts.isEmpty)
        for t in 0..<8 {
            h.pred("only-a\(t)", ["a": 0.1 * Double(t % 9)])
            h.advance(5)
        }
        let alert = try #require(h.sink.alerts.first)
        #expect(alert.alert == "classifier_silent" && alert.classifier == "b" && alert.severity == "warning")
        #expect(alert.action == "none")
        #expect(h.core.healthBody().alerts_firing == ["classifier_silent:b"])
        h.pred("b-back", ["a": 0.5, "b": 0.5])
        h.advance(5)
        #expect(h.sink.alerts.last?.state == "resolved")
    }

    /// Under `last_healthy` the model kept at the last healthy update scores, covering a
    /// classifier registered after it was kept.
    @Test func lastHealthyFallbackScoresWithTheKeptModelAndCoversNewClassifiers() throws {
        let h = CoreHarness {
            $0.healthIntervalSeconds = 1
            $0.fallback = .last_healthy
            $0.batchSize = 8
        }
        for i in 0..<8 { h.pred("t\(i)", ["a": i % 2 == 0 ? 0.9 : 0.1, "b": 0.3 + 0.05 * Double(i)]) }
        for i in 0..<8 { h.label("t\(i)", i % 2 == 0 ? 1 : 0) }
        #expect(h.core.model.version == 1)
        let kept = try #require(h.core.health.lastHealthy)
        // Collapse the spread of scores: score_collapse fires after two checks.
        for i in 0..<1000 { h.pred("c\(i)", ["a": 0.5, "b": 0.5]) }
        h.advance(2)
        #expect(h.sink.alerts.contains { $0.alert == "score_collapse" && $0.state == "firing" })
        h.pred("new", ["a": 0.8, "b": 0.6, "c": 0.7])
        let published = try #require(h.sink.scores.last)
        #expect(published.fallback)
        // An independent scorer built from the kept snapshot, extended to c.
        let reference = try CFEnsemble(config: h.config.model, restoring: kept)
        try reference.cover(["a", "b", "c"])
        let expected = reference.score([Entry(classifier: 0, value: 0.8), Entry(classifier: 1, value: 0.6), Entry(classifier: 2, value: 0.7)],
                                       learnUnlabelled: true).score
        #expect(abs(published.score - expected) < 1e-12)
        #expect(published.score != 0.7, "not the average")
    }
}
