import Foundation
import Online
import Testing
@testable import Daemon

@Suite struct CheckpointTests {
    private func sample() -> Checkpoint {
        let model = CFEnsemble(config: ModelConfiguration())
        for name in ["xgb", "rf", "lr"] { _ = model.classifier(named: name) }
        model.update([LabelledInstance(entries: [Entry(classifier: 0, value: 0.9), Entry(classifier: 2, value: 0.7)], label: 1),
                      LabelledInstance(entries: [Entry(classifier: 1, value: 0.2)], label: 0)])
        var counters = Counters()
        counters.scored = 7
        counters.rejected = ["json": 2]
        var quality = RollingQuality(window: 10)
        quality.record(score: 0.7, baseline: 0.6, label: 1)
        let pending = (0..<100).map { i in
            Checkpoint.PendingRecord(id: "txn-\(i)-é", instance: PendingInstance(
                entries: (0..<(i % 3 + 1)).map { Entry(classifier: $0, value: Double(i) / 100) },
                arrival: 1764300000 + Double(i), score: 0.5, average: 0.25))
        }
        return Checkpoint(head: .init(writtenAt: 1, model: model.snapshot(), evicted: 3, expired: 4, counters: counters,
                                      quality: quality), pending: pending)
    }

    private func store() throws -> CheckpointStore {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfe-ckpt-\(UUID().uuidString.prefix(8))").path
        let s = CheckpointStore(directory: dir)
        try s.prepare()
        return s
    }

    /// The writer runs one write at a time on its thread: a second submit while the first
    /// is in progress is refused, waitIdle returns once it is durable, and its outcome
    /// reaches the engine.
    @Test func backgroundWriterWritesOneAtATime() throws {
        let s = try store()
        defer { try? FileManager.default.removeItem(atPath: s.directory) }
        let writer = CheckpointWriter(store: s)
        writer.start()
        let release = DispatchSemaphore(value: 0)
        let cp = sample()
        #expect(writer.submit { release.wait(); return cp })
        #expect(writer.isBusy)
        #expect(!writer.submit { cp })
        #expect(try s.read() == nil)
        release.signal()
        writer.waitIdle()
        #expect(!writer.isBusy)
        let outcomes = writer.takeOutcomes()
        #expect(outcomes.count == 1 && outcomes[0].bytes != nil && outcomes[0].pending == 100)
        #expect(try s.read()?.pending.map(\.id) == cp.pending.map(\.id))
        #expect(writer.takeOutcomes().isEmpty)
        // A failing write is reported, not thrown away.
        try FileManager.default.removeItem(atPath: s.directory)
        #expect(writer.submit { cp })
        writer.waitIdle()
        let failed = writer.takeOutcomes()
        #expect(failed.count == 1 && failed[0].bytes == nil && failed[0].error?.contains("cannot create") == true)
        writer.stop()
        #expect(!writer.submit { cp })
    }

    /// The writer's thread runs at the lowest priority (SCHED_IDLE, and nice 19; on Linux
    /// a thread's own), so that a large write takes idle CPU rather than the event loop's.
    @Test func theWriterThreadRunsBelowTheEventLoop() throws {
        #if os(Linux)
        let s = try store()
        defer { try? FileManager.default.removeItem(atPath: s.directory) }
        let writer = CheckpointWriter(store: s)
        writer.start()
        defer { writer.stop() }
        let seen = NSLock()
        nonisolated(unsafe) var nice: Int32 = -100
        nonisolated(unsafe) var policy: Int32 = -100
        let callers = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        let callersPolicy = sched_getscheduler(0)
        let cp = sample()
        #expect(writer.submit {
            let n = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0), p = sched_getscheduler(0)
            seen.withLock { nice = n; policy = p }
            return cp
        })
        writer.waitIdle()
        #expect(seen.withLock { nice } == 19)
        #expect(seen.withLock { policy } == CheckpointWriter.schedIdle)
        #expect(getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) == callers, "the caller's thread keeps its own")
        #expect(sched_getscheduler(0) == callersPolicy)
        #endif
    }

    /// Every record kind round-trips in order across a rotation; a cut-short last record
    /// ends the replay with a reason; a damaged one stops it there; old files go.
    @Test func journalRoundTripsAndStopsAtDamage() throws {
        let s = try store()
        defer { try? FileManager.default.removeItem(atPath: s.directory) }
        let j = try Journal(directory: s.directory)
        let first = j.number
        let records: [Journal.Record] = [
            .classifier(name: "xgb-é"),
            .pending(id: "a", PendingInstance(entries: [Entry(classifier: 0, value: 0.25), Entry(classifier: 3, value: 0.75)],
                                              arrival: 1764300000.5, score: 0.5, average: 0.25)),
            .taken(id: "a"),
            .learnt(LabelledInstance(entries: [Entry(classifier: 0, value: 0.25)], label: 1), scored: false),
            .learnt(LabelledInstance(entries: [Entry(classifier: 3, value: 0.5)], label: 0), scored: true),
            .counters({ var c = Counters(); c.received = 9; c.scored = 5; c.rejected = ["json": 2, "topic": 1]; c.forwardDropped = 7; return c }(),
                      evicted: 3, expired: 4),
            .expire(now: 1764300001.25),
            .update,
        ]
        for r in records { j.append(r) }
        let second = try j.rotate()
        #expect(second == first + 1)
        for r in records.reversed() { j.append(r) }
        j.flush()
        #expect(Journal.files(in: s.directory).map(\.number) == [first, second])
        #expect(Journal.read(Journal.path(s.directory, first)) == (records, nil))
        #expect(Journal.read(Journal.path(s.directory, second)).records == records.reversed())

        // Torn tail: the records before it, and a reason.
        let path = Journal.path(s.directory, second)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try (bytes + Data([9, 0, 0, 0, 3])).write(to: URL(fileURLWithPath: path))
        let torn = Journal.read(path)
        #expect(torn.records == records.reversed() && torn.problem?.contains("torn record") == true)
        // A flipped byte in the second record: only the first survives.
        bytes[14] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))
        let damaged = Journal.read(path)
        #expect(damaged.records == [records.last!] && damaged.problem?.contains("damaged record") == true)

        j.removeFiles(before: second)
        #expect(Journal.files(in: s.directory).map(\.number) == [second])
        // A new journal continues the numbering.
        #expect(try Journal(directory: s.directory).number == second + 1)
    }

    /// With its writer thread started (as the daemon runs it), the journal's records reach
    /// their files in order across rotations and many buffer hand-overs (more than the
    /// writer's buffers hold at once), and everything is on disk once it is closed.
    /// (Removing what a checkpoint covers is queued on the same thread.)
    @Test func theWriterThreadWritesEveryRecordInOrder() throws {
        let s = try store()
        defer { try? FileManager.default.removeItem(atPath: s.directory) }
        let j = try Journal(directory: s.directory)
        j.writer.start()
        var written: [[Journal.Record]] = [[]]
        for i in 0..<60_000 {
            let r = Journal.Record.pending(id: "txn-\(i)", PendingInstance(
                entries: (0..<(i % 7 + 1)).map { Entry(classifier: $0, value: Double(i % 101) / 101) },
                arrival: 1764300000 + Double(i), score: 0.5, average: 0.25))
            j.append(r)
            written[written.count - 1].append(r)
            if i % 5_000 == 4_999 { j.flush() }
            if i == 25_000 || i == 50_000 {
                _ = try j.rotate()
                written.append([])
            }
        }
        let numbers = [j.number - 2, j.number - 1, j.number]
        j.close()
        #expect(Journal.files(in: s.directory).map(\.number) == numbers)
        for (n, records) in zip(numbers, written) {
            let back = Journal.read(Journal.path(s.directory, n))
            #expect(back.problem == nil && back.records == records, "file \(n): \(back.records.count) of \(records.count)")
        }
        // The files a checkpoint covers are deleted on the writer's thread, after the
        // writes queued before.
        let k = try Journal(directory: s.directory)
        k.writer.start()
        k.append(.update)
        _ = try k.rotate()
        k.append(.update)
        k.flush()
        k.removeFiles(before: k.number)
        let last = k.number
        k.close()
        #expect(Journal.files(in: s.directory).map(\.number) == [last])
        #expect(Journal.read(Journal.path(s.directory, last)).records == [.update])
    }

    /// The reader streams a file larger than its window: every record, in order, across
    /// window boundaries; and a length field beyond any record is damage, not a wait.
    @Test func journalReaderStreamsPastItsWindow() throws {
        let s = try store()
        defer { try? FileManager.default.removeItem(atPath: s.directory) }
        let j = try Journal(directory: s.directory)
        let n = 60_000
        for i in 0..<n {
            j.append(.pending(id: "id-\(i)", PendingInstance(entries: [Entry(classifier: i % 7, value: 0.5)], arrival: Double(i),
                                                             score: 0.25, average: 0.5)))
        }
        j.flush()
        let path = Journal.path(s.directory, j.number)
        let reader = try JournalReader(path: path, windowBytes: 0)   // the minimum: one record's bound
        #expect(reader.size > 2 * JournalReader.maxRecordBytes)
        var k = 0
        while let r = reader.next() {
            guard case let .pending(id, instance) = r, id == "id-\(k)", instance.arrival == Double(k) else {
                Issue.record("record \(k) is \(r)")
                break
            }
            k += 1
        }
        #expect(k == n && reader.problem == nil && reader.records == n)

        // A huge length in the middle: damage, reported, nothing after it.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let cut = 5_000 * 33
        bytes.replaceSubrange(cut..<(cut + 4), with: [0xFF, 0xFF, 0xFF, 0x7F])
        try bytes.write(to: URL(fileURLWithPath: path))
        let damaged = Journal.read(path)
        #expect(damaged.problem?.contains("damaged record") == true, "\(damaged.problem ?? "-")")
        #expect(damaged.records.count <= 5_000)
    }

    /// Records depend on the ones before them: a damaged record stops the replay, and
    /// the later files are not applied on top of the gap.
    @Test func replayStopsAtDamageAndSkipsLaterFiles() throws {
        let s = try store()
        defer { try? FileManager.default.removeItem(atPath: s.directory) }
        let j = try Journal(directory: s.directory)
        let first = j.number
        let instance = PendingInstance(entries: [Entry(classifier: 0, value: 0.5)], arrival: 1, score: 0.5, average: 0.5)
        j.append(.classifier(name: "a"))
        j.append(.pending(id: "p1", instance))
        j.append(.pending(id: "p2", instance))
        _ = try j.rotate()
        j.append(.pending(id: "p3", instance))
        j.close()
        func fresh() -> RestoredState {
            RestoredState(model: CFEnsemble(config: ModelConfiguration()), pending: PendingStore(capacity: 100, ttl: 1e9),
                          quality: RollingQuality(window: 100))
        }
        func replay() -> (PendingStore, Journal.ReplaySummary) {
            var state = fresh()
            let summary = Journal.replay(directory: s.directory, from: 0, afterCheckpoint: false, into: &state)
            return (state.pending, summary)
        }
        var (pending, summary) = replay()
        #expect(pending.count == 3 && summary.problems.isEmpty && summary.files == 2)

        // Damage the third record of the first file (p2).
        let path = Journal.path(s.directory, first)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 3] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))
        (pending, summary) = replay()
        #expect(pending.contains("p1") && !pending.contains("p2") && !pending.contains("p3"))
        #expect(summary.problems.count == 1)
        #expect(summary.problems.first?.contains("damaged record") == true)
        #expect(summary.problems.first?.contains("1 later file(s) are not replayed") == true, "\(summary.problems)")

        // A missing file in the middle stops the replay there too.
        unlink(path)
        var state2 = fresh()
        let s2 = Journal.replay(directory: s.directory, from: first, afterCheckpoint: true, into: &state2)
        #expect(state2.pending.count == 0 && s2.problems.first?.contains("journal file \(first) is missing") == true, "\(s2.problems)")
    }

    /// A rotation of a file nothing reached keeps it (a run of checkpoints, e.g. failing
    /// ones on a full disk, leaves no trail of empty files); one with records starts the next.
    @Test func rotatingAnEmptyJournalFileKeepsIt() throws {
        let s = try store()
        defer { try? FileManager.default.removeItem(atPath: s.directory) }
        let j = try Journal(directory: s.directory)
        let first = j.number
        #expect(try j.rotate() == first && (try j.rotate()) == first)
        #expect(Journal.files(in: s.directory).count == 1)
        j.append(.classifier(name: "a"))
        #expect(try j.rotate() == first + 1)
        #expect(Journal.files(in: s.directory).map(\.number) == [first, first + 1])
        j.close()
    }

    /// With syncing on, the journal is synced in the background across a rotation, and
    /// closing it ends the syncer (bounded) with every record readable.
    @Test(.timeLimit(.minutes(1)))
    func journalSyncsInTheBackgroundAndCloses() throws {
        let s = try store()
        defer { try? FileManager.default.removeItem(atPath: s.directory) }
        let syncer = JournalSyncer(interval: 0.01)
        syncer.start()
        let fd = open(s.directory + "/probe", O_WRONLY | O_CREAT, 0o600)
        syncer.adopt(dup(fd))
        close(fd)
        let deadline = Date().addingTimeInterval(5)
        while syncer.syncs < 3 && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        #expect(syncer.syncs >= 3)
        syncer.stop()   // returns (the test's time limit catches a hang)

        let j = try Journal(directory: s.directory, syncInterval: 0.01)
        j.syncer?.start()
        j.append(.taken(id: "x"))
        _ = try j.rotate()
        j.append(.update)
        j.close()
        let files = Journal.files(in: s.directory)
        #expect(files.count == 2)
        #expect(Journal.read(files[0].path).records == [.taken(id: "x")])
        #expect(Journal.read(files[1].path).records == [.update])
    }

    @Test func roundTrips() throws {
        let s = try store()
        defer { try? FileManager.default.removeItem(atPath: s.directory) }
        let cp = sample()
        try s.write(cp)
        let back = try #require(try s.read())
        #expect(back.head.model == cp.head.model)
        #expect(back.head.counters == cp.head.counters)
        #expect(back.head.quality == cp.head.quality)
        #expect(back.head.evicted == 3 && back.head.expired == 4)
        #expect(back.pending.map(\.id) == cp.pending.map(\.id))
        #expect(back.pending.map(\.instance) == cp.pending.map(\.instance))
        #expect(!FileManager.default.fileExists(atPath: s.path + ".tmp"))

        // The partial mini-batch round-trips; a head without one (earlier builds) reads as none.
        var withBatch = cp
        withBatch.head.batch = [LabelledInstance(entries: [Entry(classifier: 1, value: 0.25)], label: 1)]
        try s.write(withBatch)
        #expect(try s.read()?.head.batch == withBatch.head.batch)
        #expect(back.head.batch == nil)
    }

    /// A checkpoint larger than the writer's chunk is streamed a chunk at a time: the
    /// file is the header line (padded to its reserved width) and the payload, whose
    /// length and FNV-1a (computed here over the whole payload at once) the header
    /// states; it reads back whole, and so does the same file with the unpadded header
    /// earlier builds wrote.
    @Test func aLargeCheckpointIsStreamedInChunksAndReadsBack() throws {
        let s = try store()
        defer { try? FileManager.default.removeItem(atPath: s.directory) }
        var cp = sample()
        cp.pending = (0..<40_000).map { i in
            Checkpoint.PendingRecord(id: "txn-\(i)", instance: PendingInstance(
                entries: (0..<(i % 5 + 1)).map { Entry(classifier: $0, value: Double(i % 997) / 997) },
                arrival: 1764300000 + Double(i), score: 0.5, average: 0.25))
        }
        let size = try s.write(cp)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: s.path))
        #expect(size == bytes.count && bytes.count > 2 << 20, "more than two chunks of 1 MiB: \(bytes.count)")
        let nl = try #require(bytes.firstIndex(of: 0x0A))
        #expect(nl == CheckpointStore.headerWidth - 1)
        let fields = String(decoding: bytes[..<nl], as: UTF8.self).split(separator: " ")
        let payload = bytes[(nl + 1)...]
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in payload { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
        #expect(fields.count == 4 && fields[0] == "cfensembled-checkpoint" && fields[1] == "2")
        #expect(Int(fields[2]) == payload.count && UInt64(fields[3], radix: 16) == hash)
        let back = try #require(try s.read())
        #expect(back.pending.map(\.id) == cp.pending.map(\.id) && back.pending.map(\.instance) == cp.pending.map(\.instance))
        // The header as earlier builds wrote it (no padding).
        var old = Data("\(fields.joined(separator: " "))\n".utf8)
        old.append(payload)
        try old.write(to: URL(fileURLWithPath: s.path))
        #expect(try s.read()?.pending.map(\.instance) == cp.pending.map(\.instance))
    }

    /// A checkpoint written from the frozen store (rows lent as stored, as the daemon
    /// writes it) holds byte for byte the pending section written from the same
    /// instances as records,
    /// and reads back as the store held them: an instance with more entries than a row
    /// holds inline, a taken one and a probability among them.
    @Test func aCheckpointOfTheFrozenStoreIsTheSameFileAsOfItsRecords() throws {
        let s = try store()
        defer { try? FileManager.default.removeItem(atPath: s.directory) }
        var pending = PendingStore(capacity: 1000, ttl: 1e9)
        for i in 0..<300 {
            let n = i == 7 ? 20 : i % 4 + 1
            pending.insert(id: "r\(i)", PendingInstance(entries: (0..<n).map { Entry(classifier: $0, value: Double(i % 89) / 89) },
                                                        arrival: 1764300000 + Double(i), score: Double(i) / 300, average: 0.25,
                                                        probability: 0.01 * Double(i % 7)))
        }
        _ = pending.take("r3")
        _ = pending.take("r150")
        var frozen = sample()
        frozen.pending = []
        frozen.frozen = pending.frozen()
        try s.write(frozen)
        let fromRows = try Data(contentsOf: URL(fileURLWithPath: s.path))
        var records = sample()
        records.pending = pending.snapshot().map { Checkpoint.PendingRecord(id: $0.id, instance: $0.instance) }
        try s.write(records)
        let fromRecords = try Data(contentsOf: URL(fileURLWithPath: s.path))
        // The pending section: after the header line, the head's length and the head (JSON,
        // whose dictionaries need not come out in the same order twice).
        func pendingSection(_ file: Data) -> Data {
            let start = CheckpointStore.headerWidth
            let headLength = file[start..<(start + 4)].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            return file[(start + 4 + headLength)...]
        }
        #expect(pendingSection(fromRows) == pendingSection(fromRecords))
        #expect(pendingSection(fromRows).count > 298 * 40)
        let back = try #require(try s.read())
        #expect(back.pending.count == 298)
        #expect(back.pending.map(\.id) == records.pending.map(\.id))
        #expect(back.pending.map(\.instance) == records.pending.map(\.instance))
        #expect(back.pending.first { $0.id == "r7" }?.instance.entries.count == 20)
    }

    @Test func detectsCorruptionAndTruncation() throws {
        let s = try store()
        defer { try? FileManager.default.removeItem(atPath: s.directory) }
        try s.write(sample())
        var bytes = try Data(contentsOf: URL(fileURLWithPath: s.path))
        let original = bytes
        bytes[bytes.count - 10] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: s.path))
        #expect { try s.read() } throws: { ($0 as? CheckpointError)?.description.contains("checksum") == true }
        try original.prefix(original.count - 7).write(to: URL(fileURLWithPath: s.path))
        #expect { try s.read() } throws: { ($0 as? CheckpointError)?.description.contains("truncated") == true }
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: s.path))
        #expect { try s.read() } throws: { ($0 as? CheckpointError)?.description.contains("not a cfensembled checkpoint") == true }
        try FileManager.default.removeItem(atPath: s.path)
        #expect(try s.read() == nil)
    }
}
