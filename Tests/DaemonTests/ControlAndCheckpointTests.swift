import Foundation
import Logging
import Testing
import Online
import Transport
import Wire
@testable import Daemon

/// The control server's commands and the checkpoint coordinator, in process: rollback,
/// its refusal, and `checkpoint` replies owed until the background write is durable.
@Suite struct ControlAndCheckpointTests {
    private func temporaryDirectory() throws -> String { try makeTemporaryDirectory(prefix: "cfe-core") }

    private func coordinator(_ h: CoreHarness, dir: String, writer: Bool) throws -> CheckpointCoordinator {
        let store = CheckpointStore(directory: dir, generations: 2)
        try store.prepare()
        let w = writer ? CheckpointWriter(store: store) : nil
        w?.start()
        return CheckpointCoordinator(store: store, writer: w, journal: nil, config: h.config, journalOfCheckpoint: nil,
                                     clock: h.clock, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
                                     metrics: DaemonMetrics())
    }

    private func reply(_ replies: CheckpointCoordinator.Replies) throws -> ControlReply {
        try WireJSON.decode(ControlReply.self, from: try #require(replies.first).reply)
    }

    private func train(_ h: CoreHarness, from: Int, count: Int, flip: Bool = false) {
        for i in from..<(from + count) { h.pred("t\(i)", ["a": i % 2 == 0 ? 0.9 : 0.1, "b": 0.3 + 0.01 * Double(i % 40)]) }
        for i in from..<(from + count) { h.label("t\(i)", Int8((i % 2 == 0) != flip ? 1 : 0)) }
    }

    /// A leader whose lease may have lapsed (`mayCheckpoint` false) writes no periodic
    /// checkpoint: the due one waits a second at a time (so the loop does not spin on a
    /// past deadline) and is written once it may be.
    @Test func aDueCheckpointWaitsWhileCheckpointingIsNotAllowed() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let h = CoreHarness { $0.batchSize = 8; $0.stateDir = dir; $0.checkpointIntervalSeconds = 10 }
        let c = try coordinator(h, dir: dir, writer: false)
        c.start(now: h.clock.monotonic(), journal: false)
        train(h, from: 0, count: 16)
        h.advance(11)
        var now = h.clock.monotonic()
        _ = c.tick(now: now, core: h.core, mayCheckpoint: false)
        #expect(c.nextDeadline == now + 1)
        #expect(c.persistenceNow(journal: nil).last_checkpoint == nil)
        h.advance(1)
        now = h.clock.monotonic()
        _ = c.tick(now: now, core: h.core, mayCheckpoint: true)
        #expect(c.persistenceNow(journal: nil).last_checkpoint != nil)
        #expect(c.nextDeadline == now + 10)
    }

    @Test func rollbackRestoresTheLastHealthyModelAsTheNextVersionCoveringNewClassifiers() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let h = CoreHarness { $0.batchSize = 8; $0.stateDir = dir }
        let c = try coordinator(h, dir: dir, writer: false)
        let server = ControlServer.self
        guard case let .failure(none) = server.rollback(core: h.core, coordinator: c, logger: Logger(label: "t")) else {
            Issue.record("rolled back with no healthy model"); return
        }
        #expect(none.description.contains("no healthy model"))

        train(h, from: 0, count: 16)
        let healthy = try #require(h.core.health.lastHealthy)
        #expect(healthy.version == 2)
        // A new classifier and more learning after the healthy snapshot was kept... under a
        // critical condition (so no newer healthy snapshot is kept).
        for i in 0..<1000 { h.pred("c\(i)", ["a": 0.5, "b": 0.5]) }
        h.advance(25)
        #expect(h.core.health.criticalFiring)
        h.pred("d1", ["a": 0.4, "b": 0.5, "d": 0.6])
        train(h, from: 100, count: 8, flip: true)
        let before = h.core.model.version
        #expect(before == 3)

        guard case let .success(version) = server.rollback(core: h.core, coordinator: c, logger: Logger(label: "t")) else {
            Issue.record("rollback refused"); return
        }
        #expect(version == before + 1)
        #expect(h.core.model.version == before + 1)
        #expect(h.core.model.registry.names == ["a", "b", "d"])
        #expect(h.core.model.aggregator.w[0] == healthy.aggregator.w[0])
        #expect(h.core.model.aggregator.w[1] == healthy.aggregator.w[1])
        // Durable before the reply: the checkpoint holds the rolled-back model.
        let cp = try CheckpointStore(directory: dir).read()
        #expect(cp?.head.model.version == version)
        // The pending instance with classifier d is learnt without reading past the model.
        h.label("d1", 1)
        h.core.update()
        #expect(h.core.model.version == version + 1)
    }

    @Test func rollbackIsRefusedAndTheModelKeptWhenItsCheckpointCannotBeWritten() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let h = CoreHarness { $0.batchSize = 8; $0.stateDir = dir }
        let c = try coordinator(h, dir: dir, writer: false)
        train(h, from: 0, count: 16)
        train(h, from: 16, count: 8)
        let version = h.core.model.version
        // The checkpoint's temporary file cannot be created: a directory is in its way.
        try FileManager.default.createDirectory(atPath: dir + "/checkpoint.cfe.tmp", withIntermediateDirectories: true)
        guard case let .failure(why) = ControlServer.rollback(core: h.core, coordinator: c, logger: Logger(label: "t")) else {
            Issue.record("rollback answered ok without a durable checkpoint"); return
        }
        #expect(why.description.contains("model is unchanged"))
        #expect(h.core.model.version == version)
    }

    @Test func checkpointRepliesAreOwedUntilTheBackgroundWriteIsDurable() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let h = CoreHarness { $0.batchSize = 4; $0.stateDir = dir }
        let c = try coordinator(h, dir: dir, writer: true)
        defer { c.writer?.stop() }
        c.start(now: h.clock.now, journal: false)
        train(h, from: 0, count: 8)
        for i in 0..<5 { h.pred("p\(i)", ["a": 0.2, "b": 0.4]) }

        let first = c.request(from: Array("one".utf8), core: h.core)
        #expect(first.isEmpty, "answered before the write was durable")
        #expect(c.inFlight)
        let second = c.request(from: Array("two".utf8), core: h.core)
        #expect(second.isEmpty)
        c.writer?.waitIdle()
        // The first is answered with its write; the second's write starts now.
        let afterFirst = c.tick(now: h.clock.now, core: h.core)
        #expect(afterFirst.map { String(decoding: $0.client, as: UTF8.self) } == ["one"])
        let r1 = try reply(afterFirst)
        #expect(r1.ok == true && r1.model_version == 2 && (r1.bytes ?? 0) > 0)
        c.writer?.waitIdle()
        let afterSecond = c.tick(now: h.clock.now, core: h.core)
        #expect(afterSecond.map { String(decoding: $0.client, as: UTF8.self) } == ["two"])
        let cp = try #require(try CheckpointStore(directory: dir).read())
        #expect(cp.pending.count == 5)
        #expect(c.persistenceNow(journal: nil).checkpoints_written == 2)

        // At shutdown every owed reply gets the final checkpoint's outcome.
        _ = c.request(from: Array("three".utf8), core: h.core)
        let owed = c.answerOwed(finalBytes: 123, error: nil, modelVersion: 9)
        c.writer?.waitIdle()
        #expect(owed.map { String(decoding: $0.client, as: UTF8.self) } == ["three"])
        #expect(try reply(owed).model_version == 9)
    }

    @Test func periodicCheckpointsFollowTheIntervalOnTheManualClock() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let h = CoreHarness { $0.checkpointIntervalSeconds = 30; $0.stateDir = dir }
        let c = try coordinator(h, dir: dir, writer: false)
        c.start(now: h.clock.now, journal: false)
        #expect(c.nextDeadline == h.clock.now + 30)
        h.clock.advance(by: 29)
        _ = c.tick(now: h.clock.now, core: h.core)
        #expect(c.persistenceNow(journal: nil).checkpoints_written == 0)
        h.clock.advance(by: 1)
        _ = c.tick(now: h.clock.now, core: h.core)
        #expect(c.persistenceNow(journal: nil).checkpoints_written == 1)
        // A reload that keeps the interval does not move the next one.
        c.intervalChanged(to: 30, now: h.clock.now + 10)
        #expect(c.nextDeadline == h.clock.now + 30)
        c.intervalChanged(to: 10, now: h.clock.now + 5)
        #expect(c.nextDeadline == h.clock.now + 10)
    }

    @Test func controlRequestsAreParsedOrRefusedWithAReason() {
        #expect(ControlRequest.parse([Array(#"{"cmd":"status"}"#.utf8)]) == .command(.status))
        #expect(ControlRequest.parse([Array(#"{"cmd":"rollback"}"#.utf8)]) == .command(.rollback))
        #expect(ControlRequest.parse([Array("nope".utf8)]) == .invalid("request is not a JSON object"))
        #expect(ControlRequest.parse([Array(#"{"x":1}"#.utf8)]) == .invalid(#"missing "cmd" (status, checkpoint, rollback, pin_reference)"#))
        #expect(ControlRequest.parse([Array(#"{"cmd":"dance"}"#.utf8)]) == .invalid("unknown command 'dance' (status, checkpoint, rollback, pin_reference)"))
        #expect(ControlRequest.parse([[], []]) == .invalid("expected one frame holding a JSON object, got 2 frames"))
    }
}
