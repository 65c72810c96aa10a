import Foundation
import Testing
import Transport

/// Scale-out through the real binary: one `--role learner` and three `--role scorer`
/// processes on ipc:// endpoints, a producer PUSHing to all scorers (round-robin) and
/// a consumer SUBscribed to all their outputs.
@Suite(.serialized) struct ClusterTests {
    final class Cluster {
        let learner: DaemonProcess
        var scorers: [DaemonProcess] = []
        let modelEndpoint, snapshotEndpoint, forwardEndpoint: String
        let common = ["--set", "learning.batch_size=50", "--set", "learning.max_batch_delay_s=0.3",
                      "--set", "cluster.heartbeat_interval_s=0.2", "--set", "health.interval_s=0.5",
                      "--set", "cluster.label_wait_s=1"]

        init(scorers n: Int) throws {
            learner = try DaemonProcess()
            let dir = learner.directory.path
            modelEndpoint = "ipc://\(dir)/model.sock"
            snapshotEndpoint = "ipc://\(dir)/snapshot.sock"
            forwardEndpoint = "ipc://\(dir)/forward.sock"
            try startLearner()
            for _ in 0..<n { scorers.append(try DaemonProcess()) }
            for k in 0..<n { try startScorer(k) }
        }

        var clusterArgs: [String] {
            ["--set", "cluster.model_endpoint=\(modelEndpoint)", "--set", "cluster.snapshot_endpoint=\(snapshotEndpoint)",
             "--set", "cluster.forward_endpoint=\(forwardEndpoint)"]
        }

        func startLearner() throws {
            try learner.start(["--role", "learner", "--set", "state.checkpoint_interval_s=0"] + common + clusterArgs)
        }

        func startScorer(_ k: Int) throws {
            try scorers[k].start(["--role", "scorer"] + common + clusterArgs)
        }

        /// A PUSH connected to every scorer's PULL input: preds and labels round-robin.
        func producer() throws -> ZMQSocket {
            let s = try ZMQSocket(context: learner.context, kind: .push)
            try s.setSendTimeout(5000)
            for d in scorers { try s.connect(d.input) }
            return s
        }

        /// Probe preds sent by `consumer()` (each becomes a pending instance on the learner).
        var probes = 0

        /// A SUB on every scorer's output, live (a probe scored by each scorer arrived).
        func consumer() throws -> ZMQSocket {
            let sub = try ZMQSocket(context: learner.context, kind: .sub)
            try sub.subscribe("score")
            for d in scorers { try sub.connect(d.output) }
            for (k, d) in scorers.enumerated() {
                let direct = try d.producer()
                var live = false
                for p in 0..<100 where !live {
                    try direct.send(strings: ["pred", predBody("probe-\(k)-\(p)", tenPreds(p, label: 0))])
                    probes += 1
                    live = try DaemonProcess.collect(sub, timeout: 0.2) { $0.contains { $0.0 == "score" } }.contains { $0.0 == "score" }
                }
                if !live { throw DaemonError("scorer \(k)'s output never became live") }
            }
            return sub
        }

        func version(_ d: DaemonProcess) throws -> Int { try d.status()["model_version"] as? Int ?? -1 }

        func learnerNumber(_ key: String) throws -> Int { try learner.status()[key] as? Int ?? -1 }
    }

    static func send(_ push: ZMQSocket, preds ids: Range<Int>, prefix: String) throws {
        for i in ids { try push.send(strings: ["pred", predBody("\(prefix)\(i)", tenPreds(i, label: i % 5 == 0 ? 1 : 0))]) }
    }

    static func send(_ push: ZMQSocket, labels ids: Range<Int>, prefix: String) throws {
        for i in ids { try push.send(strings: ["label", #"{"id":"\#(prefix)\#(i)","label":\#(i % 5 == 0 ? 1 : 0)}"#]) }
    }

    /// Batches sent to the scorers: each entry is forwarded to the learner as its own
    /// instance, batched labels reach it, and it learns all of them.
    @Test func batchesAcrossTheCluster() throws {
        let c = try Cluster(scorers: 2)
        let sub = try c.consumer()
        let push = try c.producer()
        let n = 640
        for b in 0..<(n / 64) {
            try push.send(strings: ["pred_batch", batchBody((b * 64..<(b + 1) * 64).map {
                predBody("q\($0)", tenPreds($0, label: $0 % 5 == 0 ? 1 : 0)) })])
        }
        var ids: [String] = []
        _ = try DaemonProcess.collect(sub, timeout: 20) { got in
            ids = got.filter { $0.0 == "score_batch" }.flatMap { ($0.1["items"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String } }
            return ids.count >= n
        }
        #expect(Set(ids).count == n && ids.count == n, "scored \(ids.count), distinct \(Set(ids).count)")
        #expect(try waitUntil(10) { try c.learnerNumber("pending") == c.probes + n })
        for b in 0..<(n / 64) {
            try push.send(strings: ["label_batch", batchBody((b * 64..<(b + 1) * 64).map {
                #"{"id":"q\#($0)","label":\#($0 % 5 == 0 ? 1 : 0)}"# })])
        }
        #expect(try waitUntil(15) { try c.learnerNumber("labelled") == n }, "learner labelled: \((try? c.learnerNumber("labelled")) ?? -1)")
        #expect(try c.learnerNumber("unmatched_labels") == 0)
        var forwardedLabels = 0
        for s in c.scorers {
            let accounting = try s.status()["accounting"] as? [String: Any] ?? [:]
            #expect(accounting["balanced"] as? Bool == true && accounting["batches"] as? Int ?? 0 >= 2, "\(accounting)")
            forwardedLabels += accounting["labels_forwarded"] as? Int ?? 0
        }
        #expect(forwardedLabels == n)
        // The scorers passed each batch's instances and labels on as one message each.
        let learner = try #require(try c.learner.status()["accounting"] as? [String: Any])
        #expect(learner["batches"] as? Int == 2 * n / 64, "\(learner)")
        #expect(learner["balanced"] as? Bool == true)
        for s in c.scorers { #expect(try s.stop() == 0) }
        #expect(try c.learner.stop() == 0)
    }

    /// Every pred is scored exactly once across three scorers; labels sent to the scorers
    /// reach the learner with their instance's predictions; all scorers then hold the
    /// learner's model version and weights; a scorer killed with SIGKILL and restarted
    /// gets the current model at once and keeps up.
    /// An idle scorer sleeps: it keeps no state, so no checkpoint or journal timer may
    /// come due and make its loop poll with no timeout (once one did, a scorer spun a
    /// core after `state.checkpoint_interval_s`). CPU time used over 3 s, idle: a spinning
    /// loop uses most of it even on a loaded machine.
    @Test func anIdleScorerDoesNotSpin() throws {
        let d = try DaemonProcess()
        let dir = d.directory.path
        try d.start(["--role", "scorer", "--set", "state.checkpoint_interval_s=1", "--set", "cluster.snapshot_wait_s=0",
                     "--set", "cluster.model_endpoint=ipc://\(dir)/m.sock", "--set", "cluster.snapshot_endpoint=ipc://\(dir)/s.sock",
                     "--set", "cluster.forward_endpoint=ipc://\(dir)/f.sock"])
        Thread.sleep(forTimeInterval: 2)
        let before = try d.cpuSeconds()
        Thread.sleep(forTimeInterval: 3)
        let used = try d.cpuSeconds() - before
        #expect(used < 0.6, "an idle scorer used \(used) s of CPU in 3 s")
    }

    @Test func learnerAndThreeScorers() throws {
        let c = try Cluster(scorers: 3)
        let sub = try c.consumer()
        let push = try c.producer()
        let probes = c.probes

        // Every pred scored exactly once, spread over the three scorers.
        let n = 600
        try Self.send(push, preds: 0..<n, prefix: "a")
        var seen: [String: Int] = [:]
        _ = try DaemonProcess.collect(sub, timeout: 20) { got in
            seen = [:]
            for (_, body) in got { if let id = body["id"] as? String, id.hasPrefix("a") { seen[id, default: 0] += 1 } }
            return seen.count >= n
        }
        // A little longer, to catch duplicates arriving after the last distinct id.
        for (_, body) in try DaemonProcess.collect(sub, timeout: 0.5, until: { _ in false }) {
            if let id = body["id"] as? String, id.hasPrefix("a") { seen[id, default: 0] += 1 }
        }
        #expect(seen.count == n, "distinct ids scored: \(seen.count) of \(n)")
        #expect(seen.values.allSatisfy { $0 == 1 }, "ids scored more than once: \(seen.filter { $0.value > 1 }.count)")
        for (k, s) in c.scorers.enumerated() {
            let scored = try s.status()["scored"] as? Int ?? 0
            #expect(scored > 100, "scorer \(k) scored \(scored) (round-robin should give each about \(n / 3))")
        }

        // The learner holds every instance, wherever it was scored; labels through the scorers reach it.
        #expect(try waitUntil(10) { try c.learnerNumber("pending") == probes + n }, "learner pending: \((try? c.learnerNumber("pending")) ?? -1)")
        try Self.send(push, labels: 0..<n, prefix: "a")
        #expect(try waitUntil(15) { try c.learnerNumber("labelled") == n }, "learner labelled: \((try? c.learnerNumber("labelled")) ?? -1)")
        #expect(try c.learnerNumber("unmatched_labels") == 0)
        let learnt = try c.version(c.learner)
        #expect(learnt >= n / 50, "learner model_version \(learnt)")

        // All scorers reach the learner's version, with its weights, within a bound.
        #expect(try waitUntil(5) { try c.scorers.allSatisfy { try c.version($0) == learnt } },
                "scorer versions \(c.scorers.map { (try? c.version($0)) ?? -1 }) vs learner \(learnt)")
        let weights = try c.learner.status()["weights"] as? [String: Double] ?? [:]
        #expect(weights.count == 10)
        for s in c.scorers {
            let w = try s.status()["weights"] as? [String: Double] ?? [:]
            #expect(w.keys.sorted() == weights.keys.sorted() && w.allSatisfy { abs($0.value - weights[$0.key]!) < 1e-12 })
        }
        // ...and its calibration map, which they publish probabilities with.
        let map = try #require(try c.learner.status()["calibration"] as? [String: Any])
        #expect(map["fitted"] as? Bool == true)
        let slope = try #require(map["slope"] as? Double), intercept = try #require(map["intercept"] as? Double)
        let averageSlope = try #require(map["average_slope"] as? Double)
        let averageIntercept = try #require(map["average_intercept"] as? Double)
        let mixture = try #require(map["weights"] as? [Double])
        #expect(mixture.count == 3 && abs(mixture.reduce(0, +) - 1) < 1e-12, "weights \(mixture)")
        for s in c.scorers {
            let m = try s.status()["calibration"] as? [String: Any] ?? [:]
            #expect(m["slope"] as? Double == slope && m["intercept"] as? Double == intercept
                    && m["average_slope"] as? Double == averageSlope && m["average_intercept"] as? Double == averageIntercept
                    && m["weights"] as? [Double] == mixture, "\(m) vs \(map)")
        }
        // Scores carry the learner's version once the scorers have it.
        try Self.send(push, preds: 0..<30, prefix: "v")
        let after = try DaemonProcess.collect(sub, timeout: 10) { $0.filter { ($0.1["id"] as? String)?.hasPrefix("v") == true }.count >= 30 }
        let mine = after.filter { ($0.1["id"] as? String)?.hasPrefix("v") == true }
        #expect(mine.allSatisfy { $0.1["model_version"] as? Int == learnt })
        // The published forecast, recomputed from the map and the instance's reported values.
        for (_, body) in mine {
            let score = try #require(body["score"] as? Double), probability = try #require(body["probability"] as? Double)
            let i = try #require(Int(String((body["id"] as? String ?? "").dropFirst())))
            // The daemon holds reported values as Float.
            let reported = tenPreds(i, label: i % 5 == 0 ? 1 : 0).values.map { Double(Float($0)) }
            let average = reported.reduce(0, +) / Double(reported.count)
            let ofScore = 1 / (1 + exp(-(slope * log(score / (1 - score)) + intercept)))
            let ofAverage = 1 / (1 + exp(-(averageSlope * log(average / (1 - average)) + averageIntercept)))
            let expected = mixture[0] * ofScore + mixture[1] * ofAverage + mixture[2] * average
            #expect(abs(probability - expected) < 1e-9, "scorer probability \(probability) for score \(score), weights \(mixture)")
        }

        // Scorer 1 killed mid-stream and restarted: it gets the current model at once.
        try Self.send(push, preds: 0..<300, prefix: "b")
        c.scorers[1].kill9()
        try Self.send(push, preds: 300..<400, prefix: "b")
        let before = try c.version(c.learner)
        try c.startScorer(1)
        #expect(try c.version(c.scorers[1]) == before, "restarted scorer should start at the learner's version \(before)")
        let restarted = try c.scorers[1].status()["cluster"] as? [String: Any] ?? [:]
        #expect(restarted["states_applied"] as? Int ?? 0 >= 1)
        // It had the model before it read its first pred.
        let log = c.scorers[1].log
        let received = try #require(log.range(of: "model received from the learner", options: .backwards))
        let running = try #require(log.range(of: "cfensembled running", options: .backwards))
        #expect(received.lowerBound < running.lowerBound)

        // More labels: every scorer, the restarted one included, follows the new versions.
        #expect(try waitUntil(10) { try c.learnerNumber("pending") >= probes + 300 })
        try Self.send(push, labels: 0..<400, prefix: "b")
        #expect(try waitUntil(15) { try c.version(c.learner) > before })
        #expect(try waitUntil(10) {
            let v = try c.version(c.learner)
            return try c.learnerNumber("labelled") >= n + 300 && c.scorers.allSatisfy { try c.version($0) == v }
        }, "versions: learner \((try? c.version(c.learner)) ?? -1), scorers \(c.scorers.map { (try? c.version($0)) ?? -1 })")
        for s in c.scorers {
            let accounting = try s.status()["accounting"] as? [String: Any] ?? [:]
            #expect(accounting["balanced"] as? Bool == true)
        }
        #expect(try c.learner.status()["accounting"].flatMap { ($0 as? [String: Any])?["balanced"] as? Bool } == true)
        for s in c.scorers { #expect(try s.stop() == 0) }
        #expect(try c.learner.stop() == 0)
    }

    /// The learner restarted from its checkpoint continues its versions: after a clean
    /// stop exactly where it was, after SIGKILL past every version it may have published;
    /// the scorers accept the versions that follow.
    @Test func learnerRestartNeverGoesBack() throws {
        let c = try Cluster(scorers: 2)
        let push = try c.producer()
        _ = try c.consumer()
        var next = 0
        func round(_ count: Int) throws {
            try Self.send(push, preds: next..<(next + count), prefix: "r")
            #expect(try waitUntil(10) { try c.learnerNumber("pending") >= count })
            let labelled = try c.learnerNumber("labelled")
            try Self.send(push, labels: next..<(next + count), prefix: "r")
            #expect(try waitUntil(15) { try c.learnerNumber("labelled") >= labelled + count })
            next += count
        }
        try round(200)
        let v1 = try c.version(c.learner)
        #expect(v1 >= 4)
        #expect(try waitUntil(5) { try c.scorers.allSatisfy { try c.version($0) == v1 } })

        // Clean stop: the checkpoint has everything published; the same version comes back.
        #expect(try c.learner.stop() == 0)
        // While the learner is down the scorers go on scoring and queue what they forward.
        try Self.send(push, preds: 0..<100, prefix: "down")
        Thread.sleep(forTimeInterval: 0.3)
        try c.startLearner()
        #expect(try c.version(c.learner) == v1)
        #expect(try waitUntil(10) { try c.learnerNumber("pending") >= c.probes + 100 },
                "forwarded while the learner was down: pending \((try? c.learnerNumber("pending")) ?? -1)")

        // SIGKILL after updates that no checkpoint holds (checkpoints only at stop here).
        try round(200)
        let v2 = try c.version(c.learner)
        #expect(try waitUntil(5) { try c.scorers.allSatisfy { try c.version($0) == v2 } })
        c.learner.kill9()
        try c.startLearner()
        let v3 = try c.version(c.learner)
        #expect(v3 > v2, "after SIGKILL the learner restarted at \(v3), not past the published \(v2)")
        #expect(c.learner.log.contains("continuing model versions after the reserved ones"))

        // The scorers follow the restarted learner's next versions.
        try round(100)
        let v4 = try c.version(c.learner)
        #expect(v4 > v3)
        #expect(try waitUntil(5) { try c.scorers.allSatisfy { try c.version($0) == v4 } },
                "scorers \(c.scorers.map { (try? c.version($0)) ?? -1 }) vs learner \(v4)")
        for s in c.scorers { #expect(try s.stop() == 0) }
        #expect(try c.learner.stop() == 0)
    }

    /// A label that overtakes its instance (here: sent straight to the learner before the
    /// pred reaches a scorer) waits for it and is learnt; one whose instance never comes
    /// is counted unmatched after `cluster.label_wait_s`, and the accounting balances.
    /// A pred padded with 30 KB of unknown fields is forwarded to the learner without the
    /// padding (re-encoded from what the scorer decoded): the learner keeps it pending
    /// with its ts and values, and its label is learnt.
    @Test func paddedPredsAreForwardedWithoutTheirPadding() throws {
        let c = try Cluster(scorers: 1)
        let toScorer = try c.scorers[0].producer()
        let pad = String(repeating: "p", count: 30_000)
        for i in 0..<20 {
            var obj: [String: Any] = ["id": "pad\(i)", "ts": 1_800_000_000.25, "preds": tenPreds(i, label: i % 2), "pad": pad]
            obj["more"] = ["nested": [pad.prefix(100)]]
            let body = String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self)
            try toScorer.send(strings: ["pred", body])
        }
        #expect(try waitUntil(10) { try c.learnerNumber("pending") == 20 }, "learner pending \((try? c.learnerNumber("pending")) ?? -1)")
        #expect(try c.learnerNumber("rejected") == 0)
        for i in 0..<20 { try toScorer.send(strings: ["label", #"{"id":"pad\#(i)","label":\#(i % 2)}"#]) }
        #expect(try waitUntil(10) { try c.learnerNumber("labelled") == 20 })
        #expect(try c.learnerNumber("unmatched_labels") == 0)
        #expect(try c.scorers[0].stop() == 0)
        #expect(try c.learner.stop() == 0)
    }

    /// A peer that floods the snapshot socket with requests and never reads the replies
    /// costs the learner a couple of replies, not one per request: its memory grows by far
    /// less than the replies it was asked for (it used to queue up to 10,000 per peer).
    @Test(.timeLimit(.minutes(2)))
    func aSnapshotFloodCostsTheLearnerNoMemory() throws {
        let c = try Cluster(scorers: 0)
        // Forty classifiers make a model state of several kilobytes.
        let push = try c.learner.producer()
        var preds: [String: Double] = [:]
        for k in 0..<40 { preds["classifier-\(k)"] = Double(k) / 40 }
        for i in 0..<100 { try push.send(strings: ["pred", predBody("h\(i)", preds, label: i % 2)]) }
        #expect(try waitUntil(10) { try c.learnerNumber("labelled") == 100 })
        let stateBytes = try #require((try c.learner.status()["cluster"] as? [String: Any])?["state_bytes"] as? Int)
        func rssKiB() throws -> Int {
            let text = try String(contentsOfFile: "/proc/\(c.learner.process!.processIdentifier)/status", encoding: .utf8)
            let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
        }
        let before = try rssKiB()
        let dealer = try ZMQSocket(context: c.learner.context, kind: .dealer)
        try dealer.setReceiveHighWaterMark(1)
        try dealer.setSendTimeout(5000)
        try dealer.connect(c.snapshotEndpoint)
        let requests = 5000
        for _ in 0..<requests { _ = try dealer.send(frames: [Array("snapshot".utf8)]) }
        #expect(try waitUntil(20) { (try c.learner.status()["cluster"] as? [String: Any])?["snapshots_served"] as? Int ?? 0 >= requests })
        let grown = try rssKiB() - before
        // Queued, the replies asked for would take requests x stateBytes.
        #expect(grown * 1024 < requests * stateBytes / 10, "RSS grew \(grown) KiB for \(requests) replies of \(stateBytes) B")
        dealer.close()
        #expect(try c.learner.stop() == 0)
    }

    @Test func labelBeforeItsInstanceWaitsForIt() throws {
        let c = try Cluster(scorers: 1)
        let toLearner = try c.learner.producer()
        try toLearner.send(strings: ["label", #"{"id":"early-1","label":1}"#])
        try toLearner.send(strings: ["label", #"{"id":"never","label":0}"#])
        #expect(try waitUntil(5) { (try c.learner.status()["accounting"] as? [String: Any])?["labels_waiting"] as? Int == 2 })
        let toScorer = try c.scorers[0].producer()
        try toScorer.send(strings: ["pred", predBody("early-1", tenPreds(1, label: 1))])
        #expect(try waitUntil(5) { try c.learnerNumber("labelled") == 1 })
        #expect(try waitUntil(5) { try c.learnerNumber("unmatched_labels") == 1 })
        let accounting = try c.learner.status()["accounting"] as? [String: Any] ?? [:]
        #expect(accounting["labels_waiting"] as? Int == 0 && accounting["balanced"] as? Bool == true, "\(accounting)")
        #expect(try c.scorers[0].stop() == 0)
        #expect(try c.learner.stop() == 0)
    }

    /// Garbage on the learner's cluster sockets is rejected with a reason and counted; it
    /// changes nothing, and the learner goes on serving valid forwards and snapshots.
    @Test func garbageOnTheLearnersClusterSocketsIsRejected() throws {
        let c = try Cluster(scorers: 0)
        let push = try ZMQSocket(context: c.learner.context, kind: .push)
        try push.setSendTimeout(5000)
        try push.connect(c.forwardEndpoint)
        var trailer = [UInt8](repeating: 0, count: ScoredTrailer.size)
        ScoredTrailer.write(score: 0.7, average: 0.6, arrival: 1.7e9, into: &trailer)
        let body = Array(predBody("g1", tenPreds(1, label: 0)).utf8)
        var outOfRange = trailer
        ScoredTrailer.write(score: 3.0, average: 0.6, arrival: 1.7e9, into: &outOfRange)
        _ = try push.send(frames: [Array("scored".utf8), body, [1, 2, 3, 4, 5]])              // short trailer
        _ = try push.send(frames: [Array("scored".utf8), body, outOfRange])                   // score 3.0
        _ = try push.send(frames: [Array("scored".utf8), Array(#"{"id":"g2","preds":{"#.utf8), trailer])  // bad JSON
        _ = try push.send(frames: [Array("bogus".utf8), Array("x".utf8)])                     // unknown topic
        _ = try push.send(frames: [Array("scored".utf8), body, trailer])                       // valid
        #expect(try waitUntil(5) { try c.learnerNumber("pending") == 1 })
        let status = try c.learner.status()
        let reasons = status["rejected_by_reason"] as? [String: Int] ?? [:]
        #expect(reasons["frames"] == 2 && reasons["json"] == 1 && reasons["topic"] == 1, "\(reasons)")
        #expect((status["accounting"] as? [String: Any])?["balanced"] as? Bool == true)

        // A malformed snapshot request is ignored; a proper one is still answered.
        let dealer = try ZMQSocket(context: c.learner.context, kind: .dealer)
        try dealer.setReceiveTimeout(5000)
        try dealer.connect(c.snapshotEndpoint)
        _ = try dealer.send(frames: [Array("hello".utf8), Array("x".utf8)])
        _ = try dealer.send(frames: [Array("snapshot".utf8)])
        let reply = try #require(try dealer.receiveFrames())
        #expect(reply.count == 2 && String(decoding: reply[0], as: UTF8.self) == "model")
        let state = try JSONSerialization.jsonObject(with: Data(reply[1])) as? [String: Any] ?? [:]
        #expect(state["version"] as? Int == (try c.version(c.learner)) && state["model"] != nil && state["lineage"] as? String != nil)
        #expect(c.learner.log.contains("ignored a malformed snapshot request"))

        // A flood of malformed requests logs ten lines, not one each.
        for _ in 0..<200 { _ = try dealer.send(frames: [Array("snap".utf8)]) }
        _ = try dealer.send(frames: [Array("snapshot".utf8)])
        #expect(try dealer.receiveFrames() != nil)
        let lines = c.learner.log.components(separatedBy: "ignored a malformed snapshot request").count - 1
        #expect(lines == 10, "\(lines) log lines for 201 malformed requests")

        // Oversized requests: libzmq drops the peer (no reply); the learner goes on.
        let big = try ZMQSocket(context: c.learner.context, kind: .dealer)
        try big.setReceiveTimeout(1000)
        try big.connect(c.snapshotEndpoint)
        _ = try big.send(frames: [[UInt8](repeating: 0x73, count: 4096)])
        #expect(try big.receiveFrames() == nil)
        let req = try ZMQSocket(context: c.learner.context, kind: .req)
        try req.setReceiveTimeout(1000)
        try req.connect(c.learner.control)
        _ = try req.send(frames: [Array(#"{"cmd":"status","pad":""#.utf8) + [UInt8](repeating: 0x61, count: 1 << 20) + Array(#""}"#.utf8)])
        #expect(try req.receiveFrames() == nil)
        #expect(try c.learner.status()["ok"] as? Bool == true)
        _ = try dealer.send(frames: [Array("snapshot".utf8)])
        #expect(try dealer.receiveFrames() != nil)
        #expect(try c.learner.stop() == 0)
    }

    /// A scorer's arrival time is its clock, not the learner's: one far in the future must
    /// not hold up the expiry of the instances behind it (the store expires in order).
    @Test func forwardedArrivalsInTheFutureDoNotStopExpiry() throws {
        let learner = try DaemonProcess()
        let dir = learner.directory.path
        try learner.start(["--role", "learner", "--set", "state.pending_ttl_s=1",
                           "--set", "cluster.model_endpoint=ipc://\(dir)/model.sock",
                           "--set", "cluster.snapshot_endpoint=ipc://\(dir)/snapshot.sock",
                           "--set", "cluster.forward_endpoint=ipc://\(dir)/forward.sock"])
        let push = try ZMQSocket(context: learner.context, kind: .push)
        try push.setSendTimeout(5000)
        try push.connect("ipc://\(dir)/forward.sock")
        let now = Date().timeIntervalSince1970
        for (k, arrival) in [now + 1e6, now, now].enumerated() {
            var trailer = [UInt8](repeating: 0, count: ScoredTrailer.size)
            ScoredTrailer.write(score: 0.5, average: 0.5, arrival: arrival, into: &trailer)
            _ = try push.send(frames: [Array("scored".utf8), Array(predBody("t\(k)", tenPreds(k, label: 0)).utf8), trailer])
        }
        try learner.waitForStatus("pending", atLeast: 3)
        let st = try learner.waitForStatus(timeout: 10) { $0["expired"] as? Int == 3 }
        #expect(st["pending"] as? Int == 0)
        #expect(try learner.stop() == 0)
    }

    /// Misrouted input gets a clear answer: a pred sent to the learner is rejected with a
    /// reason; checkpoint and rollback sent to a scorer are refused with where to send them.
    @Test func misroutedInputIsRejectedWithAReason() throws {
        let c = try Cluster(scorers: 1)
        let direct = try c.learner.producer()
        try direct.send(strings: ["pred", predBody("x1", tenPreds(1, label: 0))])
        #expect(try waitUntil(5) {
            (try c.learner.status()["rejected_by_reason"] as? [String: Int])?["role"] == 1
        })
        #expect(try c.learner.status()["scored"] as? Int == 0)
        let reply = try c.scorers[0].controlRequest(["cmd": "checkpoint"])
        #expect(reply["ok"] as? Bool == false)
        #expect((reply["error"] as? String ?? "").contains("learner"))
        #expect(try c.scorers[0].controlRequest(["cmd": "rollback"])["ok"] as? Bool == false)
        #expect(try c.scorers[0].stop() == 0)
        #expect(try c.learner.stop() == 0)
    }
}
