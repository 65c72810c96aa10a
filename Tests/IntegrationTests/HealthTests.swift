import Foundation
import Testing
import Transport

/// Weight health end to end: alerts, fallback scores and rollback through the real daemon.
@Suite(.serialized) struct HealthTests {
    /// Honest stream with 50% positives: instance i's classifiers lean toward its label.
    private func preds(_ i: Int, truth: Int) -> [String: Double] {
        var out: [String: Double] = [:]
        for u in 0..<6 {
            let noise = Double((i * 7919 + u * 104_729) % 1000) / 1000 - 0.5
            out["m\(u)"] = 1 / (1 + exp(-((truth == 1 ? 1.5 : -1.5) + 2 * noise)))
        }
        return out
    }

    private func send(_ push: ZMQSocket, from: Int, count: Int, flip: Bool) throws {
        for i in from..<(from + count) {
            let truth = i % 2
            try push.send(strings: ["pred", predBody("h\(i)", preds(i, truth: truth))])
            try push.send(strings: ["label", #"{"id":"h\#(i)","label":\#(flip ? 1 - truth : truth)}"#])
        }
    }

    /// With `learning.nonnegative_weights` the weights cannot go below zero; they collapse
    /// to it, and the falling sum fires the same alert.
    @Test(arguments: [false, true])
    func invertedLabelsCollapseTheWeightsFireAnAlertAndFallBack(nonnegative: Bool) throws {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=32", "--set", "health.interval_s=0.2",
                     "--set", "learning.nonnegative_weights=\(nonnegative)"])
        let sub = try d.subscriber(["alert", "score"])
        let push = try d.producer()
        try d.waitForSubscription(sub, via: push)

        try send(push, from: 0, count: 1500, flip: false)
        let healthy = try d.status()
        #expect(healthy["status"] as? String == "healthy")

        // Labels that contradict the classifiers drive every weight down and below zero.
        try send(push, from: 1500, count: 6000, flip: true)
        var seen = try DaemonProcess.collect(sub, timeout: 60) { out in
            out.contains { $0.0 == "alert" && $0.1["alert"] as? String == "weight_collapse" && $0.1["state"] as? String == "firing" }
        }
        let firing = try #require(seen.first { $0.0 == "alert" && $0.1["alert"] as? String == "weight_collapse" }?.1)
        #expect(firing["severity"] as? String == "critical")
        #expect(firing["action"] as? String == "fallback")
        #expect((firing["reason"] as? String)?.contains("weights <= 0") == true)
        #expect((firing["metrics"] as? [String: Double])?["weight_sum"] != nil)
        if nonnegative {
            #expect((firing["reason"] as? String)?.contains("is below 0.25 of its healthy level") == true, "\(firing)")
        }
        // The alert can fire on the falling sum before most weights reach zero.
        let collapsed = try d.waitForStatus(timeout: 30) { st in
            let w = st["weights"] as? [String: Double] ?? [:]
            return w.values.filter { $0 <= 0 }.count * 2 > w.count
        }
        #expect(collapsed["status"] as? String == "critical")
        #expect(collapsed["fallback_active"] as? Bool == true)
        let weights = try #require(collapsed["weights"] as? [String: Double])
        if nonnegative { #expect(weights.values.allSatisfy { $0 >= 0 }, "\(weights)") }

        // While it fires, scores come from the fallback and say so.
        try push.send(strings: ["pred", predBody("during", ["m0": 0.9, "m1": 0.7])])
        seen = try DaemonProcess.collect(sub, timeout: 60) { $0.contains { $0.1["id"] as? String == "during" } }
        let during = try #require(seen.first { $0.1["id"] as? String == "during" }?.1)
        #expect(during["fallback"] as? Bool == true)
        // Entries are stored as 32-bit floats, hence 1e-6.
        #expect(abs((during["score"] as? Double ?? 0) - 0.8) < 1e-6, "the average fallback is the mean of 0.9 and 0.7")

        // rollback restores the last healthy model under a new version.
        let before = collapsed["model_version"] as? Int ?? 0
        let rollback = try d.controlRequest(["cmd": "rollback"])
        #expect(rollback["ok"] as? Bool == true)
        #expect((rollback["model_version"] as? Int ?? 0) > before)
        let restored = try #require(try d.status()["weights"] as? [String: Double])
        #expect(restored.values.filter { $0 > 0 }.count == restored.count, "rollback did not restore healthy weights: \(restored)")

        // Honest labels again: the condition clears and live scores return. With projected
        // weights the collapse also made the live scores constant (every weight at zero),
        // so score_collapse fired too; it clears once honest scores fill its window.
        try send(push, from: 7500, count: 3000, flip: false)
        seen = try DaemonProcess.collect(sub, timeout: 60) { out in
            out.contains { $0.0 == "alert" && $0.1["alert"] as? String == "weight_collapse" && $0.1["state"] as? String == "resolved" }
        }
        #expect(seen.contains { $0.0 == "alert" && $0.1["state"] as? String == "resolved" })
        try d.waitForStatus("scored", atLeast: 10_501)
        let recovered = try d.waitForStatus(timeout: 30) { $0["status"] as? String != "critical" }
        #expect(recovered["fallback_active"] as? Bool == false, "\(recovered)")
        try push.send(strings: ["pred", predBody("after", ["m0": 0.9, "m1": 0.7])])
        seen = try DaemonProcess.collect(sub, timeout: 60) { $0.contains { $0.1["id"] as? String == "after" } }
        #expect(seen.first { $0.1["id"] as? String == "after" }?.1["fallback"] as? Bool == false)
        #expect(try d.stop() == 0)
    }

    @Test func silentClassifierRaisesAnAlertNamingIt() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "health.interval_s=0.2", "--set", "health.silent_after_s=1"])
        let sub = try d.subscriber(["alert"])
        let push = try d.producer()
        try push.send(strings: ["pred", predBody("s0", ["a": 0.2, "b": 0.4, "c": 0.6])])
        let deadline = Date().addingTimeInterval(15)
        var alerts: [(String, [String: Any])] = []
        var k = 1
        while Date() < deadline && !alerts.contains(where: { $0.1["alert"] as? String == "classifier_silent" }) {
            try push.send(strings: ["pred", predBody("s\(k)", ["a": 0.2, "b": 0.4])])
            k += 1
            alerts += try DaemonProcess.collect(sub, timeout: 0.2) { _ in false }
        }
        let silent = try #require(alerts.first { $0.1["alert"] as? String == "classifier_silent" }?.1)
        #expect(silent["classifier"] as? String == "c")
        #expect(silent["severity"] as? String == "warning")
        #expect(!alerts.contains { ($0.1["classifier"] as? String) == "a" })
        #expect(try d.stop() == 0)
    }

    /// A label-pipeline outage: positives stop arriving, only negatives reach the learner.
    /// label_outage fires (warning), the weights do not collapse (the replay buffer keeps
    /// recent positives), and the alert resolves once positives return.
    @Test func labelOutageWarnsWithoutCollapseAndResolves() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=32", "--set", "health.interval_s=0.2"])
        let sub = try d.subscriber(["alert"])
        let push = try d.producer()
        func send(_ range: Range<Int>, withholdPositives: Bool) throws {
            for i in range {
                let truth = i % 10 == 0 ? 1 : 0
                try push.send(strings: ["pred", predBody("o\(i)", preds(i, truth: truth))])
                if !(withholdPositives && truth == 1) {
                    try push.send(strings: ["label", #"{"id":"o\#(i)","label":\#(truth)}"#])
                }
            }
        }
        try send(0..<2000, withholdPositives: false)
        try send(2000..<6000, withholdPositives: true)
        var alerts = try DaemonProcess.collect(sub, timeout: 30) { out in
            out.contains { $0.1["alert"] as? String == "label_outage" && $0.1["state"] as? String == "firing" }
        }
        let outage = try #require(alerts.first { $0.1["alert"] as? String == "label_outage" }?.1)
        #expect(outage["severity"] as? String == "warning")
        #expect((outage["reason"] as? String)?.contains("without a positive") == true)
        let during = try d.status()
        #expect(during["status"] as? String == "warning")
        #expect(!(alerts.contains { $0.1["severity"] as? String == "critical" }), "\(alerts.map(\.1))")
        let weights = try #require(during["weights"] as? [String: Double])
        #expect(weights.values.allSatisfy { $0 > 0 }, "weights moved toward collapse during the outage: \(weights)")

        try send(6000..<7000, withholdPositives: false)
        alerts = try DaemonProcess.collect(sub, timeout: 30) { out in
            out.contains { $0.1["alert"] as? String == "label_outage" && $0.1["state"] as? String == "resolved" }
        }
        #expect(alerts.contains { $0.1["alert"] as? String == "label_outage" && $0.1["state"] as? String == "resolved" })
        #expect(try d.stop() == 0)
    }

    /// SplitMix64 finaliser as a uniform in [0, 1): noise that is independent of the label.
    static func hash(_ k: UInt64) -> Double {
        var z = k &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }

    /// The seed's mechanism, online: ten weakly informative classifiers whose outputs sit
    /// near 0.5, 10% positives. Without class weights and with Adam's per-coordinate
    /// steps (the seed's learner) the gradient asks for a large shift toward the base rate
    /// and the ten weights absorb most of it, together, down to zero and below:
    /// weight_collapse fires and fallback scores flow. With class weights and the default
    /// plain gradient steps the balanced loss needs no such shift: no critical alert.
    @Test(arguments: [false, true])
    func unweightedLearningCollapsesLikeTheSeedAndWeightedDoesNot(classWeights: Bool) throws {
        let d = try DaemonProcess()
        let seed = classWeights ? [] : ["--set", "learning.step_rule=adam", "--set", "learning.lr=0.3"]
        try d.start(["--set", "learning.batch_size=32", "--set", "health.interval_s=0.2",
                     "--set", "learning.class_weights=\(classWeights)"] + seed)
        let sub = try d.subscriber(["alert", "score"])
        let push = try d.producer()
        try d.waitForSubscription(sub, via: push)
        for i in 0..<6000 {
            let truth = i % 10 == 0 ? 1 : 0
            var weak: [String: Double] = [:]
            for u in 0..<10 {
                weak["w\(u)"] = 0.5 + (truth == 1 ? 0.01 : -0.01) + 0.2 * (Self.hash(UInt64(i * 16 + u + 1)) - 0.5)
            }
            try push.send(strings: ["pred", predBody("u\(i)", weak)])
            try push.send(strings: ["label", #"{"id":"u\#(i)","label":\#(truth)}"#])
        }
        try push.send(strings: ["pred", predBody("probe-end", ["w0": 0.9, "w1": 0.7])])
        let seen = try DaemonProcess.collect(sub, timeout: 60) { $0.contains { $0.1["id"] as? String == "probe-end" } }
        let critical = seen.filter { $0.0 == "alert" && $0.1["severity"] as? String == "critical" && $0.1["state"] as? String == "firing" }
        let weights = try #require(try d.status()["weights"] as? [String: Double])
        let learnt = weights.filter { $0.key.hasPrefix("w") }
        if classWeights {
            #expect(critical.isEmpty, "\(critical.map(\.1))")
            #expect(learnt.values.reduce(0, +) > 1, "\(learnt)")
        } else {
            let collapse = try #require(critical.first { $0.1["alert"] as? String == "weight_collapse" }?.1, "no collapse; weights \(learnt)")
            let metrics = try #require(collapse["metrics"] as? [String: Double])
            let sum = metrics["weight_sum"] ?? .infinity, reference = metrics["reference_weight_sum"] ?? 0
            let nonPositive = metrics["negative_weights"] ?? 0
            // The weights went (together) to zero or below: the seed's collapse.
            #expect(sum <= 0.25 * reference || nonPositive * 2 > Double(weights.count), "\(metrics)")
            // While it fired, published scores came from the fallback.
            let after = seen.drop { !($0.0 == "alert" && $0.1["alert"] as? String == "weight_collapse") }
            #expect(after.contains { $0.0 == "score" && $0.1["fallback"] as? Bool == true })
        }
        #expect(try d.stop() == 0)
    }
}
