import Foundation
import Testing
import Online
import Transport
import Wire
@testable import Daemon

/// The core's timers and accounting, in process on a manual clock: what the
/// subprocess tests can only approach with real sleeps.
@Suite struct DaemonCoreTests {
    @Test func joinWindowWaitsForTheRestThenPublishesWhatCame() {
        let h = CoreHarness { $0.joinWindowMs = 400 }
        h.pred("seed", ["a": 0.2, "b": 0.4])            // registers both classifiers
        #expect(h.sink.scores.map(\.id) == ["seed"])
        h.pred("x", ["a": 0.9])
        h.advance(0.3)
        #expect(h.sink.scores.count == 1, "published before its window closed")
        h.pred("x", ["b": 0.7])
        #expect(h.sink.scores.last?.id == "x")
        #expect(h.sink.scores.last?.nPreds == 2, "the two halves were joined")

        h.pred("y", ["a": 0.1])
        h.advance(0.39)
        #expect(h.sink.scores.count == 2)
        h.advance(0.02)
        #expect(h.sink.scores.count == 3)
        #expect(h.sink.scores.last?.id == "y")
        #expect(h.sink.scores.last?.nPreds == 1, "what came within the window is scored alone")
        // Scored with its time of scoring, not of arrival (no ts given).
        #expect(h.sink.scores.last?.ts == h.clock.wall())
        #expect(h.core.pending.count == 3)
    }

    @Test func partialBatchIsLearntAfterTheMaximumDelay() {
        let h = CoreHarness {
            $0.batchSize = 64
            $0.maxBatchDelaySeconds = 2
        }
        for i in 0..<3 { h.pred("p\(i)", ["a": 0.3 + 0.1 * Double(i), "b": 0.5]) }
        for i in 0..<3 { h.label("p\(i)", Int8(i % 2)) }
        #expect(h.core.nextDeadline() <= h.clock.now + 2)
        h.advance(1.9)
        #expect(h.core.model.version == 0)
        #expect(h.core.batch.count == 3)
        h.advance(0.2)
        #expect(h.core.model.version == 1)
        #expect(h.core.batch.isEmpty)
        #expect(h.core.counters.labelled == 3)
        // Nothing waiting: no batch deadline.
        h.advance(10)
        #expect(h.core.model.version == 1)
    }

    @Test func pendingInstancesExpireAfterTheirTTLAndTheirLabelsAreUnmatched() {
        let h = CoreHarness { $0.pendingTTLSeconds = 10 }
        h.pred("old", ["a": 0.5, "b": 0.5])
        h.advance(5)
        h.pred("new", ["a": 0.5, "b": 0.5])
        h.advance(5.5)
        #expect(h.core.pending.expired == 1)
        #expect(h.core.pending.count == 1)
        h.label("old", 1)
        #expect(h.core.counters.unmatchedLabels == 1)
        h.advance(5)
        #expect(h.core.pending.expired == 2)
        #expect(h.core.pending.count == 0)
        let body = h.core.healthBody()
        #expect(body.expired == 2)
        #expect(body.accounting.balanced)
    }

    @Test func accountingBalancesOverEveryKindOfMessage() {
        let h = CoreHarness {
            $0.model.maxClassifiers = 3
            $0.batchSize = 4
        }
        for i in 0..<10 { h.pred("i\(i)", ["a": 0.1 * Double(i), "b": 0.5]) }
        for i in 0..<6 { h.label("i\(i)", Int8(i % 2)) }
        h.label("stranger", 1)                                     // unmatched
        h.pred("hist", ["a": 0.9, "b": 0.8], label: 1)             // history: learnt at once
        h.pred("many", ["c": 0.1, "d": 0.2, "e": 0.3])             // would exceed max_classifiers
        h.core.received()
        h.core.reject(DecodeError("not JSON", kind: "json", topic: "pred", id: nil))
        let body = h.core.healthBody()
        #expect(body.received == 20)
        #expect(body.scored == 11)
        #expect(body.labelled == 7)
        #expect(body.unmatched_labels == 1)
        #expect(body.rejected_by_reason == ["limit": 1, "json": 1])
        #expect(body.pending == 4)
        #expect(body.accounting.balanced)
        #expect(h.core.model.classifierCount == 2, "a rejected message registers nothing")
        #expect(h.sink.errors.count == 2)
        #expect(h.core.model.version == 1)
    }

    /// A pred whose id is already pending is rejected as `duplicate` (its score stands,
    /// nothing is scored or registered again), and its one label is learnt; a `ping` is
    /// counted as such, never as an error, and the accounting balances.
    @Test func aDuplicateIdIsRejectedAndAPingIsCountedNotRejected() throws {
        let h = CoreHarness()
        h.pred("txn-1", ["a": 0.9, "b": 0.8])
        h.pred("txn-1", ["a": 0.1, "b": 0.2])
        h.pred("txn-1", ["a": 0.1, "c": 0.2])
        #expect(h.sink.scores.count == 1)
        #expect(h.core.pending.count == 1)
        #expect(h.core.model.classifierCount == 2, "a rejected duplicate registers nothing")
        let errors = h.sink.errors
        #expect(errors.count == 2 && errors.allSatisfy { $0.id == "txn-1" && $0.reason.contains("already scored and waiting for its label") })
        h.label("txn-1", 1)
        h.core.received()
        h.core.ping()
        h.core.received()
        h.core.ping()
        let body = h.core.healthBody()
        #expect(body.rejected_by_reason == ["duplicate": 2])
        #expect(body.accounting.pings == 2 && body.unmatched_labels == 0 && body.accounting.labels_learnt == 1)
        #expect(body.accounting.balanced, "\(body.accounting)")
        #expect(h.sink.errors.count == 2, "a ping is no error")
        // Once labelled, the id is free again (a new instance).
        h.pred("txn-1", ["a": 0.5, "b": 0.5])
        #expect(h.sink.scores.count == 2)
    }

    /// With model.allowed_classifiers, a pred naming another classifier is rejected and
    /// registers nothing; listed ones register as usual; a reload changes the list.
    @Test func onlyAllowedClassifiersAreRegistered() throws {
        let h = CoreHarness { $0.allowedClassifiers = ["a", "b"] }
        h.pred("ok", ["a": 0.5, "b": 0.4])
        h.pred("made-up", ["a": 0.5, "zz1": 0.4])
        #expect(h.core.model.registry.names == ["a", "b"])
        #expect(h.sink.scores.count == 1 && h.core.healthBody().rejected_by_reason == ["field": 1])
        #expect(h.sink.errors.last?.reason == "preds.zz1: classifier zz1 is not in model.allowed_classifiers")
        var reloaded = h.config
        reloaded.allowedClassifiers = ["a", "b", "zz1"]
        h.core.reconfigure(reloaded)
        h.pred("now", ["a": 0.5, "zz1": 0.4])
        #expect(h.core.model.registry.names == ["a", "b", "zz1"])
    }

    @Test func errorEventsAreRateLimited() {
        let h = CoreHarness { $0.errorRatePerSecond = 5 }
        for _ in 0..<20 {
            h.core.received()
            h.core.reject(DecodeError("bad", kind: "field", topic: "pred", id: nil))
        }
        #expect(h.sink.errors.count == 5)
        #expect(h.core.counters.errorsSuppressed == 15)
        h.advance(1)
        h.core.received()
        h.core.reject(DecodeError("bad", kind: "field", topic: "pred", id: nil))
        #expect(h.sink.errors.count == 6, "the bucket refills with time")
    }
}
