import Foundation
import Testing
import Transport

/// A batch body from entry bodies.
func batchBody(_ entries: [String]) -> String { #"{"items":["# + entries.joined(separator: ",") + "]}" }

/// `pred_batch`, `label_batch` and `score_batch` through the real binary.
@Suite(.serialized) struct BatchTests {
    /// A batch's scores come back in one `score_batch`, in entry order; a bad entry gets
    /// an `error` naming its position and id, and its neighbours are scored; a label batch
    /// teaches the model; single messages work beside batches; the accounting balances.
    @Test func batchesInAndOutWithABadEntry() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=16"])
        let sub = try d.subscriber(["score", "error"])   // "score" also matches "score_batch"
        let push = try d.producer()
        try d.waitForSubscription(sub, via: push)
        let received0 = try d.status()["received"] as? Int ?? 0

        var entries = (0..<64).map { predBody("t\($0)", tenPreds($0, label: $0 % 4 == 0 ? 1 : 0)) }
        entries[10] = #"{"id":"t10","preds":{"c0":1.5}}"#
        try push.send(strings: ["pred_batch", batchBody(entries)])
        try push.send(strings: ["pred", predBody("single", tenPreds(99, label: 0))])
        let got = try DaemonProcess.collect(sub, timeout: 20) { got in
            got.contains { $0.0 == "score_batch" } && got.contains { $0.0 == "score" && $0.1["id"] as? String == "single" }
                && got.contains { $0.0 == "error" }
        }
        let batch = try #require(got.first { $0.0 == "score_batch" }?.1["items"] as? [[String: Any]])
        #expect(batch.compactMap { $0["id"] as? String } == (0..<64).filter { $0 != 10 }.map { "t\($0)" })
        #expect(batch.allSatisfy { ($0["score"] as? Double).map { $0 > 0 && $0 < 1 } == true && $0["probability"] is Double
                && $0["model_version"] as? Int == 0 && $0["n_preds"] as? Int == 10 })
        let error = try #require(got.first { $0.0 == "error" }?.1)
        #expect(error["topic"] as? String == "pred_batch" && error["entry"] as? Int == 10 && error["id"] as? String == "t10")
        #expect((error["reason"] as? String)?.hasPrefix("items[10]: preds.c0: 1.5 is outside [0, 1]") == true, "\(error)")
        #expect(!got.contains { $0.0 == "score" && ($0.1["id"] as? String)?.hasPrefix("t") == true },
                "a batch's scores leave in its score_batch only")

        let labels = (0..<64).map { #"{"id":"t\#($0)","label":\#($0 % 4 == 0 ? 1 : 0)}"# }
        try push.send(strings: ["label_batch", batchBody(labels)])
        let status = try d.waitForStatus { ($0["accounting"] as? [String: Any])?["labels_learnt"] as? Int == 63 }
        let accounting = try #require(status["accounting"] as? [String: Any])
        #expect(accounting["labels_unmatched"] as? Int == 1, "t10 was never scored: its label is unmatched")
        #expect(accounting["batches"] as? Int == 2)
        #expect(accounting["balanced"] as? Bool == true, "\(accounting)")
        #expect((status["received"] as? Int ?? 0) - received0 == 64 + 1 + 64)
        #expect(status["model_version"] as? Int ?? 0 >= 3, "63 labels in mini-batches of 16")
        #expect(try d.stop() == 0)
    }

    /// A batch larger than input.max_batch_bytes is rejected whole with a reason, and
    /// the daemon goes on.
    @Test func anOversizedBatchIsRejectedWhole() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "input.max_batch_bytes=4096"])
        let sub = try d.subscriber(["error"])
        let push = try d.producer()
        Thread.sleep(forTimeInterval: 0.2)
        let entries = (0..<100).map { predBody("o\($0)", tenPreds($0, label: 0)) }
        try push.send(strings: ["pred_batch", batchBody(entries)])
        let got = try DaemonProcess.collect(sub, timeout: 10) { $0.contains { $0.0 == "error" } }
        let error = try #require(got.first?.1)
        #expect((error["reason"] as? String)?.contains("exceeds input.max_batch_bytes (4096)") == true, "\(error)")
        try push.send(strings: ["pred_batch", batchBody(Array(entries.prefix(3)))])
        let status = try d.waitForStatus { $0["scored"] as? Int == 3 }
        #expect((status["rejected_by_reason"] as? [String: Int]) == ["size": 1])
        #expect(try d.stop() == 0)
    }

    /// kill -9 after batches: the journal brings back every batched instance, and their
    /// labels, sent as batches after the restart, are all learnt.
    @Test func batchedInstancesSurviveKillNine() throws {
        let d = try DaemonProcess()
        let args = ["--set", "learning.batch_size=100", "--set", "state.checkpoint_interval_s=0"]
        try d.start(args)
        let push = try d.producer()
        let n = 2000
        for b in 0..<(n / 50) {
            try push.send(strings: ["pred_batch", batchBody((b * 50..<(b + 1) * 50).map { predBody("k\($0)", tenPreds($0, label: $0 % 2)) })])
        }
        try d.waitForStatus("scored", atLeast: n)
        Thread.sleep(forTimeInterval: 0.1)   // past state.journal_flush_ms
        d.kill9()

        try d.start(args)
        #expect(try d.status()["pending"] as? Int == n)
        let again = try d.producer()
        for b in 0..<(n / 50) {
            try again.send(strings: ["label_batch", batchBody((b * 50..<(b + 1) * 50).map { #"{"id":"k\#($0)","label":\#($0 % 2)}"# })])
        }
        let after = try d.waitForStatus { ($0["accounting"] as? [String: Any])?["labels_learnt"] as? Int == n }
        #expect(after["pending"] as? Int == 0 && after["model_version"] as? Int == n / 100)
        #expect((after["accounting"] as? [String: Any])?["balanced"] as? Bool == true)
        #expect(try d.stop() == 0)
    }
}
