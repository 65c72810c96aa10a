import Foundation
import Testing
import Transport
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
        // Started after the alert fired: the health message says what fires (and, for a
        // critical condition, whether fallback scores are published: the alert's action).
        var first = health(firing: ["score_collapse", "classifier_silent:b"], ts: 500)
        first.fallback_active = true
        f.health(first, now: 500)
        #expect(f.health(health(firing: ["score_collapse", "classifier_silent:b"], ts: 501), now: 501).isEmpty, "logged twice")
        let added = try #require(f.due(now: 501) as [AlertForwarder.Postable]?)
        #expect(added.map { $0.labels["alertname"]! } == ["classifier_silent", "score_collapse"])
        #expect(added[0].labels["classifier"] == "b" && added[0].labels["severity"] == "warning")
        #expect(added[1].labels["severity"] == "critical")
        #expect(added[1].annotations["action"] == "fallback" && added[1].annotations["fallback"] != nil)
        #expect(added[0].annotations["action"] == "none" && added[0].annotations["fallback"] == nil)
        f.delivered()
        // A later health without them: both resolved (their resolved alerts were lost).
        let lines = f.health(health(firing: [], ts: 520), now: 520)
        #expect(lines == ["resolved classifier_silent (b) (from the daemon's health message: its alert event was missed)",
                          "resolved score_collapse (from the daemon's health message: its alert event was missed)"].sorted() || lines.sorted() == ["resolved classifier_silent (b) (from the daemon's health message: its alert event was missed)",
                          "resolved score_collapse (from the daemon's health message: its alert event was missed)"], "\(lines)")
        let resolved = try #require(f.due(now: 520) as [AlertForwarder.Postable]?)
        #expect(resolved.count == 2 && resolved.allSatisfy { $0.endsAt == AlertForwarder.rfc3339(520) })
        f.delivered()
        #expect(f.active.isEmpty)
    }

    /// A health message with malformed entries (empty, no condition, no classifier after
    /// the colon) is read without crashing; each is logged once and nothing is posted.
    @Test func malformedHealthEntriesAreIgnored() throws {
        var f = AlertForwarder(instance: "d1", resendInterval: 60)
        let lines = f.health(health(firing: ["", ":", ":nn", "classifier_silent:", "label_outage"], ts: 10), now: 10)
        #expect(lines.filter { $0.hasPrefix("ignored a malformed") }.count == 4, "\(lines)")
        #expect(f.active.map(\.condition) == ["label_outage"])
        #expect(f.health(health(firing: ["", "label_outage"], ts: 11), now: 11).isEmpty, "logged once")
    }

    /// The daemon's `firing` details give the reconciled alert its start and reason.
    @Test func reconciliationUsesTheDaemonsSinceAndReason() throws {
        var f = AlertForwarder(instance: "d1", resendInterval: 60)
        var h = health(firing: ["label_outage"], ts: 900)
        h.firing = [FiringAlert(alert: "label_outage", classifier: nil, severity: "warning", since: 700, reason: "40 labels in a row")]
        let lines = f.health(h, now: 900)
        #expect(lines == ["firing label_outage [warning] (from the daemon's health message: its alert event was missed)"])
        let posted = try #require(f.due(now: 900) as [AlertForwarder.Postable]?)
        #expect(posted[0].startsAt == AlertForwarder.rfc3339(700) && posted[0].annotations["summary"] == "40 labels in a row")
    }

    /// With a hold-down a condition that resolves sooner is never posted (as Prometheus's
    /// `for:` filters it); one that lasts is posted once the hold-down is over.
    @Test func aHoldDownFiltersTransientConditions() throws {
        var f = AlertForwarder(instance: "d1", resendInterval: 60, holdDown: 300)
        f.alert(alert("quality_regression", "firing", severity: "warning", ts: 1000), now: 1000)
        #expect(f.due(now: 1000) == nil && f.due(now: 1200) == nil)
        let lines = f.alert(alert("quality_regression", "resolved", severity: "warning", ts: 1250), now: 1250)
        #expect(lines == ["quality_regression resolved within the 300 s hold-down: not posted"])
        #expect(f.due(now: 1250) == nil && f.due(now: 2000) == nil && f.active.isEmpty)

        f.alert(alert("weight_collapse", "firing", ts: 3000), now: 3000)
        #expect(f.due(now: 3299) == nil)
        let posted = try #require(f.due(now: 3300) as [AlertForwarder.Postable]?)
        #expect(posted.count == 1 && posted[0].startsAt == AlertForwarder.rfc3339(3000))
        f.delivered()
        f.alert(alert("weight_collapse", "resolved", ts: 3400), now: 3400)
        let resolved = try #require(f.due(now: 3400) as [AlertForwarder.Postable]?)
        #expect(resolved[0].endsAt == AlertForwarder.rfc3339(3400))
    }
}

/// `cfe alertmanager` against a publisher of malformed health messages (an empty and a
/// nameless `alerts_firing` entry): it keeps running, logs each once, and exits 0 at its
/// timeout. It used to crash (index out of range).
@Suite struct AlertmanagerCommandTests {
    @Test(.timeLimit(.minutes(1)))
    func malformedHealthMessagesDoNotCrashTheForwarder() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfe-am-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let context = try ZMQContext()
        let pub = try ZMQSocket(context: context, kind: .pub)
        try pub.bind("ipc://\(dir)/out")
        let p = Process()
        p.executableURL = WatchTests.cfe
        // Nothing listens on port 1: posts fail and are retried, which is fine here.
        p.arguments = ["alertmanager", "--url", "http://127.0.0.1:1", "ipc://\(dir)/out", "--timeout", "4"]
        let pipe = Pipe()
        p.standardError = pipe
        p.standardOutput = pipe
        try p.run()
        var h = HealthBody()
        h.alerts_firing = ["", ":nn", "label_outage"]
        let body = WireJSON.encode(h)
        let end = Date().addingTimeInterval(3)
        while Date() < end {
            try pub.send(frames: [Array("health".utf8), body])
            Thread.sleep(forTimeInterval: 0.1)
        }
        p.waitUntilExit()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationReason == .exit && p.terminationStatus == 0, "\(out)")
        #expect(out.components(separatedBy: "ignored a malformed alerts_firing entry").count - 1 == 2, "\(out)")
        #expect(out.contains("firing label_outage"), "\(out)")
    }
}
