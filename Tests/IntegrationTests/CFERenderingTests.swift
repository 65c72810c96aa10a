import Foundation
import Testing
import Wire
@testable import CFE

/// cfe reads the daemon's replies and events as the Wire module's types.
@Suite struct CFERenderingTests {
    @Test func statusAndWatchRenderTypedBodies() throws {
        var h = HealthBody()
        h.status = "critical"
        h.model_version = 12
        h.fallback_active = true
        h.weights = ["xgb": 1.5, "rf": -0.5, "poisoned": .nan]
        h.scored = 300
        h.pr_auc = 0.4321
        var state = WatchState()
        // A body as the daemon encodes it, decoded as cfe does.
        state.apply(health: try WireJSON.decode(HealthBody.self, from: WireJSON.encode(h)))
        state.apply(alert: AlertBody(alert: "classifier_silent", state: "firing", severity: "warning", ts: 1, model_version: 12,
                                     reason: "classifier rf has not reported", metrics: [:], action: "none", classifier: "rf"))
        let out = state.render(color: false)
        #expect(out.contains("status: critical  model_version: 12  FALLBACK SCORES"), "\(out)")
        #expect(out.contains("scored 300"))
        #expect(out.contains("PR-AUC 0.4321 (simple average -"))
        #expect(out.contains("FIRING classifier_silent (rf) [warning] v12: classifier rf has not reported"))
        #expect(out.contains("poisoned") && out.contains("nan"))

        var p = Persistence()
        #expect(Status.persistenceLine(p) == "state: no checkpoint since start, journal off")
        p.last_checkpoint = .init(at: 100, bytes: 2_500_000, model_version: 3, pending: 7, ms: 12, background: true)
        p.journal_file = 4
        p.journal_bytes = 1500
        p.checkpoints_failed = 1
        #expect(Status.persistenceLine(p, now: 130)
                == "state: last checkpoint 30 s ago (2.5 MB, 7 pending, 12 ms), 1 failed, journal 4: 1.5 kB")
    }
}
