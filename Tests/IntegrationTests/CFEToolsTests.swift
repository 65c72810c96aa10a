import Foundation
import Testing

/// The cfe tools against a real daemon: replay, status, tail, keygen.
@Suite(.serialized) struct CFEToolsTests {
    private func cfe(_ args: [String]) throws -> (Int32, String) {
        try DaemonProcess.runToExit(args, executable: WatchTests.cfe, timeout: 30)
    }

    @Test func replayJSONLinesAndCSVThenStatusAndTail() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=10"])
        let jsonl = d.directory.appendingPathComponent("events.jsonl").path
        var lines: [String] = []
        for i in 0..<40 { lines.append(#"{"id":"j\#(i)","preds":{"a":0.\#(i % 9 + 1),"b":0.5}}"#) }
        for i in 0..<40 { lines.append(#"{"topic":"label","id":"j\#(i)","label":\#(i % 2)}"#) }
        try lines.joined(separator: "\n").write(toFile: jsonl, atomically: true, encoding: .utf8)
        let csv = d.directory.appendingPathComponent("events.csv").path
        var rows = ["id,ts,label,a,b"]
        for i in 0..<20 { rows.append("c\(i),1764300000.5,,0.\(i % 9 + 1),") }
        for i in 0..<20 { rows.append("c\(i),,\(i % 2),,") }
        try rows.joined(separator: "\n").write(toFile: csv, atomically: true, encoding: .utf8)

        let tail = Process()
        tail.executableURL = WatchTests.cfe
        tail.arguments = ["tail", d.output, "--topic", "score", "--count", "60", "--timeout", "20"]
        let pipe = Pipe()
        tail.standardOutput = pipe
        try tail.run()
        Thread.sleep(forTimeInterval: 0.5)   // subscription

        var (status, out) = try cfe(["replay", jsonl, "--state-dir", d.stateDir, "--rate", "400"])
        #expect(status == 0, "\(out)")
        #expect(out.contains("80/80 msgs"), "progress shows count, rate and ETA: \(out)")
        #expect(out.contains("80 messages sent to") && out.contains("and received"), "\(out)")
        #expect(out.contains("40 preds scored, 40 labels learnt, 0 labels unmatched, 0 rejected"), "\(out)")
        (status, out) = try cfe(["replay", csv, "--input", ">" + d.input, "--type", "push", "--state-dir", d.stateDir])
        #expect(status == 0, "\(out)")

        let deadline = Date().addingTimeInterval(10)
        var st: [String: Any] = [:]
        while Date() < deadline {
            st = try d.status()
            if (st["labelled"] as? Int ?? 0) >= 60 { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(st["scored"] as? Int == 60)
        #expect(st["labelled"] as? Int == 60)
        #expect(st["unmatched_labels"] as? Int == 0)
        #expect(st["rejected"] as? Int == 0)

        (status, out) = try cfe(["status", "--state-dir", d.stateDir])
        #expect(status == 0, "\(out)")
        #expect(out.contains("status: healthy") && out.contains("labelled 60"), "\(out)")
        #expect(out.contains("state: no checkpoint yet, journal "), "\(out)")
        #expect(out.contains(" kB") && !out.contains("0.0 MB"), "a small journal shows in kB: \(out)")
        (status, out) = try cfe(["status", "--control", d.control, "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])?["ok"] as? Bool == true, "\(out)")

        while tail.isRunning && Date() < deadline.addingTimeInterval(10) { Thread.sleep(forTimeInterval: 0.05) }
        let tailed = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(tailed.split(separator: "\n").count == 60, "\(tailed.prefix(300))")
        #expect(tailed.split(separator: "\n").allSatisfy { $0.hasPrefix("score {") })
        #expect(try d.stop() == 0)
    }

    /// `cfe checkpoint` waits for a durable checkpoint; `cfe rollback` restores the last
    /// healthy model, and says why (exit 1) when there is none yet.
    @Test func checkpointAndRollbackCommands() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=10", "--set", "state.checkpoint_interval_s=0"])
        var (status, out) = try cfe(["rollback", "--state-dir", d.stateDir])
        #expect(status == 1 && out.contains("no healthy model snapshot yet"), "\(out)")
        let push = try d.producer()
        for i in 0..<40 { try push.send(strings: ["pred", predBody("k\(i)", tenPreds(i, label: i % 2), label: i % 2)]) }
        try d.waitForStatus("model_version", atLeast: 4)
        (status, out) = try cfe(["checkpoint", "--state-dir", d.stateDir])
        #expect(status == 0 && out.contains("checkpoint written: ") && out.contains("model_version 4"), "\(out)")
        #expect(FileManager.default.fileExists(atPath: d.stateDir + "/checkpoint.cfe"))
        (status, out) = try cfe(["checkpoint", "--control", d.control, "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])?["ok"] as? Bool == true, "\(out)")
        #expect(!out.contains("\\/") && out.contains(d.stateDir), "paths are printed as they are: \(out)")
        _ = try d.waitForStatus { $0["status"] as? String == "healthy" }
        (status, out) = try cfe(["rollback", "--state-dir", d.stateDir])
        #expect(status == 0 && out.contains("rolled back to the last healthy model: model_version 5"), "\(out)")
        #expect(try d.status()["model_version"] as? Int == 5)
        #expect(try d.stop() == 0)
    }

    @Test func keygenWritesAPrivateSecretAndAPublicKey() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfe-keys-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let prefix = dir.appendingPathComponent("daemon").path
        var (status, out) = try cfe(["keygen", prefix])
        #expect(status == 0, "\(out)")
        let secret = try String(contentsOfFile: prefix + ".key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let pub = try String(contentsOfFile: prefix + ".pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.count == 40 && pub.count == 40 && secret != pub)
        let mode = try FileManager.default.attributesOfItem(atPath: prefix + ".key")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        (status, out) = try cfe(["keygen", prefix])
        #expect(status != 0 && out.contains("exists"), "\(out)")
    }

    /// A new user's replay: no --input, no --type, against a daemon with the default SUB
    /// input. It finds the input in the daemon's status, waits for the subscription, and
    /// checks that every message arrived. Without a daemon, or aimed where nothing
    /// listens, it fails with a reason and its own exit status, never a usage text.
    /// `--batch N`: consecutive preds (and labels) go N to a message; a bad line is
    /// rejected alone and makes the replay fail, naming the reason.
    @Test func replayInBatches() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=25"])
        let jsonl = d.directory.appendingPathComponent("batched.jsonl").path
        var lines: [String] = []
        for i in 0..<100 { lines.append(#"{"id":"r\#(i)","preds":{"a":0.\#(i % 9 + 1),"b":0.5}}"#) }
        lines[40] = #"{"id":"r40","preds":{"a":2}}"#
        for i in 0..<100 { lines.append(#"{"topic":"label","id":"r\#(i)","label":\#(i % 2)}"#) }
        try lines.joined(separator: "\n").write(toFile: jsonl, atomically: true, encoding: .utf8)
        let (status, out) = try cfe(["replay", jsonl, "--state-dir", d.stateDir, "--batch", "32", "--quiet"])
        #expect(status != 0, "a rejected line fails the replay: \(out)")
        #expect(out.contains("200 messages sent to") && out.contains("99 preds scored, 99 labels learnt, 1 labels unmatched, 1 rejected (field 1)"),
                "\(out)")
        let accounting = try #require(try d.status()["accounting"] as? [String: Any])
        #expect(accounting["batches"] as? Int == 8 && accounting["balanced"] as? Bool == true, "\(accounting)")
        #expect(try d.stop() == 0)
    }

    @Test func replayDefaultsReachTheDefaultDaemonAndFailuresAreClear() throws {
        let d = try DaemonProcess()
        try d.start([], inputType: "sub")
        let file = d.directory.appendingPathComponent("six.jsonl").path
        try (0..<6).map { #"{"id":"s\#($0)","preds":{"a":0.3,"b":0.6}}"# }.joined(separator: "\n")
            .write(toFile: file, atomically: true, encoding: .utf8)
        var (status, out) = try cfe(["replay", file, "--state-dir", d.stateDir])
        #expect(status == 0, "\(out)")
        #expect(out.contains("6 messages sent to") && out.contains("6 preds scored, 0 labels learnt, 0 labels unmatched, 0 rejected"), "\(out)")
        _ = try d.waitForStatus { $0["scored"] as? Int == 6 }
        #expect(!out.contains("USAGE"))
        // Its readiness pings are counted as pings, not as rejected input.
        let accounting = try #require(try d.status()["accounting"] as? [String: Any])
        #expect((accounting["pings"] as? Int ?? 0) >= 1 && accounting["rejected"] as? Int == 0, "\(accounting)")

        // A file with a bad row, a duplicate and a label for nothing: every message
        // arrives, the outcome says what became of them, and the exit status is 1.
        let mixed = d.directory.appendingPathComponent("mixed.jsonl").path
        try [#"{"id":"m1","preds":{"a":0.3,"b":0.6}}"#, #"{"id":"m2","preds":{"a":7,"b":0.6}}"#,
             #"{"id":"m1","preds":{"a":0.4,"b":0.6}}"#, #"{"topic":"label","id":"nobody","label":1}"#]
            .joined(separator: "\n").write(toFile: mixed, atomically: true, encoding: .utf8)
        (status, out) = try cfe(["replay", mixed, "--state-dir", d.stateDir])
        #expect(status == 1, "\(out)")
        #expect(out.contains("1 preds scored, 0 labels learnt, 1 labels unmatched, 2 rejected (duplicate 1, field 1)"), "\(out)")

        // No daemon at all: fast, exit 69, no usage text.
        let started = Date()
        (status, out) = try cfe(["replay", file, "--state-dir", d.directory.appendingPathComponent("nowhere").path])
        #expect(status == 69 && out.contains("no daemon") && !out.contains("USAGE"), "\(out)")
        (status, out) = try cfe(["status", "--state-dir", d.directory.appendingPathComponent("nowhere").path])
        #expect(status == 69 && out.contains("does not exist") && !out.contains("USAGE"), "\(out)")
        (status, out) = try cfe(["checkpoint", "--state-dir", d.directory.appendingPathComponent("nowhere").path])
        #expect(status == 69 && !out.contains("USAGE"), "\(out)")
        #expect(Date().timeIntervalSince(started) < 15, "cfe without a daemon must fail fast")

        // PUB to an endpoint the daemon does not read: its received count never moves.
        (status, out) = try cfe(["replay", file, "--state-dir", d.stateDir, "--input", "ipc://\(d.directory.path)/elsewhere", "--type", "pub"])
        #expect(status == 1 && out.contains("received none of"), "\(out)")
        // A usage error is still one (exit 64, with usage).
        (status, out) = try cfe(["replay", file, "--type", "carrier-pigeon"])
        #expect(status == 64, "\(out)")
        #expect(try d.stop() == 0)
    }

    @Test func replayRejectsABadFileWithTheLine() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cfe-bad-\(UUID().uuidString.prefix(8)).csv").path
        try "id,a\nx,notanumber\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        let (status, out) = try cfe(["replay", path, "--input", "ipc:///nonexistent/in"])
        #expect(status == 65, "\(out)")
        #expect(out.contains("CSV line 2") && out.contains("notanumber"), "\(out)")
    }
}
