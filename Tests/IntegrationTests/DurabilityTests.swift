import Foundation
import Testing

/// Checkpoint generations and crash recovery through the real binary.
@Suite(.serialized) struct DurabilityTests {
    /// A damaged newest checkpoint is reported and the previous intact generation
    /// restored; with the journal (kept one generation back) the changes since that one
    /// are replayed too, without it they are lost.
    @Test(arguments: [true, false])
    func damagedNewestGenerationFallsBackToThePreviousOne(journal: Bool) throws {
        let d = try DaemonProcess()
        let args = ["--set", "learning.batch_size=5", "--set", "state.journal=\(journal)"]
        try d.start(args)
        let push = try d.producer()
        for i in 0..<10 { try push.send(strings: ["pred", #"{"id":"g\#(i)","preds":{"a":0.\#(i % 9 + 1),"b":0.4},"label":\#(i % 2)}"#]) }
        try d.waitForStatus("model_version", atLeast: 2)
        #expect(try d.controlRequest(["cmd": "checkpoint"])["ok"] as? Bool == true)      // generation with version 2
        for i in 10..<15 { try push.send(strings: ["pred", #"{"id":"g\#(i)","preds":{"a":0.5,"b":0.4},"label":1}"#]) }
        try d.waitForStatus("model_version", atLeast: 3)
        #expect(try d.stop() == 0)                                                        // newest: version 3
        let newest = d.stateDir + "/checkpoint.cfe"
        #expect(FileManager.default.fileExists(atPath: d.stateDir + "/checkpoint.1.cfe"))
        var bytes = try Data(contentsOf: URL(fileURLWithPath: newest))
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: newest))

        try d.start(args)
        #expect(try d.status()["model_version"] as? Int == (journal ? 3 : 2))
        #expect(d.log.contains("replayed the journal") == journal)
        #expect(d.log.contains("skipped a damaged checkpoint generation") && d.log.contains("checksum mismatch"), "\(d.log)")
        #expect(try d.stop() == 0)
    }

    /// Periodic checkpoints are written in the background while scoring goes on; after a
    /// kill -9 (no shutdown checkpoint) every instance pending at the last one is back and
    /// its label is learnt.
    @Test func backgroundCheckpointRestoresEveryPendingInstanceAfterKillNine() throws {
        let d = try DaemonProcess()
        let args = ["--set", "learning.batch_size=64", "--set", "state.checkpoint_interval_s=0.2"]
        try d.start(args)
        let push = try d.producer()
        let n = 3000
        for i in 0..<n { try push.send(strings: ["pred", predBody("b\(i)", tenPreds(i, label: i % 2))]) }
        // The periodic write that includes all of them (the loop goes on scoring meanwhile).
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, !d.log.contains("background=true") || !d.log.contains("pending=\(n) ") {
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(d.log.contains("background=true"), "\(d.log)")
        #expect(try d.status()["scored"] as? Int == n)
        let persistence = try d.status()["persistence"] as? [String: Any] ?? [:]
        let last = persistence["last_checkpoint"] as? [String: Any] ?? [:]
        #expect(last["background"] as? Bool == true && (persistence["checkpoints_written"] as? Int ?? 0) >= 1, "\(persistence)")
        #expect(persistence["journal_file"] as? Int != nil && persistence["checkpoints_failed"] as? Int == 0)
        d.kill9()

        try d.start(args)
        #expect(try d.status()["pending"] as? Int == n)
        let labels = try d.producer()
        for i in 0..<n { try labels.send(strings: ["label", #"{"id":"b\#(i)","label":\#(i % 2)}"#]) }
        let after = try d.waitForStatus { ($0["accounting"] as? [String: Any])?["labels_learnt"] as? Int == n }
        #expect((after["accounting"] as? [String: Any])?["labels_learnt"] as? Int == n)
        #expect(try d.stop() == 0)
    }

    /// With no checkpoint since the start, a kill -9 loses nothing: the journal brings
    /// back the classifiers, the pending instances, the labels learnt (the same updates)
    /// and the partial batch; a torn record at its end (a crash mid-write) is skipped.
    /// With the journal off the same crash loses all of it.
    @Test(arguments: [true, false])
    func journalReplaysEverythingAfterKillNine(journal: Bool) throws {
        let d = try DaemonProcess()
        let args = ["--set", "learning.batch_size=50", "--set", "learning.max_batch_delay_s=0",
                    "--set", "state.checkpoint_interval_s=0", "--set", "state.journal=\(journal)",
                    "--set", "monitoring.drift_window=100", "--set", "monitoring.drift_reference=100",
                    "--set", "monitoring.drift_check_every=50"]
        try d.start(args)
        let push = try d.producer()
        for i in 0..<200 { try push.send(strings: ["pred", predBody("j\(i)", tenPreds(i, label: i % 2))]) }
        for i in 0..<120 { try push.send(strings: ["label", #"{"id":"j\#(i)","label":\#(i % 2)}"#]) }
        try d.waitForStatus("labelled", atLeast: 120)
        let before = try d.status()
        #expect(before["model_version"] as? Int == 2 && before["pending"] as? Int == 80)
        Thread.sleep(forTimeInterval: 0.1)   // past state.journal_flush_ms
        d.kill9()
        let files = try FileManager.default.contentsOfDirectory(atPath: d.stateDir).filter { $0.hasPrefix("journal.") }.sorted()
        #expect(files.isEmpty == !journal)
        if let last = files.last {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: d.stateDir + "/" + last))
            handle.seekToEndOfFile()
            handle.write(Data([0x40, 0, 0, 0, 1, 7]))   // a record cut short
            try handle.close()
        }

        try d.start(args)
        let after = try d.status()
        let driftBefore = try #require((before["drift"] as? [String: Any])?["classifiers"] as? [String: [String: Any]])
        let driftAfter = try #require((after["drift"] as? [String: Any])?["classifiers"] as? [String: [String: Any]])
        guard journal else {
            #expect(driftAfter.isEmpty, "without the journal the drift windows start afresh")
            #expect(after["pending"] as? Int == 0 && after["model_version"] as? Int == 0)
            #expect(try d.stop() == 0)
            return
        }
        let replayLine = d.log.split(separator: "\n").first { $0.contains("replayed the journal") } ?? ""
        #expect(replayLine.contains("classifiers=10") && replayLine.contains("labels_learnt=120"), "\(d.log)")
        #expect(d.log.contains("torn record"))
        #expect(after["pending"] as? Int == 80)
        #expect(after["model_version"] as? Int == 2)
        #expect(after["labelled"] as? Int == 120)
        // The probability's map comes back bit for bit (the journal replays what it learnt).
        let mapBefore = try #require(before["calibration"] as? [String: Any])
        let mapAfter = try #require(after["calibration"] as? [String: Any])
        #expect(mapBefore["fitted"] as? Bool == true)
        for key in ["slope", "intercept", "average_intercept", "positive_rate"] {
            #expect((mapBefore[key] as? Double)?.bitPattern == (mapAfter[key] as? Double)?.bitPattern, "\(key): \(mapBefore) vs \(mapAfter)")
        }
        // Each classifier's drift reference and recent window come back: the same PSI, bit for bit.
        #expect(driftBefore.count == 10 && driftBefore.keys.sorted() == driftAfter.keys.sorted())
        for (name, b) in driftBefore {
            let a = try #require(driftAfter[name])
            #expect(b["reference"] as? Int == 100 && a["reference"] as? Int == 100 && a["recent"] as? Int == 100)
            #expect((b["psi"] as? Double)?.bitPattern == (a["psi"] as? Double)?.bitPattern, "\(name): \(b) vs \(a)")
        }
        // The 20 labels of the partial batch are back: 30 more complete it.
        let again = try d.producer()
        for i in 120..<150 { try again.send(strings: ["label", #"{"id":"j\#(i)","label":\#(i % 2)}"#]) }
        try d.waitForStatus("model_version", atLeast: 3)
        #expect(try d.status()["model_version"] as? Int == 3)
        #expect(try d.stop() == 0)
        // A clean stop's checkpoint covers everything: the next start replays nothing.
        let logged = d.log.count
        try d.start(args)
        #expect(try d.status()["pending"] as? Int == 50)
        #expect(!d.log.dropFirst(logged).contains("replayed the journal"))
        #expect(try d.stop() == 0)
    }

    /// After a kill -9 the restored model is the one that never crashed, bit for bit: the
    /// journal replays what scoring taught the classifier factors (unlabelled learning),
    /// not only the labels, and a checkpoint keeps where the factor refresh stood. The
    /// stream drops 3 of 10 classifiers per message, so the weights depend on the
    /// factors' reconstructions; every tenth pred carries its label (history).
    @Test(arguments: [false, true])
    func replayRebuildsTheModelThatDidNotCrash(checkpointMidway: Bool) throws {
        let args = ["--set", "learning.batch_size=50", "--set", "learning.max_batch_delay_s=0",
                    "--set", "learning.factor_refresh_interval=64", "--set", "state.checkpoint_interval_s=0"]
        func labelled(_ j: Int) -> Bool { j % 10 != 0 && j % 4 != 3 }   // j % 10 == 0: inline
        func feed(_ d: DaemonProcess, _ range: Range<Int>) throws {
            let push = try d.producer()
            for i in range {
                var preds = tenPreds(i, label: i % 2)
                for drop in Set([i % 10, (i * 3 + 1) % 10, (i * 7 + 5) % 10]).prefix(3) { preds["m\(drop)"] = nil }
                try push.send(strings: ["pred", predBody("r\(i)", preds, label: i % 10 == 0 ? i % 2 : nil)])
                let j = i - 100
                if j >= 0 && labelled(j) { try push.send(strings: ["label", #"{"id":"r\#(j)","label":\#(j % 2)}"#]) }
            }
            let expected = (0..<range.upperBound).filter { $0 % 10 == 0 }.count
                + (0..<max(0, range.upperBound - 100)).filter(labelled).count
            try d.waitForStatus("scored", atLeast: range.upperBound)
            try d.waitForStatus("labelled", atLeast: expected)
        }
        func model(_ st: [String: Any]) -> [String] {
            let weights = (st["weights"] as? [String: Double] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            return ["model_version", "labelled", "pending", "bias"].map { "\($0)=\(st[$0] ?? "nil")" } + weights
        }

        let reference = try DaemonProcess()
        try reference.start(args)
        try feed(reference, 0..<600)
        try feed(reference, 600..<1200)
        let expected = model(try reference.status())
        #expect(try reference.stop() == 0)

        let d = try DaemonProcess()
        try d.start(args)
        try feed(d, 0..<600)
        if checkpointMidway { #expect(try d.controlRequest(["cmd": "checkpoint"])["ok"] as? Bool == true) }
        try feed(d, 600..<1200)
        let beforeCrash = model(try d.status())
        #expect(beforeCrash == expected)
        // Everything appended has reached the file (it is flushed every 10 ms).
        _ = try d.waitForStatus { st in
            let p = st["persistence"] as? [String: Any] ?? [:]
            guard let n = p["journal_file"] as? Int, let bytes = p["journal_bytes"] as? Int else { return false }
            let size = (try? FileManager.default.attributesOfItem(atPath: d.stateDir + "/journal.\(n).cfe")[.size] as? Int) ?? -1
            return size == bytes
        }
        d.kill9()

        try d.start(args)
        #expect(d.log.contains("replayed the journal"), "\(d.log)")
        let restored = model(try d.status())
        #expect(restored == expected)
        #expect(try d.stop() == 0)
    }

    /// The `checkpoint` command is written by the writer thread (scoring goes on) and
    /// answered when its write ends; other requests are served meanwhile, two commands
    /// get a write each (the second after the first, with the state at its request),
    /// and a command still owed at SIGTERM is answered by the final checkpoint.
    /// A torn last journal record (power loss, full disk) stops the replay there; the
    /// daemon then checkpoints what it restored before serving, so that a second crash
    /// replays what came after the first restart instead of stopping at the old tear
    /// again: nothing learnt since is lost and model_version never goes back.
    @Test func aSecondCrashAfterATornJournalLosesNothing() throws {
        let d = try DaemonProcess()
        let args = ["--set", "learning.batch_size=8", "--set", "state.checkpoint_interval_s=0"]
        try d.start(args)
        let push = try d.producer()
        func send(_ from: Int, _ count: Int) throws {
            for i in from..<(from + count) {
                try push.send(strings: ["pred", #"{"id":"t\#(i)","preds":{"a":0.\#(i % 9 + 1),"b":0.4},"label":\#(i % 2)}"#])
            }
        }
        try send(0, 200)
        try d.waitForStatus("labelled", atLeast: 200)
        Thread.sleep(forTimeInterval: 0.2)   // journal flushed (state.journal_flush_ms)
        d.kill9()
        // Tear the last record of the newest journal file that has any.
        let files = try FileManager.default.contentsOfDirectory(atPath: d.stateDir).filter { $0.hasPrefix("journal.") }
            .sorted { Int($0.split(separator: ".")[1])! < Int($1.split(separator: ".")[1])! }
        let torn = try #require(files.last { ((try? FileManager.default.attributesOfItem(atPath: d.stateDir + "/" + $0))?[.size] as? Int ?? 0) > 0 })
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: d.stateDir + "/" + torn))
        let size = try handle.seekToEnd()
        try handle.truncate(atOffset: size - 3)
        try handle.close()

        try d.start(args)
        #expect(d.log.contains("replay stopped"), "\(d.log)")
        #expect(d.log.contains("checkpointed the state restored up to the journal's gap"), "\(d.log)")
        let afterFirst = try d.status()
        let v1 = afterFirst["model_version"] as? Int ?? 0
        let push2 = try d.producer()
        for i in 200..<400 {
            try push2.send(strings: ["pred", #"{"id":"t\#(i)","preds":{"a":0.\#(i % 9 + 1),"b":0.4},"label":\#(i % 2)}"#])
        }
        let labelled1 = afterFirst["labelled"] as? Int ?? 0
        try d.waitForStatus("labelled", atLeast: labelled1 + 200)
        let beforeSecond = try d.status()
        let v2 = beforeSecond["model_version"] as? Int ?? 0
        #expect(v2 > v1)
        Thread.sleep(forTimeInterval: 0.2)
        d.kill9()
        try d.start(args)
        let after = try d.status()
        #expect((after["model_version"] as? Int ?? 0) >= v2, "model_version went back: \(v2) -> \(after["model_version"] ?? "-")")
        #expect((after["labelled"] as? Int ?? 0) == labelled1 + 200, "\(after["labelled"] ?? "-")")
        #expect(!d.log.contains("replay stopped"), "the second restart met the tear again: \(d.log)")
        #expect(try d.stop() == 0)
    }

    @Test func checkpointCommandsAreWrittenInTheBackground() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "state.checkpoint_interval_s=0"])
        let push = try d.producer()
        let n = 10_000
        for i in 0..<n { try push.send(strings: ["pred", predBody("c\(i)", tenPreds(i, label: i % 2))]) }
        try d.waitForStatus("scored", atLeast: n)
        let first = try d.sendControl(["cmd": "checkpoint"]), second = try d.sendControl(["cmd": "checkpoint"])
        #expect(try d.status()["ok"] as? Bool == true)
        for req in [first, second] {
            let reply = try DaemonProcess.controlReply(req)
            #expect(reply["ok"] as? Bool == true && (reply["bytes"] as? Int ?? 0) > 0, "\(reply)")
        }
        let persistence = try d.status()["persistence"] as? [String: Any] ?? [:]
        let last = persistence["last_checkpoint"] as? [String: Any] ?? [:]
        #expect(persistence["checkpoints_written"] as? Int == 2, "\(persistence)")
        #expect(last["background"] as? Bool == true && last["pending"] as? Int == n, "\(last)")

        for i in n..<(2 * n) { try push.send(strings: ["pred", predBody("c\(i)", tenPreds(i, label: i % 2))]) }
        try d.waitForStatus("scored", atLeast: 2 * n)
        let owed = try d.sendControl(["cmd": "checkpoint"])
        #expect(try d.stop() == 0)
        let reply = try DaemonProcess.controlReply(owed)
        #expect(reply["ok"] as? Bool == true, "\(reply)")
        try d.start(["--set", "state.checkpoint_interval_s=0"])
        #expect(try d.status()["pending"] as? Int == 2 * n)
        #expect(try d.stop() == 0)
    }

    /// With periodic checkpoints off, a journal that reaches `state.journal_max_mb`
    /// asks for one checkpoint (which starts a new file), not a stream of them.
    @Test func fullJournalTriggersOneCheckpoint() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "state.checkpoint_interval_s=0", "--set", "state.journal_max_mb=1"])
        let push = try d.producer()
        let n = 15_000   // about 1.5 MB of journal
        for i in 0..<n { try push.send(strings: ["pred", predBody("f\(i)", tenPreds(i, label: 0))]) }
        try d.waitForStatus("scored", atLeast: n)
        // The checkpoint's writer runs at the lowest priority: under load it takes a while.
        #expect(d.waitForLog("checkpoint written", timeout: 60), "\(d.log)")
        Thread.sleep(forTimeInterval: 0.5)
        let written = d.log.components(separatedBy: "checkpoint written").count - 1
        #expect(written == 1, "\(d.log)")
        Thread.sleep(forTimeInterval: 0.5)
        #expect(d.log.components(separatedBy: "checkpoint written").count - 1 == written)
        #expect(try d.stop() == 0)
    }

    /// Labels already counted but waiting for a full mini-batch are in periodic
    /// checkpoints: after a kill -9 the restored batch completes with the next labels.
    @Test func partialBatchSurvivesACrash() throws {
        let d = try DaemonProcess()
        let args = ["--set", "learning.batch_size=50", "--set", "learning.max_batch_delay_s=0",
                    "--set", "state.checkpoint_interval_s=0.05"]
        try d.start(args)
        let push = try d.producer()
        for i in 0..<100 { try push.send(strings: ["pred", predBody("p\(i)", tenPreds(i, label: i % 2))]) }
        for i in 0..<30 { try push.send(strings: ["label", #"{"id":"p\#(i)","label":\#(i % 2)}"#]) }
        let deadline = Date().addingTimeInterval(20)
        try d.waitForStatus("labelled", atLeast: 30)
        // A periodic checkpoint taken after the 30 labels.
        let written = d.log.components(separatedBy: "checkpoint written").count
        while Date() < deadline, d.log.components(separatedBy: "checkpoint written").count < written + 2 {
            Thread.sleep(forTimeInterval: 0.02)
        }
        #expect(try d.status()["model_version"] as? Int == 0)
        d.kill9()

        try d.start(args)
        #expect(d.log.contains("batch=30"), "\(d.log)")
        let again = try d.producer()
        for i in 30..<50 { try again.send(strings: ["label", #"{"id":"p\#(i)","label":\#(i % 2)}"#]) }
        try d.waitForStatus("model_version", atLeast: 1)
        let status = try d.status()
        #expect(status["model_version"] as? Int == 1)
        #expect(status["labelled"] as? Int == 50)
        #expect(try d.stop() == 0)
    }

    /// SIGTERM while background checkpoints keep the writer busy: shutdown waits for the
    /// write in progress, then learns the partial batch and writes the final checkpoint,
    /// which is the one restored (its model version, not an earlier background one's).
    @Test func cleanStopDuringABackgroundWriteKeepsEverything() throws {
        let d = try DaemonProcess()
        let args = ["--set", "state.checkpoint_interval_s=0.01", "--set", "learning.batch_size=1000",
                    "--set", "learning.max_batch_delay_s=0"]
        try d.start(args)
        let push = try d.producer()
        let n = 20_000, labelled = 100
        for i in 0..<n { try push.send(strings: ["pred", predBody("t\(i)", tenPreds(i, label: i % 2))]) }
        for i in 0..<labelled { try push.send(strings: ["label", #"{"id":"t\#(i)","label":\#(i % 2)}"#]) }
        try d.waitForStatus("labelled", atLeast: labelled)
        #expect(try d.status()["model_version"] as? Int == 0)    // the batch is not full yet
        #expect(d.waitForLog("background=true"))
        #expect(try d.stop() == 0)
        #expect(!d.log.contains("checkpoint failed"), "\(d.log)")
        try d.start(args)
        let status = try d.status()
        #expect(status["pending"] as? Int == n - labelled)
        #expect(status["model_version"] as? Int == 1)
        #expect(try d.stop() == 0)
    }

    /// kill -9 at many points of a stream: the daemon always comes back, from an intact
    /// checkpoint, and model_version never goes back past a completed checkpoint.
    @Test func killNineAtManyPointsAlwaysRestarts() throws {
        let d = try DaemonProcess()
        let args = ["--set", "learning.batch_size=8", "--set", "state.checkpoint_interval_s=0.05"]
        var lastCheckpointed = 0
        var next = 0
        for round in 0..<8 {
            try d.start(args)
            let restored = try d.status()["model_version"] as? Int ?? -1
            #expect(restored >= lastCheckpointed, "round \(round): restored version \(restored) < checkpointed \(lastCheckpointed)")
            let push = try d.producer()
            for _ in 0..<(200 + round * 37) {
                try push.send(strings: ["pred", #"{"id":"k\#(next)","preds":{"a":0.\#(next % 9 + 1),"b":0.3},"label":\#(next % 2)}"#])
                next += 1
            }
            let reply = try d.controlRequest(["cmd": "checkpoint"])
            lastCheckpointed = reply["model_version"] as? Int ?? lastCheckpointed
            // Keep streaming while periodic checkpoints are being written, then kill -9.
            for _ in 0..<(100 + round * 53) {
                try push.send(strings: ["pred", #"{"id":"k\#(next)","preds":{"a":0.5,"b":0.6},"label":1}"#])
                next += 1
            }
            Thread.sleep(forTimeInterval: Double(round % 4) * 0.03)
            d.kill9()
        }
        try d.start(args)
        #expect((try d.status()["model_version"] as? Int ?? -1) >= lastCheckpointed)
        #expect(!d.log.contains("no intact checkpoint generation"))
        #expect(try d.stop() == 0)
    }
}
