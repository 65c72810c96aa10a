import Foundation
import Testing
import Transport

/// End to end through the real binary over real ZeroMQ sockets (ipc:// in a temp dir).
@Suite(.serialized) struct DaemonTests {
    @Test func everyValidPredGetsExactlyOneScore() throws {
        let d = try DaemonProcess()
        try d.start()
        let sub = try d.subscriber(["score"])
        let push = try d.producer()
        try d.waitForSubscription(sub, via: push)
        let n = 2000
        for i in 0..<n { try push.send(strings: ["pred", predBody("p\(i)", tenPreds(i, label: i % 10 == 0 ? 1 : 0))]) }
        var got = try DaemonProcess.collect(sub, timeout: 30) { $0.filter { ($0.1["id"] as? String)?.hasPrefix("p") == true }.count >= n }
        got += try DaemonProcess.collect(sub, timeout: 0.5) { _ in false }   // anything extra would show up here
        let ids = got.compactMap { $0.1["id"] as? String }.filter { $0.hasPrefix("p") }
        #expect(ids.count == n)
        #expect(Set(ids).count == n)
        for (_, body) in got where (body["id"] as? String)?.hasPrefix("p") == true {
            let score = try #require(body["score"] as? Double)
            #expect(score >= 0 && score <= 1)
            #expect(body["n_preds"] as? Int == 10)
            #expect(body["model_version"] as? Int == 0)
            #expect(body["fallback"] as? Bool == false)
            #expect(body["ts"] as? Double != nil)
        }
        let status = try d.status()
        #expect((status["pending"] as? Int ?? 0) >= n)   // plus the subscription probes
        #expect(try d.stop() == 0)
    }

    /// A clean stop removes the ipc:// socket files it bound (input, output, control),
    /// and leaves no file of anyone else's.
    @Test func aCleanStopRemovesItsSocketFiles() throws {
        let d = try DaemonProcess()
        let peer = d.directory.appendingPathComponent("peer.sock").path
        FileManager.default.createFile(atPath: peer, contents: Data())
        try d.start()
        let files = ["in.sock", "out.sock"].map { d.directory.appendingPathComponent($0).path } + [d.stateDir + "/control.sock"]
        #expect(files.allSatisfy { FileManager.default.fileExists(atPath: $0) })
        #expect(try d.stop() == 0)
        for f in files { #expect(!FileManager.default.fileExists(atPath: f), "\(f) left behind") }
        #expect(FileManager.default.fileExists(atPath: peer))
    }

    /// One pred with 61 made-up names cannot fill the registry for good: with
    /// model.allowed_classifiers it is rejected, registers nothing, and real classifiers
    /// go on registering (across a restart too).
    @Test func madeUpClassifierNamesCannotFillTheRegistry() throws {
        let d = try DaemonProcess()
        let args = ["--set", "model.allowed_classifiers=xgb,rf,lr"]
        try d.start(args)
        let push = try d.producer()
        var flood: [String: Double] = [:]
        for k in 0..<61 { flood["fake\(k)"] = 0.5 }
        try push.send(strings: ["pred", predBody("flood", flood)])
        try push.send(strings: ["pred", predBody("real", ["xgb": 0.9, "rf": 0.8])])
        try push.send(strings: ["pred", predBody("later", ["xgb": 0.9, "rf": 0.8, "lr": 0.3])])
        let st = try d.waitForStatus { $0["scored"] as? Int == 2 }
        #expect(Set((st["weights"] as? [String: Double] ?? [:]).keys) == ["xgb", "rf", "lr"], "\(st)")
        #expect((st["rejected_by_reason"] as? [String: Int])?["field"] == 1, "\(st["rejected_by_reason"] ?? "-")")
        #expect(try d.stop() == 0)
        try d.start(args)
        #expect(Set((try d.status()["weights"] as? [String: Double] ?? [:]).keys) == ["xgb", "rf", "lr"])
        #expect(try d.stop() == 0)
    }

    @Test func defaultSubInputScoresPublishedPreds() throws {
        let d = try DaemonProcess()
        try d.start(inputType: "sub")
        let sub = try d.subscriber(["score"])
        let pub = try d.producer(kind: .pub)
        try d.waitForSubscription(sub, via: pub)
        for i in 0..<300 { try pub.send(strings: ["pred", predBody("s\(i)", ["a": 0.2, "b": Double(i % 100) / 100])]) }
        let got = try DaemonProcess.collect(sub, timeout: 20) { $0.filter { ($0.1["id"] as? String)?.hasPrefix("s") == true }.count >= 300 }
        #expect(Set(got.compactMap { $0.1["id"] as? String }.filter { $0.hasPrefix("s") }).count == 300)
        #expect(try d.stop() == 0)
    }

    @Test func labelsChangeTheModel() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=32"])
        let push = try d.producer()
        let n = 200
        for i in 0..<n { try push.send(strings: ["pred", predBody("l\(i)", tenPreds(i, label: i % 5 == 0 ? 1 : 0))]) }
        let initial = try d.waitForStatus() { ($0["pending"] as? Int ?? 0) >= n }["weights"] as? [String: Double]
        for i in 0..<n { try push.send(strings: ["label", #"{"id":"l\#(i)","label":\#(i % 5 == 0 ? 1 : 0)}"#]) }
        let status = try d.waitForStatus() { ($0["labelled"] as? Int ?? 0) >= n }
        #expect(status["model_version"] as? Int == n / 32)
        #expect(status["unmatched_labels"] as? Int == 0)
        #expect(status["pending"] as? Int == 0)
        let weights = try #require(status["weights"] as? [String: Double])
        #expect(weights.count == 10)
        #expect(weights != initial, "weights never moved from their start: \(weights)")
        // Later scores carry the new model version.
        let sub = try d.subscriber(["score"])
        try d.waitForSubscription(sub, via: push)
        try push.send(strings: ["pred", predBody("after", tenPreds(1, label: 0))])
        let after = try DaemonProcess.collect(sub, timeout: 10) { $0.contains { $0.1["id"] as? String == "after" } }
        #expect(after.first { $0.1["id"] as? String == "after" }?.1["model_version"] as? Int == n / 32)
        #expect(try d.stop() == 0)
    }

    @Test func statusAnswersAndUnknownCommandsFail() throws {
        let d = try DaemonProcess()
        try d.start()
        let status = try d.status()
        #expect(status["ok"] as? Bool == true)
        for key in ["model_version", "status", "weights", "bias", "class_counts", "class_weights", "pending", "scored",
                    "labelled", "unmatched_labels", "rejected", "config"] {
            #expect(status[key] != nil, "status lacks \(key)")
        }
        // Before the first checkpoint last_checkpoint is there, and null.
        let persistence = try #require(status["persistence"] as? [String: Any])
        #expect(persistence["last_checkpoint"] is NSNull, "\(persistence)")
        let unknown = try d.controlRequest(["cmd": "explode"])
        #expect(unknown["ok"] as? Bool == false)
        #expect((unknown["error"] as? String)?.contains("unknown command") == true)
        let checkpoint = try d.controlRequest(["cmd": "checkpoint"])
        #expect(checkpoint["ok"] as? Bool == true)
        #expect(FileManager.default.fileExists(atPath: d.stateDir + "/checkpoint.cfe"))

        // Malformed requests get an error reply, from REQ clients and from a DEALER that
        // sends no envelope delimiter; the daemon goes on answering.
        func raw(_ kind: ZMQSocket.Kind, _ frames: [[UInt8]]) throws -> String {
            let s = try ZMQSocket(context: d.context, kind: kind)
            try s.setReceiveTimeout(5000)
            try s.connect(d.control)
            _ = try s.send(frames: frames)
            let reply = try #require(try s.receiveFrames())
            return String(decoding: reply.last ?? [], as: UTF8.self)
        }
        #expect(try raw(.req, [Array("not json".utf8)]).contains("request is not a JSON object"))
        #expect(try raw(.req, [Array(#"{"command":"status"}"#.utf8)]).contains("missing"))
        #expect(try raw(.req, [Array("{}".utf8), Array("{}".utf8)]).contains("expected one frame"))
        #expect(try raw(.dealer, [Array(#"{"cmd":"nope"}"#.utf8)]).contains("unknown command"))
        #expect(try raw(.dealer, [[], Array(#"{"cmd":"status"}"#.utf8)]).contains(#""ok":true"#))
        #expect(try d.status()["ok"] as? Bool == true)
        #expect(try d.stop() == 0)
    }

    @Test func restartRestoresModelVersionAndPendingInstances() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=10"])
        let push = try d.producer()
        for i in 0..<50 { try push.send(strings: ["pred", predBody("r\(i)", tenPreds(i, label: i % 3 == 0 ? 1 : 0))]) }
        for i in 0..<30 { try push.send(strings: ["label", #"{"id":"r\#(i)","label":\#(i % 3 == 0 ? 1 : 0)}"#]) }
        let before = try d.waitForStatus() { ($0["labelled"] as? Int ?? 0) >= 30 }
        #expect(before["model_version"] as? Int == 3)
        #expect(before["pending"] as? Int == 20)
        #expect(try d.stop() == 0)

        try d.start(["--set", "learning.batch_size=10"])
        let restored = try d.status()
        #expect(restored["model_version"] as? Int == 3)
        #expect(restored["pending"] as? Int == 20)
        #expect((restored["weights"] as? [String: Double]) == (before["weights"] as? [String: Double]))
        let push2 = try d.producer()
        for i in 30..<50 { try push2.send(strings: ["label", #"{"id":"r\#(i)","label":\#(i % 3 == 0 ? 1 : 0)}"#]) }
        let after = try d.waitForStatus() { ($0["labelled"] as? Int ?? 0) >= 50 }
        #expect(after["unmatched_labels"] as? Int == 0)
        #expect(after["pending"] as? Int == 0)
        #expect(after["model_version"] as? Int == 5)
        #expect(try d.stop() == 0)
    }

    @Test func garbageIsRejectedWithReasonsAndNeverScoredOrLearnt() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=1", "--set", "output.error_rate_per_s=1000"])
        let sub = try d.subscriber(["score", "error"])
        let push = try d.producer()
        try d.waitForSubscription(sub, via: push)
        let versionBefore = try d.status()["model_version"] as? Int
        let garbage: [[[UInt8]]] = [
            [Array("pred".utf8)],
            [Array("pred".utf8), Array("{}".utf8), Array("x".utf8)],
            [Array("bogus".utf8), Array(#"{"id":"g"}"#.utf8)],
            [Array("pred".utf8), Array("not json".utf8)],
            [Array("pred".utf8), Array("[1,2]".utf8)],
            [Array("pred".utf8), Array(#"{"preds":{"a":0.5}}"#.utf8)],
            [Array("pred".utf8), Array(#"{"id":"","preds":{"a":0.5}}"#.utf8)],
            [Array("pred".utf8), Array(#"{"id":"g1","preds":{}}"#.utf8)],
            [Array("pred".utf8), Array(#"{"id":"g2","preds":{"a":"0.5"}}"#.utf8)],
            [Array("pred".utf8), Array(#"{"id":"g3","preds":{"a":1.5}}"#.utf8)],
            [Array("pred".utf8), Array(#"{"id":"g4","preds":{"a":-0.1}}"#.utf8)],
            [Array("pred".utf8), Array(#"{"id":"g5","preds":{"a":NaN}}"#.utf8)],
            [Array("pred".utf8), Array(#"{"id":"g6","preds":{"bad name":0.5}}"#.utf8)],
            [Array("pred".utf8), Array([0x7B, 0xFF, 0xFE, 0x7D])],
            [Array("label".utf8), Array(#"{"id":"x","label":2}"#.utf8)],
            [Array("label".utf8), Array(#"{"id":"x","label":"yes"}"#.utf8)],
            [Array("pred".utf8), Array(("{\"id\":\"big\",\"pad\":\"" + String(repeating: "x", count: 100_000) + "\",\"preds\":{\"a\":0.5}}").utf8)],
            [Array("pred".utf8), Array(("{\"id\":\"" + String(repeating: "i", count: 10_000) + "\",\"preds\":{\"a\":0.5}}").utf8)],
            [Array("pred".utf8), Array(("{\"id\":\"many\",\"preds\":{" + (0..<5000).map { "\"n\($0)\":0.5" }.joined(separator: ",") + "}}").utf8)],
            [Array("pred".utf8), Array(("{\"id\":\"deep\",\"x\":" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + ",\"preds\":{\"a\":0.5}}").utf8)],
            [Array("pred".utf8), [UInt8](repeating: 0x20, count: 5_000_000)],
            [Array("pred".utf8), Array(#"{"id":"inf","preds":{"a":Infinity}}"#.utf8)],
            [Array("pred".utf8), Array(#"{"id":"str","preds":"a"}"#.utf8)],
            [Array("pred".utf8), Array(#"{"id":"\ud800","preds":{"a":0.5}}"#.utf8)],
            [Array("pred".utf8), (0..<512).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) }],
            [Array("label".utf8), Array(#"{"id":"x","label":true,"preds":{"a":-3}}"#.utf8)],
        ]
        for (k, g) in garbage.enumerated() {
            try push.send(frames: g)
            try push.send(strings: ["pred", predBody("ok\(k)", ["a": 0.3, "b": 0.6])])
        }
        // The 5 MB body exceeds ZMQ_MAXMSGSIZE (4 x input.max_batch_bytes): libzmq drops it
        // and disconnects that peer before the daemon sees it; the peer reconnects and its next
        // valid message is scored. Every other kind is received and rejected with a reason.
        let rejectedByDaemon = garbage.count - 1
        let got = try DaemonProcess.collect(sub, timeout: 15) { out in
            out.filter { ($0.1["id"] as? String)?.hasPrefix("ok") == true }.count >= garbage.count
                && out.filter { $0.0 == "error" }.count >= rejectedByDaemon
        }
        let scored = Set(got.filter { $0.0 == "score" }.compactMap { $0.1["id"] as? String })
        #expect(scored.isSuperset(of: (0..<garbage.count).map { "ok\($0)" }))
        #expect(scored.filter { $0.hasPrefix("g") || $0 == "big" }.isEmpty)
        let errors = got.filter { $0.0 == "error" }
        #expect(errors.count == rejectedByDaemon)
        #expect(errors.allSatisfy { !($0.1["reason"] as? String ?? "").isEmpty })
        #expect(errors.contains { ($0.1["reason"] as? String)?.contains("preds.a: 1.5 is outside [0, 1]") == true })
        let status = try d.status()
        #expect(status["rejected"] as? Int == rejectedByDaemon)
        // Loss accounting: every received message is in exactly one bucket.
        let accounting = try #require(status["accounting"] as? [String: Any])
        #expect(accounting["balanced"] as? Bool == true, "\(accounting)")
        #expect(accounting["rejected"] as? Int == rejectedByDaemon)
        #expect((accounting["received"] as? Int ?? 0) == (accounting["preds"] as? Int ?? 0) + rejectedByDaemon)
        #expect(status["model_version"] as? Int == versionBefore)
        #expect(d.isRunning)
        #expect(try d.stop() == 0)
    }

    @Test func joinWindowScoresAnInstanceOnceWhenAllClassifiersReported() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "input.join_window_ms=400"])
        let sub = try d.subscriber(["score"])
        let push = try d.producer()
        try d.waitForSubscription(sub, via: push)
        try push.send(strings: ["pred", predBody("full", ["xgb": 0.9, "rf": 0.8, "lr": 0.7])])
        try push.send(strings: ["pred", predBody("split", ["xgb": 0.9])])
        try push.send(strings: ["pred", predBody("split", ["rf": 0.8, "lr": 0.6])])
        let sent = Date().timeIntervalSince1970
        try push.send(strings: ["pred", predBody("alone", ["xgb": 0.1])])
        let got = try DaemonProcess.collect(sub, timeout: 3) { _ in false }
        func scores(_ id: String) -> [[String: Any]] { got.filter { $0.1["id"] as? String == id }.map(\.1) }
        #expect(scores("full").count == 1)
        #expect(scores("split").count == 1)
        #expect(scores("split").first?["n_preds"] as? Int == 3)
        #expect(scores("alone").count == 1)
        #expect(scores("alone").first?["n_preds"] as? Int == 1)
        // Without a ts the score carries the time it was scored: here when the 400 ms
        // window closed, not when the pred arrived.
        let ts = try #require(scores("alone").first?["ts"] as? Double)
        #expect(ts - sent >= 0.35 && ts - sent < 3, "score ts \(ts - sent) s after sending")
        #expect(try d.stop() == 0)
    }

    @Test func labelsWithPredsAndUnknownIds() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=2"])
        let push = try d.producer()
        try push.send(strings: ["label", #"{"id":"never-seen","label":1}"#])
        try push.send(strings: ["label", #"{"id":"direct1","label":1,"preds":{"a":0.9,"b":0.8}}"#])
        try push.send(strings: ["pred", #"{"id":"replay","label":0,"preds":{"a":0.1,"b":0.2}}"#])
        let status = try d.waitForStatus() { ($0["labelled"] as? Int ?? 0) >= 2 && ($0["unmatched_labels"] as? Int ?? 0) >= 1 }
        #expect(status["unmatched_labels"] as? Int == 1)
        #expect(status["model_version"] as? Int == 1)
        let accounting = try #require(status["accounting"] as? [String: Any])
        #expect(accounting["received"] as? Int == 3 && accounting["preds"] as? Int == 1
                && accounting["labels_learnt"] as? Int == 1 && accounting["labels_unmatched"] as? Int == 1
                && accounting["balanced"] as? Bool == true, "\(accounting)")
        #expect(status["pending"] as? Int == 0)
        #expect(try d.stop() == 0)
    }


    /// The status PR-AUC is the average precision of the scores the daemon published,
    /// computed here independently from the score messages and the labels sent.
    @Test func statusPRAUCMatchesThePublishedScores() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=1000", "--set", "learning.max_batch_delay_s=0"])
        let sub = try d.subscriber(["score"])
        let push = try d.producer()
        try d.waitForSubscription(sub, via: push)
        let n = 300
        let labels = (0..<n).map { i in (i * 37) % 7 == 0 ? 1 : 0 }
        for i in 0..<n { try push.send(strings: ["pred", predBody("q\(i)", tenPreds(i, label: labels[i]))]) }
        let got = try DaemonProcess.collect(sub, timeout: 10) { out in out.filter { ($0.1["id"] as? String)?.hasPrefix("q") == true }.count >= n }
        var score: [String: Double] = [:]
        for (_, body) in got { if let id = body["id"] as? String, id.hasPrefix("q") { score[id] = body["score"] as? Double } }
        #expect(score.count == n)
        for i in 0..<n { try push.send(strings: ["label", #"{"id":"q\#(i)","label":\#(labels[i])}"#]) }
        try d.waitForStatus("labelled", atLeast: n)
        Thread.sleep(forTimeInterval: 0.6)   // the PR-AUC is refreshed at most every 0.5 s

        // Average precision as scikit-learn defines it, ties forming one threshold.
        let ranked = (0..<n).map { (score["q\($0)"] ?? 0, labels[$0]) }.sorted { $0.0 > $1.0 }
        let positives = labels.reduce(0, +)
        var apSum = 0.0, lastRecall = 0.0, tp = 0, k = 0
        while k < ranked.count {
            var j = k
            while j < ranked.count && ranked[j].0 == ranked[k].0 { tp += ranked[j].1; j += 1 }
            let recall = Double(tp) / Double(positives), precision = Double(tp) / Double(j)
            apSum += (recall - lastRecall) * precision
            lastRecall = recall
            k = j
        }
        let reported = try #require(try d.status()["pr_auc"] as? Double)
        #expect(abs(reported - apSum) < 0.005, "status \(reported), published scores \(apSum)")
        #expect(try d.stop() == 0)
    }

    /// "replayed the journal (the daemon had not stopped cleanly)" is for crashes only: a
    /// clean stop leaves nothing to replay and says nothing of the kind.
    @Test func journalReplayIsLoggedOnlyAfterACrash() throws {
        let d = try DaemonProcess()
        try d.start()
        let push = try d.producer()
        for i in 0..<5 { try push.send(strings: ["pred", predBody("j\(i)", ["a": 0.2, "b": 0.6])]) }
        try d.waitForStatus("pending", atLeast: 5)
        #expect(try d.stop() == 0)
        try d.start()
        #expect(try d.status()["pending"] as? Int == 5)
        #expect(!d.log.contains("replayed the journal"), "after a clean stop: \(d.log.suffix(1500))")
        let p2 = try d.producer()
        for i in 5..<8 { try p2.send(strings: ["pred", predBody("j\(i)", ["a": 0.2, "b": 0.6])]) }
        try d.waitForStatus("pending", atLeast: 8)
        Thread.sleep(forTimeInterval: 0.1)   // the journal's 10 ms flush
        d.kill9()
        try d.start()
        #expect(try d.status()["pending"] as? Int == 8)
        #expect(d.log.contains("replayed the journal (the daemon had not stopped cleanly)"))
        #expect(try d.stop() == 0)
    }
}

/// Updates on the update thread (the default) and on the scoring thread make the same
/// model from the same input: the same version and, bit for bit, the same weights.
@Test func theUpdateThreadMakesTheModelTheLoopMakes() throws {
    var finals: [[String: Any]] = []
    for thread in ["true", "false"] {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=10", "--set", "learning.update_thread=\(thread)"])
        let push = try d.producer()
        for i in 0..<120 { try push.send(strings: ["pred", predBody("u\(i)", tenPreds(i, label: i % 4 == 0 ? 1 : 0))]) }
        for i in 0..<100 { try push.send(strings: ["label", #"{"id":"u\#(i)","label":\#(i % 4 == 0 ? 1 : 0)}"#]) }
        finals.append(try d.waitForStatus() { ($0["labelled"] as? Int ?? 0) >= 100 })
        #expect(try d.stop() == 0)
    }
    #expect(finals[0]["model_version"] as? Int == 10)
    #expect(finals[0]["model_version"] as? Int == finals[1]["model_version"] as? Int)
    let threaded = try #require(finals[0]["weights"] as? [String: Double])
    #expect(threaded.count == 10)
    #expect(threaded == finals[1]["weights"] as? [String: Double])
    #expect(finals[0]["bias"] as? Double == finals[1]["bias"] as? Double)
}
