import Foundation
import Testing
import Transport

/// Rollback and the last-healthy fallback when classifiers join after the healthy model
/// was kept: the model always covers every registered classifier, indices never move,
/// and nothing pending is lost, before or after a restart.
@Suite(.serialized) struct RollbackTests {
    /// Probabilities of classifiers `names` for instance i, leaning toward its label.
    private func preds(_ i: Int, _ names: [String]) -> [String: Double] {
        var out: [String: Double] = [:]
        for (u, name) in names.enumerated() {
            let noise = Double((i * 7919 + u * 104_729) % 1000) / 1000 - 0.5
            out[name] = 1 / (1 + exp(-((i % 2 == 1 ? 1.5 : -1.5) + 2 * noise)))
        }
        return out
    }

    private func label(_ i: Int) -> String { #"{"id":"r\#(i)","label":\#(i % 2)}"# }

    @Test func rollbackKeepsClassifiersRegisteredSinceAndLosesNothing() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=16"])
        let push = try d.producer()
        for i in 0..<200 {
            try push.send(strings: ["pred", predBody("r\(i)", preds(i, ["a", "b", "c"]))])
            try push.send(strings: ["label", label(i)])
        }
        try d.waitForStatus("labelled", atLeast: 200)
        let healthy = try d.waitForStatus { $0["model_version"] as? Int == 12 }
        #expect(healthy["status"] as? String == "healthy")

        // d joins; its 20 instances are pending when the model rolls back to 3 classifiers.
        for i in 200..<220 { try push.send(strings: ["pred", predBody("r\(i)", preds(i, ["a", "b", "c", "d"]))]) }
        try d.waitForStatus("pending", atLeast: 20)
        let rollback = try d.controlRequest(["cmd": "rollback"])
        #expect(rollback["ok"] as? Bool == true, "\(rollback)")
        #expect(rollback["model_version"] as? Int == 13)
        var st = try d.status()
        #expect((st["weights"] as? [String: Double])?.keys.sorted() == ["a", "b", "c", "d"], "\(st)")
        #expect((st["config"] as? [String: Any])?["classifiers"] as? [String] == ["a", "b", "c", "d"])

        // Their labels: learnt with d's values (the restored model crashed here when it
        // did not know d).
        for i in 200..<220 { try push.send(strings: ["label", label(i)]) }
        st = try d.waitForStatus { $0["labelled"] as? Int == 220 && $0["pending"] as? Int == 0 }
        #expect(d.isRunning, "\(d.log.suffix(2000))")
        #expect((st["model_version"] as? Int ?? 0) >= 14)

        // A classifier registered after the rollback takes a new index, not d's.
        for i in 220..<240 { try push.send(strings: ["pred", predBody("r\(i)", preds(i, ["a", "b", "c", "e"]))]) }
        try d.waitForStatus("pending", atLeast: 20)
        for i in 220..<240 { try push.send(strings: ["label", label(i)]) }
        st = try d.waitForStatus { $0["labelled"] as? Int == 240 && $0["pending"] as? Int == 0 }
        #expect((st["config"] as? [String: Any])?["classifiers"] as? [String] == ["a", "b", "c", "d", "e"])
        #expect((st["accounting"] as? [String: Any])?["balanced"] as? Bool == true)

        // 10 more pending across the restart.
        for i in 240..<250 { try push.send(strings: ["pred", predBody("r\(i)", preds(i, ["a", "b", "c", "d", "e"]))]) }
        try d.waitForStatus("pending", atLeast: 10)
        let before = try d.status()
        #expect(try d.stop() == 0)
        try d.start(["--set", "learning.batch_size=16"])
        let after = try d.status()
        #expect(after["pending"] as? Int == 10)
        #expect(after["model_version"] as? Int == before["model_version"] as? Int)
        #expect(after["weights"] as? [String: Double] == before["weights"] as? [String: Double])
        #expect((after["config"] as? [String: Any])?["classifiers"] as? [String] == ["a", "b", "c", "d", "e"])
        let p2 = try d.producer()
        for i in 240..<250 { try p2.send(strings: ["label", label(i)]) }
        st = try d.waitForStatus { $0["labelled"] as? Int == 250 && $0["pending"] as? Int == 0 }
        #expect(st["unmatched_labels"] as? Int == 0, "\(st)")
        #expect(try d.stop() == 0)
    }

    /// `health.fallback: last_healthy` scores with the model kept at the last healthy
    /// update; a classifier that first reports while it is in use must not crash it.
    @Test func lastHealthyFallbackScoresClassifiersItHasNeverSeen() throws {
        let d = try DaemonProcess()
        let args = ["--set", "learning.batch_size=32", "--set", "health.interval_s=0.2", "--set", "health.fallback=last_healthy",
                    "--set", "health.window=200"]
        try d.start(args)
        let sub = try d.subscriber(["score", "alert"])
        let push = try d.producer()
        try d.waitForSubscription(sub, via: push)
        let names = ["m0", "m1", "m2", "m3"]
        var k = 0
        // m0 is far more informative than the others, so the healthy model ranks like it
        // and not like the average.
        func lean(_ i: Int) -> [String: Double] {
            var p = preds(i, names)
            let noise = Double((i * 7919) % 1000) / 1000 - 0.5
            p["m0"] = 1 / (1 + exp(-((i % 2 == 1 ? 3.0 : -3.0) + noise)))
            return p
        }
        func send(_ count: Int, flip: Bool) throws {
            for _ in 0..<count {
                try push.send(strings: ["pred", predBody("f\(k)", lean(k))])
                try push.send(strings: ["label", #"{"id":"f\#(k)","label":\#(flip ? 1 - k % 2 : k % 2)}"#])
                k += 1
            }
        }
        try send(1000, flip: false)
        // Contradicting labels until the collapse fires and the fallback takes over.
        var critical: [String: Any] = [:]
        for _ in 0..<20 {
            try send(500, flip: true)
            critical = try d.status()
            if critical["fallback_active"] as? Bool == true { break }
        }
        critical = try d.waitForStatus(timeout: 30) { $0["fallback_active"] as? Bool == true }
        #expect(critical["status"] as? String == "critical")

        // pr_auc measures the live model, not what is published: over a window scored
        // entirely under the fallback, the published scores (the last healthy model's)
        // rank differently from the live, collapsed model's.
        var published: [String: Double] = [:], truth: [String: Int] = [:]
        let first = k
        try send(300, flip: true)
        for i in first..<k { truth["f\(i)"] = 1 - i % 2 }
        let got = try DaemonProcess.collect(sub, timeout: 20) { out in out.filter { $0.0 == "score" && truth[$0.1["id"] as? String ?? ""] != nil }.count >= 300 }
        for (topic, body) in got where topic == "score" {
            if let id = body["id"] as? String, truth[id] != nil, body["fallback"] as? Bool == true { published[id] = body["score"] as? Double }
        }
        try d.waitForStatus { ($0["labelled"] as? Int ?? 0) >= k }
        Thread.sleep(forTimeInterval: 0.6)   // the PR-AUC pair is refreshed at most every 0.5 s
        let window = try d.status()
        #expect(window["fallback_active"] as? Bool == true)
        let live = try #require(window["pr_auc"] as? Double)
        let ids = truth.keys.sorted()
        #expect(published.count >= 200, "\(published.count) fallback scores collected")
        let ap = averagePrecision(ids.compactMap { id in published[id].map { ($0, truth[id]!) } })
        #expect(abs(live - ap) > 1e-3, "status pr_auc \(live) equals the published scores' \(ap)")

        // "new" has never reported: the fallback model learns of it and scores it.
        try push.send(strings: ["pred", predBody("newcomer", ["m0": 0.9, "m1": 0.8, "new": 0.7])])
        let seen = try DaemonProcess.collect(sub, timeout: 10) { $0.contains { $0.1["id"] as? String == "newcomer" } }
        let score = try #require(seen.first { $0.1["id"] as? String == "newcomer" }?.1, "\(d.log.suffix(3000))")
        #expect(score["fallback"] as? Bool == true)
        #expect((score["score"] as? Double).map { $0 > 0 && $0 < 1 } == true, "\(score)")
        let labelled = try d.status()["labelled"] as? Int ?? 0
        try push.send(strings: ["label", #"{"id":"newcomer","label":1}"#])
        let st = try d.waitForStatus { $0["labelled"] as? Int == labelled + 1 }
        #expect(d.isRunning)
        // "probe": the classifier of the subscription probes.
        let all = ["probe"] + names + ["new"]
        #expect((st["config"] as? [String: Any])?["classifiers"] as? [String] == all)

        let before = try d.status()
        #expect(try d.stop() == 0)
        try d.start(args)
        let after = try d.status()
        // The stop learns the partial mini-batch: one version more at most.
        #expect((after["model_version"] as? Int ?? 0) - (before["model_version"] as? Int ?? 0) <= 1)
        #expect(after["labelled"] as? Int == before["labelled"] as? Int)
        #expect((after["config"] as? [String: Any])?["classifiers"] as? [String] == all)
        #expect(after["pending"] as? Int == before["pending"] as? Int)
        #expect(try d.stop() == 0)
    }

    private func learn(_ push: ZMQSocket, _ range: Range<Int>) throws {
        for i in range {
            try push.send(strings: ["pred", predBody("r\(i)", preds(i, ["a", "b", "c"]))])
            try push.send(strings: ["label", label(i)])
        }
    }

    /// A rollback is durable once answered: a crash after it (and after more learning)
    /// restores the rolled-back lineage, not the model it replaced.
    @Test func aCrashAfterARollbackRestoresTheRolledBackModel() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=16"])
        let push = try d.producer()
        try learn(push, 0..<200)
        try d.waitForStatus { $0["model_version"] as? Int == 12 }
        let rollback = try d.controlRequest(["cmd": "rollback"])
        #expect(rollback["ok"] as? Bool == true, "\(rollback)")
        try learn(push, 200..<232)
        let before = try d.waitForStatus { $0["model_version"] as? Int == 15 && $0["labelled"] as? Int == 232 }
        Thread.sleep(forTimeInterval: 0.2)     // the journal's 10 ms flush
        d.kill9()
        try d.start(["--set", "learning.batch_size=16"])
        let after = try d.status()
        #expect(after["model_version"] as? Int == 15)
        #expect(after["weights"] as? [String: Double] == before["weights"] as? [String: Double])
        #expect(after["bias"] as? Double == before["bias"] as? Double)
        #expect(after["labelled"] as? Int == 232)
        #expect(try d.stop() == 0)
    }

    /// When the rollback's checkpoint cannot be written the rollback is refused and the
    /// model is left as it was, so what was answered is what a crash restores.
    @Test func aRollbackWhoseCheckpointFailsIsRefused() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=16", "--set", "state.checkpoint_interval_s=0"])
        let push = try d.producer()
        try learn(push, 0..<200)
        let before = try d.waitForStatus { $0["model_version"] as? Int == 12 }
        // A directory where the checkpoint's temporary file goes: every write fails.
        let blocker = d.stateDir + "/checkpoint.cfe.tmp"
        try FileManager.default.createDirectory(atPath: blocker, withIntermediateDirectories: false)
        let rollback = try d.controlRequest(["cmd": "rollback"])
        #expect(rollback["ok"] as? Bool == false, "\(rollback)")
        #expect((rollback["error"] as? String)?.contains("checkpoint") == true, "\(rollback)")
        let now = try d.status()
        #expect(now["model_version"] as? Int == 12)
        #expect(now["weights"] as? [String: Double] == before["weights"] as? [String: Double])
        #expect(((now["persistence"] as? [String: Any])?["checkpoints_failed"] as? Int ?? 0) >= 1)
        Thread.sleep(forTimeInterval: 0.2)
        d.kill9()
        try FileManager.default.removeItem(atPath: blocker)
        try d.start(["--set", "learning.batch_size=16"])
        let after = try d.status()
        #expect(after["model_version"] as? Int == 12)
        #expect(after["weights"] as? [String: Double] == before["weights"] as? [String: Double])
        #expect(try d.stop() == 0)
    }

    /// "Healthy" means no critical condition: an update while only a warning fires
    /// (here classifier_silent) is kept as the last healthy model.
    @Test func anUpdateUnderAWarningIsTheLastHealthyModel() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=16", "--set", "health.interval_s=0.2", "--set", "health.silent_after_s=1"])
        let push = try d.producer()
        try learn(push, 0..<160)
        try d.waitForStatus { $0["model_version"] as? Int == 10 }
        // c stops reporting: classifier_silent (a warning) fires.
        try d.waitForStatus(timeout: 10) { ($0["alerts_firing"] as? [String] ?? []).contains("classifier_silent:c") }
        for i in 160..<192 {
            try push.send(strings: ["pred", predBody("r\(i)", preds(i, ["a", "b"]))])
            try push.send(strings: ["label", label(i)])
        }
        let warned = try d.waitForStatus { $0["model_version"] as? Int == 12 }
        #expect(warned["status"] as? String == "warning")
        let rollback = try d.controlRequest(["cmd": "rollback"])
        #expect(rollback["ok"] as? Bool == true && rollback["model_version"] as? Int == 13, "\(rollback)")
        let after = try d.status()
        #expect(after["weights"] as? [String: Double] == warned["weights"] as? [String: Double])
        #expect(after["bias"] as? Double == warned["bias"] as? Double)
        #expect(try d.stop() == 0)
    }
}

/// Average precision as scikit-learn computes it (ties form one threshold).
func averagePrecision(_ scored: [(Double, Int)]) -> Double {
    let ranked = scored.sorted { $0.0 > $1.0 }
    let positives = ranked.reduce(0) { $0 + $1.1 }
    guard positives > 0 else { return 0 }
    var sum = 0.0, lastRecall = 0.0, tp = 0, k = 0
    while k < ranked.count {
        var j = k
        while j < ranked.count && ranked[j].0 == ranked[k].0 { tp += ranked[j].1; j += 1 }
        let recall = Double(tp) / Double(positives)
        sum += (recall - lastRecall) * Double(tp) / Double(j)
        lastRecall = recall
        k = j
    }
    return sum
}
