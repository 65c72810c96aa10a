import Foundation
import Testing
import Wire
@testable import CFE

/// What `cfe alertmanager` posts and when, in process with explicit times.
@Suite struct AlertForwarderTests {
    private func alert(_ name: String, _ state: String, severity: String = "critical", ts: Double, classifier: String? = nil) -> AlertBody {
        AlertBody(alert: name, state: state, severity: severity, ts: ts, model_version: 7, reason: "\(name) \(state)",
                  metrics: [:], action: severity == "critical" ? "fallback" : "none", classifier: classifier)
    }

    private func health(firing: [String], ts: Double) -> HealthBody {
        var h = HealthBody()
        h.ts = ts
        h.alerts_firing = firing
        return h
    }

    @Test func firingIsPostedAtOnceResentAndResolvedWithItsEndTime() throws {
        var f = AlertForwarder(instance: "d1", resendInterval: 60)
        f.alert(alert("weight_collapse", "firing", ts: 1000), now: 1000)
        let first = try #require(f.due(now: 1000) as [AlertForwarder.Postable]?)
        #expect(first.count == 1)
        #expect(first[0].labels == ["alertname": "weight_collapse", "severity": "critical", "instance": "d1", "service": "cfensembled"])
        #expect(first[0].annotations["summary"] == "weight_collapse firing")
        #expect(first[0].annotations["description"]?.contains("cfe rollback") == true)
        #expect(first[0].startsAt == AlertForwarder.rfc3339(1000))
        #expect(first[0].endsAt == AlertForwarder.rfc3339(1240), "four resend intervals ahead")
        f.delivered()
        #expect(f.due(now: 1030) == nil)
        // Re-posted every interval while it fires, with the same start and a later end.
        let resent = try #require(f.due(now: 1061) as [AlertForwarder.Postable]?)
        #expect(resent[0].startsAt == AlertForwarder.rfc3339(1000) && resent[0].endsAt == AlertForwarder.rfc3339(1301))
        f.delivered()
        f.alert(alert("weight_collapse", "resolved", ts: 1100), now: 1100)
        let resolved = try #require(f.due(now: 1100) as [AlertForwarder.Postable]?)
        #expect(resolved[0].endsAt == AlertForwarder.rfc3339(1100))
        #expect(resolved[0].startsAt == AlertForwarder.rfc3339(1000))
        f.delivered()
        #expect(f.active.isEmpty)
        #expect(f.due(now: 1200) == nil, "nothing fires: nothing to re-post")
    }

    @Test func failuresKeepTheLatestStateAndBackOff() throws {
        var f = AlertForwarder(instance: "d1", resendInterval: 1000, maxBackoff: 8)
        f.alert(alert("classifier_silent", "firing", severity: "warning", ts: 10, classifier: "rf"), now: 10)
        var times: [Double] = []
        var now = 10.0
        while times.count < 6 {
            if f.due(now: now) != nil {
                times.append(now)
                f.failed(now: now)
            }
            now += 0.5
        }
        // 1, 2, 4, 8, 8 seconds apart.
        #expect(zip(times, times.dropFirst()).map { $1 - $0 } == [1, 2, 4, 8, 8])
        // It resolved meanwhile: only the latest state is posted.
        f.alert(alert("classifier_silent", "resolved", severity: "warning", ts: now, classifier: "rf"), now: now)
        let batch = try #require(f.due(now: now + 8) as [AlertForwarder.Postable]?)
        #expect(batch.count == 1 && batch[0].labels["classifier"] == "rf" && batch[0].endsAt == AlertForwarder.rfc3339(now))
        f.delivered()
        #expect(f.failuresInARow == 0 && f.waiting == 0)
    }

    @Test func healthMessagesReconcileWhatWasMissed() throws {
        var f = AlertForwarder(instance: "d1", resendInterval: 60)
        // Started after the alert fired: the health message says what fires.
        f.health(health(firing: ["score_collapse", "classifier_silent:b"], ts: 500), now: 500)
        let added = try #require(f.due(now: 500) as [AlertForwarder.Postable]?)
        #expect(added.map { $0.labels["alertname"]! } == ["classifier_silent", "score_collapse"])
        #expect(added[0].labels["classifier"] == "b" && added[0].labels["severity"] == "warning")
        #expect(added[1].labels["severity"] == "critical")
        f.delivered()
        // A later health without them: both resolved (their resolved alerts were lost).
        f.health(health(firing: [], ts: 520), now: 520)
        let resolved = try #require(f.due(now: 520) as [AlertForwarder.Postable]?)
        #expect(resolved.count == 2 && resolved.allSatisfy { $0.endsAt == AlertForwarder.rfc3339(520) })
        f.delivered()
        #expect(f.active.isEmpty)
    }
}
