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
        h.calibration = CalibrationBody(fitted: true, slope: 4.5, intercept: 0.4, average_intercept: -1.8, positive_rate: 0.0123,
                                        ece: 0.0021, brier: 0.0094, window: 2000, ece_now: 0.0017, ece_noise: 0.0011)
        h.operating_points = [OperatingPoint(alert_rate: 0.001, threshold: 0.9731, precision: 0.8, recall: 0.41),
                              OperatingPoint(alert_rate: 0.01)]
        h.precision_target = PrecisionTargetBody(precision_target: 0.9, threshold: 0.99, precision: 0.92, recall: 0.3, alert_rate: 0.0004)
        var drift = DriftBody()
        drift.classifiers = ["xgb": .init(psi: 0.0123, bound: 0.25, reference: 5000, recent: 1000),
                             "rf": .init(psi: 0.61, bound: 0.25, reference: 5000, recent: 1000),
                             "new": .init(psi: nil, bound: nil, reference: 1200, recent: 1000)]
        drift.score = .init(psi: 0.02, bound: 0.25, reference: 5000, recent: 1000)
        drift.predicted_positive_rate = 0.0125
        drift.reference_positive_rate = 0.0119
        drift.labelled_positive_rate = 0.0121
        h.drift = drift
        var state = WatchState()
        // A body as the daemon encodes it, decoded as cfe does.
        state.apply(health: try WireJSON.decode(HealthBody.self, from: WireJSON.encode(h)))
        state.apply(alert: AlertBody(alert: "classifier_silent", state: "firing", severity: "warning", ts: 1, model_version: 12,
                                     reason: "classifier rf has not reported", metrics: [:], action: "none", classifier: "rf"))
        let out = state.render(color: false)
        #expect(out.contains("status: critical  model_version: 12  FALLBACK SCORES"), "\(out)")
        #expect(out.contains("scored 300"))
        #expect(out.contains("PR-AUC 0.4321 (simple average -"))
        #expect(out.contains("top 0.1%: score >= 0.9731  precision 0.8000  recall 0.4100"), "\(out)")
        #expect(out.contains("top 1%: score >= -  precision -  recall -"))
        #expect(out.contains("precision 0.9: score >= 0.9900  recall 0.3000  flags 0.04% of traffic"))
        #expect(out.contains("probability: calibrated  positive rate 0.0123  ECE 0.0021 (map now 0.0017, noise 0.0011)  Brier 0.0094"), "\(out)")
        #expect(out.contains("FIRING classifier_silent (rf) [warning] v12: classifier rf has not reported"))
        #expect(out.contains("poisoned") && out.contains("nan"))
        #expect(out.contains("drift: score PSI 0.0200  predicted positive rate 0.0125 (before 0.0119, labelled 0.0121)"), "\(out)")
        #expect(out.contains("classifier PSI: new filling 1200  rf 0.6100!  xgb 0.0123"), "\(out)")

        var p = Persistence()
        #expect(Status.persistenceLine(p) == "state: no checkpoint yet, journal off")
        p.last_checkpoint = .init(at: 100, bytes: 2_500_000, model_version: 3, pending: 7, ms: 12, background: true)
        p.journal_file = 4
        p.journal_bytes = 1500
        p.checkpoints_failed = 1
        #expect(Status.persistenceLine(p, now: 130)
                == "state: last checkpoint 30 s ago (2.5 MB, 7 pending, 12 ms), 1 failed, journal 4: 1.5 kB")
        p.last_checkpoint?.restored = true
        #expect(Status.persistenceLine(p, now: 130).hasPrefix("state: last checkpoint 30 s ago, restored at start (2.5 MB, 7 pending)"))

        // The cluster line: only with an election.
        var c = HealthBody.Cluster(role: "learner")
        #expect(Status.clusterLine(c) == nil)
        c.election = "leader"; c.leader = "a"; c.epoch = 17; c.standbys = ["b", "c"]
        #expect(Status.clusterLine(c) == "cluster: learner (leader), leader a at epoch 17, standbys b, c")
        var s = HealthBody.Cluster(role: "scorer")
        s.epoch = 9; s.standbys = []; s.states_fenced = 2; s.etcd_error = "connection refused"
        #expect(Status.clusterLine(s) == "cluster: scorer, leader none at epoch 9, standbys none, 2 states fenced, etcd: connection refused")
    }

    /// `cfe status` lists what fires (from the health body), not the alert events it
    /// never receives; an earlier daemon's names-only list still shows.
    @Test func statusListsWhatFires() throws {
        var h = HealthBody()
        h.status = "warning"
        h.alerts_firing = ["classifier_silent:nn", "label_outage"]
        h.firing = [FiringAlert(alert: "classifier_silent", classifier: "nn", severity: "warning", since: 1000,
                                reason: "classifier nn has not reported for 25 s (limit 20 s)"),
                    FiringAlert(alert: "label_outage", classifier: nil, severity: "warning", since: 900,
                                reason: "400 labels in a row without a positive")]
        var state = WatchState()
        state.apply(health: try WireJSON.decode(HealthBody.self, from: WireJSON.encode(h)))
        let out = state.render(color: false, recentAlerts: false, now: 1065)
        #expect(out.contains("firing:\n  classifier_silent (nn) [warning] for 1 min 5 s: classifier nn has not reported for 25 s"), "\(out)")
        #expect(out.contains("  label_outage [warning] for 2 min 45 s: 400 labels in a row"), "\(out)")
        #expect(!out.contains("recent alerts"), "\(out)")
        h.firing = nil
        state.apply(health: h)
        #expect(state.render(color: false, recentAlerts: false).contains("firing: classifier_silent:nn, label_outage"))
        h.alerts_firing = []
        state.apply(health: h)
        #expect(state.render(color: false).contains("firing: none"))
    }
}
