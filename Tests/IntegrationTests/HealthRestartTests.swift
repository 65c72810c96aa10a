import Foundation
import Testing
import Transport

/// Health across a restart, through the real binary: with classifier_silent and
/// label_outage firing, a clean restart (SIGTERM, start) and a crash (kill -9, start)
/// publish no alert event (nothing resolved, nothing fired again), `status` and the
/// metrics still show both, the restored checkpoint's time is known, and a classifier
/// that was going silent before the stop fires later on its own clock (the time the
/// daemon was down does not count).
@Suite struct HealthRestartTests {
    enum Stop: String, CaseIterable { case sigterm, kill9 }

    private func pred(_ push: ZMQSocket, _ id: String, _ names: [String], label: Int? = nil, k: Int) throws {
        var preds: [String: Double] = [:]
        for (j, n) in names.enumerated() { preds[n] = Double((k * 7 + j * 3) % 10) / 10 + 0.05 }
        try push.send(strings: ["pred", predBody(id, preds, label: label)])
    }

    @Test(.timeLimit(.minutes(3)), arguments: Stop.allCases)
    func firingConditionsSurviveARestart(stop: Stop) throws {
        let d = try DaemonProcess()
        let args = ["--set", "learning.batch_size=8", "--set", "health.interval_s=0.2", "--set", "health.silent_after_s=4",
                    "--set", "health.fire_after=2", "--set", "health.resolve_after=3", "--set", "health.min_firing_s=1",
                    "--set", "health.outage_expected_positives=3"]
        try d.start(args)
        let push = try d.producer()
        // a, b, c and nn report, labelled at a 50% positive rate.
        for i in 0..<64 { try pred(push, "t\(i)", ["a", "b", "c", "nn"], label: i % 2, k: i) }
        // nn stops; a run of negatives.
        for i in 0..<12 { try pred(push, "n\(i)", ["a", "b", "c"], label: 0, k: i) }
        var k = 0
        _ = try d.waitForStatus(timeout: 60) { st in
            k += 1
            try? self.pred(push, "x\(k)", ["a", "b", "c"], k: k)
            let firing = st["alerts_firing"] as? [String] ?? []
            return firing.contains("classifier_silent:nn") && firing.contains("label_outage")
        }
        // c stops too; a and b keep reporting for 1.5 s (c is 1.5 s into its 4 s).
        let cLast = Date()
        let until = cLast.addingTimeInterval(1.5)
        while Date() < until {
            k += 1
            try pred(push, "y\(k)", ["a", "b"], k: k)
            Thread.sleep(forTimeInterval: 0.05)
        }
        let before = try d.status()
        let firingBefore = Set(before["alerts_firing"] as? [String] ?? [])
        #expect(firingBefore == ["classifier_silent:nn", "label_outage"], "\(firingBefore)")
        let since = (before["firing"] as? [[String: Any]] ?? []).map { "\($0["alert"]!) \($0["since"]!)" }.sorted()

        switch stop {
        case .sigterm: #expect(try d.stop() == 0)
        case .kill9: d.kill9()
        }
        // Down for longer than the silence limit: counted, it would fire c at once.
        Thread.sleep(forTimeInterval: 5)
        let downtime = 5.0
        try d.start(args)
        let sub = try d.subscriber(["alert", "score"])
        let push2 = try d.producer()
        // The subscription is live once a score comes back (a and b only: a probe
        // classifier would go silent and fire too).
        var live = false
        for _ in 0..<100 where !live {
            k += 1
            try pred(push2, "probe\(k)", ["a", "b"], k: k)
            live = try DaemonProcess.collect(sub, timeout: 0.2) { $0.contains { $0.0 == "score" } }.contains { $0.0 == "score" }
        }
        #expect(live)
        let after = try d.status()
        #expect(Set(after["alerts_firing"] as? [String] ?? []) == firingBefore, "\(after)")
        #expect((after["firing"] as? [[String: Any]] ?? []).map { "\($0["alert"]!) \($0["since"]!)" }.sorted() == since)
        #expect(after["status"] as? String == "warning")
        if stop == .sigterm {
            let last = try #require((after["persistence"] as? [String: Any])?["last_checkpoint"] as? [String: Any], "\(after)")
            #expect(last["restored"] as? Bool == true)
            #expect(abs((last["at"] as? Double ?? 0) - Date().timeIntervalSince1970) < 120)
            let metrics = String(decoding: httpGet(try #require(d.metricsURL)).body, as: UTF8.self)
            #expect(metrics.contains("cfensembled_classifier_silent{classifier=\"nn\"} 1"), "\(metrics)")
            #expect(!metrics.contains("cfensembled_last_checkpoint_timestamp_seconds 0\n"), "\(metrics)")
        }

        // a and b (not c, not nn) report until c fires.
        var events: [(String, [String: Any])] = []
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && !events.contains(where: { $0.0 == "alert" && $0.1["classifier"] as? String == "c" }) {
            k += 1
            try pred(push2, "z\(k)", ["a", "b"], k: k)
            events += try DaemonProcess.collect(sub, timeout: 0.05) { _ in false }
        }
        let alerts = events.filter { $0.0 == "alert" }.map(\.1)
        let c = try #require(alerts.first { $0["classifier"] as? String == "c" }, "c never fired: \(d.log)")
        #expect(c["state"] as? String == "firing")
        // c's silence as the daemon measured it leaves out the time it was down.
        let silent = (c["metrics"] as? [String: Double])?["silent_s"] ?? .infinity
        #expect(silent <= Date().timeIntervalSince(cLast) - downtime + 0.5, "silent_s \(silent) counts the downtime")
        #expect(alerts.count == 1, "the restart resolved or fired something: \(alerts)")
        #expect(try d.stop() == 0)
    }
}
