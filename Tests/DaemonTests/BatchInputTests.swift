import Foundation
import Online
import Testing
import Transport
import Wire
@testable import Daemon

/// A batch body from entry bodies.
private func items(_ entries: [String]) -> String { #"{"items":["# + entries.joined(separator: ",") + "]}" }

private func pred(_ id: String, _ a: Double, label: Int? = nil) -> String {
    #"{"id":"\#(id)","preds":{"a":\#(a),"b":0.5}"# + (label.map { #","label":\#($0)"# } ?? "") + "}"
}

/// Batches in the core: every entry is an instance, a bad entry is rejected alone.
@Suite struct BatchInputTests {
    @Test func aBatchIsScoredAsItsInstancesInOrderInOneMessage() {
        let h = CoreHarness()
        let ids = (0..<100).map { "t\($0)" }
        h.batch(.predBatch, items(ids.enumerated().map { pred($1, Double($0) / 100) }))
        #expect(h.sink.scoreBatches.count == 1)
        #expect(h.sink.scoreBatches.first?.map(\.id) == ids)
        #expect(h.core.pending.count == 100)
        // The same instances sent one by one get the same scores.
        let single = CoreHarness()
        for (k, id) in ids.enumerated() {
            single.pred(id, ["a": Double(k) / 100, "b": 0.5])
        }
        #expect(single.sink.scores.map(\.score) == h.sink.scores.map(\.score))
        #expect(single.sink.scoreBatches.isEmpty)
        let body = h.core.healthBody()
        #expect(body.received == 100 && body.accounting.preds == 100 && body.accounting.batches == 1)
        #expect(body.accounting.balanced, "\(body.accounting)")
    }

    /// Each rejection reason of a single pred, as an entry between two good ones: the
    /// entry alone is rejected, named by position (and id when it could be read); its
    /// neighbours are scored.
    @Test(arguments: [
        (#"{"id":"x","preds":{"a":NaN}}"#, "json", "preds.a: expected a number"),
        (#"{"id":"x","preds":{"a":1.5}}"#, "field", "preds.a: 1.5 is outside [0, 1]"),
        (#"{"id":"","preds":{"a":0.5}}"#, "field", "id: must not be empty"),
        (#"{"preds":{"a":0.5}}"#, "field", "id: required"),
        (#"{"id":"x"}"#, "field", "preds: required"),
        (#"{"id":"x","preds":{}}"#, "field", "at least one classifier"),
        (#"{"id":"x","preds":{"a":0.5,"a":0.6}}"#, "field", "duplicate classifier"),
        (#"{"id":"x","preds":{"bad name":0.5}}"#, "field", "invalid classifier name"),
        (#"{"id":"x","ts":1764300000000,"preds":{"a":0.5}}"#, "field", "looks like milliseconds"),
        (#"{"id":"x","preds":{"a":0.5},"label":2}"#, "field", "label: expected 0 or 1"),
        (#""just a string""#, "json", "body must be a JSON object"),
        (#"{"id":"x","preds":{"a":0.5,"c":0.5,"d":0.5}}"#, "limit", "would exceed model.max_classifiers"),
        (#"{"id":"first","preds":{"a":0.5}}"#, "duplicate", "already scored"),
        ("", "json", "empty body"),
    ])
    func aBadEntryIsRejectedAloneAndNamed(entry: String, kind: String, fragment: String) throws {
        let h = CoreHarness { $0.model.maxClassifiers = 3 }
        h.batch(.predBatch, items([pred("first", 0.2), entry, pred("last", 0.7)]))
        #expect(h.sink.scoreBatches.map { $0.map(\.id) } == [["first", "last"]])
        let errors = h.sink.errors
        try #require(errors.count == 1)
        #expect(errors[0].entry == 1)
        #expect(errors[0].topic == "pred_batch")
        #expect(errors[0].reason.hasPrefix("items[1]: "))
        #expect(errors[0].reason.contains(fragment), "\(errors[0].reason)")
        if entry.contains(#""id":"x""#) { #expect(errors[0].id == "x") }
        let body = h.core.healthBody()
        #expect(body.rejected_by_reason == [kind: 1])
        #expect(body.received == 3 && body.accounting.preds == 2)
        #expect(body.accounting.balanced, "\(body.accounting)")
        #expect(h.core.model.classifierCount == 2, "a rejected entry registers nothing")
    }

    @Test func entriesBeyondTheLimitAreRejectedAndCountedTheRestGoOn() throws {
        let h = CoreHarness { $0.maxBatchEntries = 3 }
        h.batch(.predBatch, items((0..<5).map { pred("t\($0)", 0.1) }))
        #expect(h.sink.scoreBatches.map { $0.map(\.id) } == [["t0", "t1", "t2"]])
        let body = h.core.healthBody()
        #expect(body.received == 5 && body.rejected_by_reason == ["limit": 2])
        #expect(body.accounting.balanced)
        let error = try #require(h.sink.errors.first)
        #expect(error.entry == 3 && error.reason.contains("2 entries beyond input.max_batch (3)"))
    }

    @Test func aBatchThatCannotBeSplitIsOneRejection() throws {
        let h = CoreHarness { $0.maxBatchBytes = 256 }
        h.batch(.predBatch, items((0..<10).map { pred("t\($0)", 0.1) }))        // > 256 bytes
        h.batch(.predBatch, #"{"items":[{"id":"a","preds":{"a":0.5}}"#)           // not closed
        #expect(h.sink.scores.isEmpty)
        let body = h.core.healthBody()
        #expect(body.received == 2 && body.rejected_by_reason == ["size": 1, "json": 1])
        #expect(body.accounting.balanced)
        #expect(h.sink.errors.map(\.entry) == [nil, nil])
        #expect(h.sink.errors[0].reason.contains("input.max_batch_bytes (256)"))
    }

    @Test func labelBatchesMatchTheirInstancesAndRejectBadEntriesAlone() throws {
        let h = CoreHarness { $0.batchSize = 4 }
        h.batch(.predBatch, items((0..<4).map { pred("t\($0)", 0.25 * Double($0)) }))
        h.batch(.labelBatch, items([#"{"id":"t0","label":0}"#, #"{"id":"t1","label":"yes"}"#, #"{"id":"t2","label":1}"#,
                                    #"{"id":"nobody","label":1}"#, #"{"id":"t3","label":true}"#,
                                    #"{"id":"h","label":1,"preds":{"a":0.9,"b":0.9}}"#]))
        let body = h.core.healthBody()
        #expect(body.accounting.labels_learnt == 4)     // t0, t2, t3 and h (with its preds)
        #expect(body.unmatched_labels == 1)
        #expect(body.rejected_by_reason == ["field": 1])
        #expect(h.sink.errors.first?.entry == 1 && h.sink.errors.first?.id == "t1")
        #expect(h.core.pending.count == 1)              // t1: its label was rejected
        #expect(h.core.model.version == 1, "four labels made one mini-batch")
        #expect(body.received == 10 && body.accounting.batches == 2)
        #expect(body.accounting.balanced, "\(body.accounting)")
        #expect(h.sink.scoreBatches.count == 1, "labels publish no scores")
    }

    @Test func predsWithTheirLabelsInABatchAreLearntAtOnce() {
        let h = CoreHarness { $0.batchSize = 8 }
        h.batch(.predBatch, items((0..<16).map { pred("h\($0)", Double($0 % 2) * 0.8 + 0.1, label: $0 % 2) }))
        #expect(h.sink.scoreBatches.first?.count == 16)
        #expect(h.core.pending.count == 0)
        #expect(h.core.counters.labelled == 16)
        #expect(h.core.model.version == 2)
    }

    @Test func aJoinCompletedByABatchEntryIsInItsScores() {
        let h = CoreHarness { $0.joinWindowMs = 1000 }
        h.pred("seed", ["a": 0.1, "b": 0.2])   // registers both classifiers; waits for none
        h.advance(2)
        h.batch(.predBatch, items([#"{"id":"j","preds":{"a":0.4}}"#, #"{"id":"k","preds":{"a":0.4,"b":0.1}}"#,
                                   #"{"id":"j","preds":{"b":0.6}}"#]))
        #expect(h.sink.scoreBatches.last?.map(\.id) == ["k", "j"])
        #expect(h.sink.scoreBatches.last?.last?.nPreds == 2)
    }

    /// kill -9 after a batch: what the journal flushed brings every instance back, and
    /// their labels, sent as a batch after the restart, are learnt.
    @Test func batchedInstancesSurviveACrashThroughTheJournal() throws {
        let dir = try makeTemporaryDirectory(prefix: "batch-journal")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let h = CoreHarness(durable: true) { $0.stateDir = dir; $0.batchSize = 1000 }
        h.batch(.predBatch, items((0..<50).map { pred("t\($0)", 0.01 * Double($0)) }))
        let after = h.crash(after: 5)
        #expect(after.core.pending.count == 50)
        after.batch(.labelBatch, items((0..<50).map { #"{"id":"t\#($0)","label":\#($0 % 2)}"# }))
        #expect(after.core.pending.count == 0)
        #expect(after.core.counters.labelled == 50)
        let body = after.core.healthBody()
        #expect(body.received == 100 && body.accounting.balanced, "\(body.accounting)")
    }

    /// A learner reads a scorer's `scored_batch`: each entry pending with the score its
    /// trailer carries; a trailer frame that does not match the entries rejects the
    /// message, and a bad trailer rejects its entry alone.
    @Test func aLearnerTakesAScorersBatchOfScoredInstances() throws {
        let h = CoreHarness(role: .learner)
        var reader = BatchReader(maxEntries: 1024, maxBytes: 1 << 20)
        var decoder = MessageDecoder()
        var message = InputMessage()
        func send(_ entries: [String], _ trailers: [(Double, Double)]) {
            h.core.received()
            var t: [UInt8] = []
            for (score, average) in trailers { ScoredTrailer.append(score: score, average: average, arrival: 5, to: &t) }
            let body = Array(items(entries).utf8)
            body.withUnsafeBytes { b in
                t.withUnsafeBytes { tb in
                    reader.readScored(body: b, trailers: tb, truncated: false, decoder: &decoder, message: &message, core: h.core)
                }
            }
        }
        send([pred("s0", 0.1), pred("s1", 0.9), pred("s2", 0.5)], [(0.2, 0.3), (0.8, 0.7), (7, 0.5)])
        #expect(h.core.pending.count == 2, "the third trailer's score is not a probability")
        #expect(h.sink.errors.last?.entry == 2 && h.sink.errors.last?.id == "s2")
        send([pred("s3", 0.1)], [(0.2, 0.3), (0.4, 0.5)])
        #expect(h.core.pending.count == 2)
        #expect(h.sink.errors.last?.reason.contains("1 entries and 48 trailer bytes") == true)
        h.label("s1", 1)
        let body = h.core.healthBody()
        #expect(body.received == 5 && body.rejected_by_reason == ["frames": 2], "\(body.rejected_by_reason)")
        #expect(body.accounting.balanced, "\(body.accounting)")
        #expect(h.sink.scores.isEmpty, "a learner publishes no scores for scored instances")
    }
}
