import Foundation
import Online
import Wire

/// What changed the learner's state since the last checkpoint, appended as it happens:
/// classifiers registered, instances becoming pending, pending instances taken by their
/// label or expired, labels learnt, where each mini-batch update fell, and the counters
/// before each flush. After a crash the daemon restores the last
/// checkpoint and replays the journal files written since, so that labels and pending
/// instances received after it are not lost.
///
/// Files `journal.<n>.cfe` in the state directory; each checkpoint starts a new one
/// and records its number. Records: u32 payload length, u8 kind, payload, u32 check
/// of kind and payload; a torn last record (a crash mid-write) ends the replay there.
/// Records are buffered and written every `state.journal_flush_ms` or 64 KiB: a process
/// crash loses at most that interval; a `JournalSyncer` fdatasyncs the file every
/// `state.journal_fsync_ms`, which bounds what a power loss costs.
final class Journal {
    enum Record: Equatable {
        /// An instance became pending (or was merged into one with the same id).
        case pending(id: String, PendingInstance)
        /// A pending instance was taken by its label.
        case taken(id: String)
        /// A labelled instance joined the mini-batch; `scored`: it was also scored (or
        /// observed) here just before, which taught the classifier factors (replay
        /// observes it again). A label that took a pending instance is not: the
        /// instance was observed when it became pending.
        case learnt(LabelledInstance, scored: Bool)
        /// The mini-batch so far was learnt (one model update).
        case update
        /// A classifier seen for the first time was registered (in this order).
        case classifier(name: String)
        /// The counters as of this point (appended before each flush when they changed),
        /// so that a restart after a crash answers the counters it answered before.
        case counters(Counters, evicted: UInt64, expired: UInt64)
        /// Pending instances older than the time to live at `now` were dropped.
        case expire(now: Double)
        /// The health supervisor's state (a `DurableHealth` without scores and model, as
        /// JSON): appended when an alert changes state, and at most once a second
        /// otherwise when it changed.
        case health([UInt8])
        /// The model as of this point is the last healthy one (after an update with no
        /// critical condition firing): replay keeps a snapshot of it.
        case healthyModel
        /// A labelled instance entered the quality window: its score, the simple average
        /// and the probability published at scoring time (NaN in records of earlier builds).
        case quality(score: Float, baseline: Float, probability: Float, label: Int8)
    }

    enum Kind: UInt8 {
        case pending = 1, taken = 2, learnt = 3, update = 4, classifier = 5, scoredLearnt = 6, counters = 7, expire = 8
        case health = 9, healthyModel = 10, quality = 11
    }

    let directory: String
    /// The file being appended to.
    private(set) var number: UInt64
    private var currentPath = ""
    private var fd: Int32 = -1
    /// Records waiting to be written: a buffer of the writer's (allocated once for the
    /// daemon's life), filled in place, so that journalling a pred allocates nothing.
    private let capacity = 1 << 20
    private var storage: UnsafeMutableRawPointer
    /// Writes the filled buffers on its own thread once started (`BackgroundThreads`);
    /// until then on the caller's.
    let writer: JournalWriter
    private var used = 0
    /// Bytes appended to the current file (written or buffered).
    private(set) var bytes = 0
    /// Set when a write failed; appends stop until the next rotation succeeds.
    private(set) var failure: String?

    static func path(_ directory: String, _ n: UInt64) -> String { directory + "/journal.\(n).cfe" }

    /// The journal files present, oldest first.
    static func files(in directory: String) -> [(number: UInt64, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> (UInt64, String)? in
            guard name.hasPrefix("journal."), name.hasSuffix(".cfe"),
                  let n = UInt64(name.dropFirst("journal.".count).dropLast(".cfe".count)) else { return nil }
            return (n, directory + "/" + name)
        }.sorted { $0.0 < $1.0 }
    }

    /// fdatasyncs the files every `syncInterval` seconds in the background (nil: never);
    /// its thread is started by its owner (`BackgroundThreads`).
    let syncer: JournalSyncer?

    /// Starts a new file numbered after every one present; `syncInterval` 0 never syncs.
    init(directory: String, syncInterval: Double = 0) throws(CheckpointError) {
        self.directory = directory
        number = (Self.files(in: directory).last?.number ?? 0) + 1
        writer = JournalWriter(bufferSize: capacity)
        storage = writer.first
        syncer = syncInterval > 0 ? JournalSyncer(interval: syncInterval) : nil
        try open()
    }

    deinit {
        close()
    }

    /// Writes what is buffered, syncs it (if syncing) and closes the file. The syncer
    /// stops even when the file is already gone (a rotation that could not open the next).
    func close() {
        if fd >= 0 { flush() }
        // Everything handed over reaches the file before the last sync.
        writer.drain()
        syncer?.stop()
        if fd >= 0 { writer.close(fd, path: currentPath) }
        writer.stop()
        fd = -1
    }

    private func open() throws(CheckpointError) {
        let p = Self.path(directory, number)
        currentPath = p
        fd = Foundation.open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CheckpointError("cannot create \(p): \(String(cString: strerror(errno)))") }
        bytes = 0
        if let syncer {
            let copy = dup(fd)
            if copy >= 0 { syncer.adopt(copy) }
        }
    }

    // MARK: Appending (event loop thread)

    /// Writes fields at increasing offsets (little-endian, unaligned).
    private struct Cursor {
        let base: UnsafeMutableRawPointer
        var offset = 0

        mutating func put<T: FixedWidthInteger>(_ v: T) {
            base.storeBytes(of: v.littleEndian, toByteOffset: offset, as: T.self)
            offset += MemoryLayout<T>.size
        }
        mutating func put(_ v: Double) { put(v.bitPattern) }
        mutating func put(_ v: Float) { put(v.bitPattern) }
        mutating func put(_ bytes: [UInt8]) {
            put(UInt32(bytes.count))
            bytes.withUnsafeBytes { raw in
                if let src = raw.baseAddress { (base + offset).copyMemory(from: src, byteCount: raw.count) }
            }
            offset += bytes.count
        }
        mutating func put(_ s: String) {
            var s = s
            s.withUTF8 { utf8 in
                put(UInt32(utf8.count))
                if let src = utf8.baseAddress { (base + offset).copyMemory(from: src, byteCount: utf8.count) }
                offset += utf8.count
            }
        }
        /// The layout of `ByteWriter.append(entries:)`, read back by `ByteReader.readEntries`.
        mutating func put(_ entries: [Entry]) {
            put(UInt16(entries.count))
            for e in entries {
                put(e.classifier)
                put(e.value)
            }
        }
    }

    private static func payloadSize(_ r: Record) -> Int {
        switch r {
        case let .pending(id, instance): 4 + id.utf8.count + 20 + 2 + 6 * instance.entries.count
        case let .taken(id): 4 + id.utf8.count
        case let .learnt(instance, _): 1 + 2 + 6 * instance.entries.count
        case .update: 0
        case let .classifier(name): 4 + name.utf8.count
        case let .counters(c, _, _): 13 * 8 + 2 + c.rejected.reduce(0) { $0 + 4 + $1.key.utf8.count + 8 } + 8
        case .expire: 8
        case let .health(bytes): 4 + bytes.count
        case .healthyModel: 0
        case .quality: 13
        }
    }

    func append(_ r: Record) {
        guard failure == nil else { return }
        let need = 9 + Self.payloadSize(r)
        if used + need > capacity {
            flush()
            guard need <= capacity, failure == nil else { return }
        }
        let at = storage + used
        var c = Cursor(base: at + 5)
        let kind: Kind
        switch r {
        case let .pending(id, instance):
            kind = .pending
            c.put(id)
            c.put(instance.arrival)
            c.put(instance.score)
            c.put(instance.average)
            c.put(instance.entries)
            // Fields added later follow (absent in records of earlier builds).
            c.put(instance.probability)
        case let .taken(id):
            kind = .taken
            c.put(id)
        case let .learnt(instance, scored):
            kind = scored ? .scoredLearnt : .learnt
            c.put(instance.label)
            c.put(instance.entries)
        case .update:
            kind = .update
        case let .classifier(name):
            kind = .classifier
            c.put(name)
        case let .counters(counters, evicted, expired):
            kind = .counters
            for v in [counters.received, counters.scored, counters.labelled, counters.unmatchedLabels, counters.errorsSuppressed,
                      counters.joinOverflow, counters.updates, counters.predMessages, counters.labelMessages,
                      counters.labelsForwarded, counters.forwardDropped, evicted, expired] {
                c.put(v)
            }
            c.put(UInt16(counters.rejected.count))
            for (reason, n) in counters.rejected.sorted(by: { $0.key < $1.key }) {
                c.put(reason)
                c.put(n)
            }
            // Fields added later follow (absent in records of earlier builds).
            c.put(counters.pings)
        case let .expire(now):
            kind = .expire
            c.put(now)
        case let .health(bytes):
            kind = .health
            c.put(bytes)
        case .healthyModel:
            kind = .healthyModel
        case let .quality(score, baseline, probability, label):
            kind = .quality
            c.put(score)
            c.put(baseline)
            c.put(label)
            c.put(probability)
        }
        at.storeBytes(of: UInt32(c.offset).littleEndian, as: UInt32.self)
        at.storeBytes(of: kind.rawValue, toByteOffset: 4, as: UInt8.self)
        let sum = Self.checksum(UnsafeRawPointer(at + 4), count: 1 + c.offset)
        at.storeBytes(of: sum.littleEndian, toByteOffset: 5 + c.offset, as: UInt32.self)
        used += 9 + c.offset
        bytes += 9 + c.offset
        if used >= 1 << 16 { flush() }
    }

    /// A 32-bit check of the kind byte and the payload (FNV-1a style, 8 bytes a step).
    static func checksum(_ p: UnsafeRawPointer, count n: Int) -> UInt32 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        var i = 0
        while i + 8 <= n {
            h = (h ^ p.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x100_0000_01b3
            h ^= h >> 29
            i += 8
        }
        while i < n {
            h = (h ^ UInt64(p.load(fromByteOffset: i, as: UInt8.self))) &* 0x100_0000_01b3
            i += 1
        }
        return UInt32(truncatingIfNeeded: h ^ (h >> 32))
    }

    /// Hands what is buffered to the writer (no fsync), and learns whether an earlier
    /// write failed.
    func flush() {
        if failure == nil, let f = writer.takeFailure() { failure = f }
        guard used > 0, failure == nil else { return }
        storage = writer.submit(storage, count: used, fd: fd, path: currentPath)
        used = 0
    }

    /// Flushes and starts the next file; returns its number, which the checkpoint taken
    /// at this moment records (replay starts there).
    func rotate() throws(CheckpointError) -> UInt64 {
        flush()
        // After a failure, what reached the file is known once the writer has done.
        if failure != nil { writer.drain() }
        var st = stat()
        if bytes == 0 || failure != nil, fd >= 0, fstat(fd, &st) == 0, st.st_size == 0 {
            // Nothing reached this file since it was started (or every write failed since,
            // e.g. on a full disk): the checkpoint starts from it, so a run of checkpoints,
            // failing or not, leaves no trail of empty files.
            failure = nil
            bytes = 0
            writer.retry(fd)
            return number
        }
        writer.close(fd, path: currentPath)
        fd = -1
        number += 1
        failure = nil
        try open()
        return number
    }

    /// Deletes the files numbered below `n` (covered by a durable checkpoint), on the
    /// writer's thread once it runs.
    func removeFiles(before n: UInt64) {
        for f in Self.files(in: directory) where f.number < n { writer.remove(f.path) }
    }

    // MARK: Replay

    /// What a replay did, for the log.
    struct ReplaySummary {
        var files = 0, records = 0, labelsLearnt = 0, updates = 0
        /// Instances naming a classifier the model does not have (not replayed).
        var unusable = 0
        /// Missing files and damaged or torn records, each a sentence.
        var problems: [String] = []
        /// The replay stopped before the end (a torn or damaged record, a missing or
        /// unreadable file): what follows the gap was not applied.
        var stopped = false
    }

    /// Applies the files numbered `from` on, oldest first, to the state restored from
    /// the checkpoint that started file `from` (or to a fresh state, with `from` 0):
    /// the same classifiers, pending instances, mini-batch and updates as before the crash.
    ///
    /// Records are read and applied one at a time (`JournalReader`). Each record depends
    /// on those before it, so the replay stops at the first torn or damaged record, or
    /// missing file, and ignores everything after it, in later files too.
    /// Arrival times after `now` (the wall clock went back since) are taken as `now`.
    static func replay(directory: String, from: UInt64, afterCheckpoint: Bool, now: Double = .infinity,
                       into state: inout RestoredState) -> ReplaySummary {
        var summary = ReplaySummary()
        let files = Self.files(in: directory).filter { $0.number >= from }
        var expected = afterCheckpoint ? from : (files.first?.number ?? from)
        for (k, file) in files.enumerated() {
            let later = files.count - k - 1
            let ignored = later > 0 ? "; the \(later) later file(s) are not replayed" : ""
            guard file.number == expected else {
                summary.problems.append("journal file \(expected) is missing; replay stopped, files \(file.number) and later (\(later + 1)) not replayed")
                summary.stopped = true
                break
            }
            expected += 1
            let reader: JournalReader
            do { reader = try JournalReader(path: file.path) } catch {
                summary.problems.append(error.description + ignored)
                summary.stopped = true
                break
            }
            while let record = reader.next() {
                apply(record, now: now, state: &state, summary: &summary)
            }
            summary.files += 1
            summary.records += reader.records
            if let problem = reader.problem {
                summary.problems.append("replay stopped: " + problem + ignored)
                summary.stopped = true
                break
            }
        }
        if summary.unusable > 0 {
            summary.problems.append("\(summary.unusable) instance(s) name a classifier the model does not have; not replayed")
        }
        return summary
    }

    private static func apply(_ record: Record, now: Double, state: inout RestoredState, summary: inout ReplaySummary) {
        let model = state.model
        let known = model.classifierCount
        switch record {
        case let .classifier(name):
            _ = model.classifier(named: name)
        case let .pending(id, instance) where instance.entries.allSatisfy({ Int($0.classifier) < known }):
            // Scoring it taught the classifier factors (unlabelled learning): again.
            model.observe(instance.entries)
            var instance = instance
            instance.arrival = min(instance.arrival, now)
            state.pending.insert(id: id, instance)
            // The health supervisor keeps the last window of them; this bounds the list meanwhile.
            let window = HealthSupervisor.recentScoreWindow
            if state.health.recentScores == nil { state.health.recentScores = [] }
            state.health.recentScores!.append(Double(instance.score))
            if state.health.recentScores!.count >= 2 * window { state.health.recentScores!.removeFirst(window) }
            state.health.drift?.record(instance.entries, score: Double(instance.score),
                                       probability: state.calibrator.calibration.fitted ? Double(instance.probability) : .nan)
        case .pending:
            summary.unusable += 1
        case let .taken(id):
            _ = state.pending.take(id)
        case let .learnt(instance, scored) where instance.entries.allSatisfy({ Int($0.classifier) < known }):
            if scored { model.observe(instance.entries) }
            state.batch.append(instance)
            state.counters.labelled &+= 1
            state.health.negativesInARow = instance.label == 1 ? 0 : state.health.negativesInARow + 1
            summary.labelsLearnt += 1
        case .learnt:
            summary.unusable += 1
        case .update:
            // The calibrator is refitted with every update, on what it had recorded by then.
            state.calibrator.install(state.calibrator.fit().run())
            if !state.batch.isEmpty {
                model.update(state.batch)
                state.batch.removeAll(keepingCapacity: true)
                state.counters.updates &+= 1
                summary.updates += 1
            }
        case let .counters(recorded, evicted, expired):
            state.counters = recorded
            state.pending.restoreCounters(evicted: evicted, expired: expired)
        case let .expire(at):
            _ = state.pending.expire(now: at)
        case let .health(bytes):
            guard let recorded = try? WireJSON.decode(DurableHealth.self, from: bytes) else {
                summary.problems.append("a health record does not decode; the health state before it is kept")
                return
            }
            // The run of negatives is counted from the learnt records; the scores and
            // the healthy model come from their own records.
            state.health.monitor = recorded.monitor
            state.health.silentFor = recorded.silentFor
        case .healthyModel:
            state.health.lastHealthy = model.snapshot()
        case let .quality(score, baseline, probability, label):
            state.quality.record(score: Double(score), baseline: Double(baseline), probability: Double(probability), label: label)
            state.calibrator.record(score: Double(score), average: Double(baseline), label: label)
        }
    }

    /// The records of one file in order, and why reading stopped early (a torn or
    /// damaged record), if it did. For tools and tests: replay streams instead.
    static func read(_ path: String) -> (records: [Record], problem: String?) {
        let reader: JournalReader
        do { reader = try JournalReader(path: path) } catch { return ([], error.description) }
        var out: [Record] = []
        while let r = reader.next() { out.append(r) }
        return (out, reader.problem)
    }

    /// One record's payload, as `append` wrote it; nil when it does not parse.
    static func decode(kind: Kind, payload: [UInt8]) -> Record? {
        var p = ByteReader(payload)
        do {
            let record: Record
            switch kind {
            case .pending:
                let id = try p.readString()
                let arrival = try p.readDouble(), score = try p.readFloat(), average = try p.readFloat()
                let entries = try p.readEntries()
                let probability = p.remaining >= 4 ? try p.readFloat() : .nan
                record = .pending(id: id, PendingInstance(entries: entries, arrival: arrival, score: Double(score), average: Double(average),
                                                          probability: Double(probability)))
            case .taken:
                record = .taken(id: try p.readString())
            case .learnt, .scoredLearnt:
                let label = try p.read(Int8.self)
                record = .learnt(LabelledInstance(entries: try p.readEntries(), label: label), scored: kind == .scoredLearnt)
            case .update:
                record = .update
            case .classifier:
                record = .classifier(name: try p.readString())
            case .counters:
                var v: [UInt64] = []
                for _ in 0..<13 { v.append(try p.read(UInt64.self)) }
                var c = Counters()
                (c.received, c.scored, c.labelled, c.unmatchedLabels, c.errorsSuppressed, c.joinOverflow) = (v[0], v[1], v[2], v[3], v[4], v[5])
                (c.updates, c.predMessages, c.labelMessages, c.labelsForwarded, c.forwardDropped) = (v[6], v[7], v[8], v[9], v[10])
                let reasons = Int(try p.read(UInt16.self))
                for _ in 0..<reasons {
                    let reason = try p.readString()
                    c.rejected[reason] = try p.read(UInt64.self)
                }
                if p.remaining >= 8 { c.pings = try p.read(UInt64.self) }
                record = .counters(c, evicted: v[11], expired: v[12])
            case .expire:
                record = .expire(now: try p.readDouble())
            case .health:
                let n = Int(try p.read(UInt32.self))
                record = .health(Array(try p.readBytes(n)))
            case .healthyModel:
                record = .healthyModel
            case .quality:
                let score = try p.readFloat(), baseline = try p.readFloat(), label = try p.read(Int8.self)
                let probability = p.remaining >= 4 ? try p.readFloat() : .nan
                record = .quality(score: score, baseline: baseline, probability: probability, label: label)
            }
            return p.remaining == 0 ? record : nil
        } catch {
            return nil
        }
    }
}
