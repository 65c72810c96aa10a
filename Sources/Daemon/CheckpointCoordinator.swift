import Foundation
import Logging
import Online
import Wire

/// When and how the state becomes durable: periodic checkpoints (handed to the writer
/// thread as a frozen copy, so scoring goes on), the ones the `checkpoint` command asks
/// for (answered once durable), the journal's flushes and its size limit, the journal
/// files a durable checkpoint makes redundant, and the view of all that in `status`.
final class CheckpointCoordinator {
    let store: CheckpointStore
    /// Writes in the background; nil on a scorer (no state) and in tests that want
    /// every write synchronous.
    let writer: CheckpointWriter?
    /// The journal whose files durable checkpoints make redundant.
    private let journal: Journal?
    private let logger: Logger
    private let metrics: DaemonMetrics
    private let clock: DaemonClock
    private var interval: Double
    private let journalFlushSeconds: Double
    private let journalMaxBytes: Int

    private(set) var inFlight = false
    /// Clients of `checkpoint` commands, answered once their background write is done:
    /// those whose write is in flight, and those whose write waits for the writer.
    private var owedWriting: [[UInt8]] = []
    private var owedWaiting: [[UInt8]] = []
    private var lastBackgroundOutcome: CheckpointWriter.Outcome?
    private var persistence = Persistence()
    /// The journal file of the last durable checkpoint: files before it can go once the
    /// next one is durable (one generation is kept for a fallback restore).
    private var journalOfLastCheckpoint: UInt64?
    private var journalFailureLogged = false
    private(set) var nextCheckpoint = Double.infinity
    private var nextJournalFlush = Double.infinity
    /// When the state was last frozen for a checkpoint (or the loop started).
    private var lastStarted = 0.0

    /// Replies owed to `checkpoint` clients that are now due: (client, reply).
    typealias Replies = [(client: [UInt8], reply: [UInt8])]

    init(store: CheckpointStore, writer: CheckpointWriter?, journal: Journal?, config: DaemonConfiguration,
         journalOfCheckpoint: UInt64?, restored: Persistence.LastCheckpoint? = nil, clock: DaemonClock, logger: Logger,
         metrics: DaemonMetrics) {
        self.store = store
        self.writer = writer
        self.journal = journal
        self.clock = clock
        self.logger = logger
        self.metrics = metrics
        interval = config.checkpointIntervalSeconds
        journalFlushSeconds = config.journalFlushMs / 1000
        journalMaxBytes = config.journalMaxMB << 20
        journalOfLastCheckpoint = journalOfCheckpoint
        // The checkpoint this run started from is the last one until the next is written:
        // its age shows across restarts (and crash loops).
        if let restored {
            persistence.last_checkpoint = restored
            metrics.lastCheckpoint.record(restored.at)
        }
    }

    /// Schedules the first periodic checkpoint and journal flush from `now`.
    func start(now: Double, journal: Bool) {
        lastStarted = now
        if interval > 0 { nextCheckpoint = now + interval }
        if journal { nextJournalFlush = now + journalFlushSeconds }
    }

    var nextDeadline: Double { min(nextCheckpoint, nextJournalFlush) }

    /// A reload: only a changed interval moves the next checkpoint, counted from the last
    /// one, so that a reload more often than the interval never postpones checkpoints.
    func intervalChanged(to new: Double, now: Double) {
        guard new != interval else { return }
        interval = new
        nextCheckpoint = new > 0 ? max(now, lastStarted + new) : .infinity
    }

    /// Flushes the journal when due (checkpointing early when it grew past
    /// `state.journal_max_mb`), starts a periodic checkpoint when due, and returns the
    /// `checkpoint` replies that became due.
    /// `mayCheckpoint` false (a leader whose lease may have lapsed): a due checkpoint
    /// waits, retried every second; journal flushes go on.
    func tick<S>(now: Double, core: DaemonCore<S>, mayCheckpoint: Bool = true) -> Replies {
        var replies: Replies = []
        if inFlight { collectOutcomes() }
        if !owedWriting.isEmpty || !owedWaiting.isEmpty { replies = advanceOwed(core: core) }
        if let journal = core.journal, now >= nextJournalFlush {
            core.flushJournal()
            nextJournalFlush = now + journalFlushSeconds
            if let failure = journal.failure, !journalFailureLogged {
                logger.error("journal: \(failure); changes are no longer journalled until the next checkpoint starts a new file")
                journalFailureLogged = true
            }
            // Bound the journal's size (and the replay after a crash): checkpoint early.
            if journal.bytes >= journalMaxBytes && !inFlight { nextCheckpoint = now }
        }
        if now >= nextCheckpoint && !mayCheckpoint {
            nextCheckpoint = now + 1
        } else if now >= nextCheckpoint {
            // A write still in progress (a large pending table, a slow disk): try again soon.
            // (Interval 0: no periodic checkpoints, only those the journal's size asks for.)
            if startBackground(core: core) {
                nextCheckpoint = interval > 0 ? now + interval : .infinity
            } else {
                nextCheckpoint = now + (interval > 0 ? min(1, interval) : 1)
            }
        }
        return replies
    }

    /// A `checkpoint` command from `client`: written by the writer thread like a periodic
    /// one (scoring goes on); the reply is owed until it is durable. Without a writer it
    /// is written at once and answered now.
    func request<S>(from client: [UInt8], core: DaemonCore<S>) -> Replies {
        guard writer != nil else {
            let reply: [UInt8]
            do { reply = Self.reply(path: store.path, bytes: try write(core: core), modelVersion: core.model.version, error: nil) } catch {
                reply = Self.reply(path: store.path, bytes: nil, modelVersion: core.model.version, error: error.description)
            }
            return [(client, reply)]
        }
        owedWaiting.append(client)
        return advanceOwed(core: core)
    }

    /// The `checkpoint` command's reply: where, how large and which model version, or why not.
    static func reply(path: String, bytes: Int?, modelVersion: Int64, error: String?) -> [UInt8] {
        guard let bytes else { return WireJSON.encode(ControlReply(ok: false, error: error ?? "checkpoint failed")) }
        return WireJSON.encode(ControlReply(ok: true, path: path, bytes: bytes, model_version: modelVersion))
    }

    /// Answers owed replies whose write has finished, and starts the write of those
    /// waiting once the writer is free.
    private func advanceOwed<S>(core: DaemonCore<S>) -> Replies {
        guard let writer else { return [] }
        var replies: Replies = []
        if !owedWriting.isEmpty, !inFlight, let o = lastBackgroundOutcome {
            let reply = Self.reply(path: store.path, bytes: o.bytes, modelVersion: o.modelVersion, error: o.error)
            for client in owedWriting { replies.append((client, reply)) }
            owedWriting.removeAll()
        }
        guard owedWriting.isEmpty, !owedWaiting.isEmpty, !writer.isBusy else { return replies }
        collectOutcomes()
        lastBackgroundOutcome = nil
        if startBackground(core: core) {
            swap(&owedWriting, &owedWaiting)
            nextCheckpoint = interval > 0 ? clock.monotonic() + interval : .infinity
        }
        return replies
    }

    /// Hands a frozen copy of the state to the writer thread; false if it is still busy.
    /// Freezing the pending store is O(1); while the write runs, each slab page the loop
    /// changes is copied once (see `PagedColumn`), so scoring never waits for the write.
    private func startBackground<S>(core: DaemonCore<S>) -> Bool {
        guard let writer else { return (try? write(core: core)) != nil }
        guard !writer.isBusy else {
            logger.debug("checkpoint: the previous write is still in progress, retrying")
            return false
        }
        let head = freezeHead(core: core)
        let frozen = core.pending.frozen()
        // Only this thread submits, and the writer was idle: this cannot be refused.
        guard writer.submit({ Checkpoint(head: head, pending: [], frozen: frozen) })
        else { return false }
        inFlight = true
        return true
    }

    private func collectOutcomes() {
        guard let writer else { return }
        for o in writer.takeOutcomes() {
            inFlight = false
            lastBackgroundOutcome = o
            finished(bytes: o.bytes, error: o.error, modelVersion: o.modelVersion, pending: o.pending,
                     seconds: o.seconds, journal: o.journal, background: true)
        }
    }

    /// The checkpoint's head, with a new journal file started at the same moment (its
    /// number goes into the checkpoint: replay starts there).
    private func freezeHead<S>(core: DaemonCore<S>) -> Checkpoint.Head {
        lastStarted = clock.monotonic()
        var number: UInt64?
        if let j = core.journal {
            do {
                number = try j.rotate()
                journalFailureLogged = false
            } catch {
                logger.error("journal: \(error.description); changes are not journalled until the next checkpoint")
                journalFailureLogged = true
            }
        }
        return core.checkpointHead(journal: number)
    }

    /// Writes a checkpoint on the calling thread, after any background write has finished
    /// (the `rollback` command and shutdown need it durable before they go on).
    @discardableResult
    func write<S>(core: DaemonCore<S>) throws(CheckpointError) -> Int {
        if let writer {
            writer.waitIdle()
            collectOutcomes()
        }
        let t0 = clock.monotonic()
        let cp = Checkpoint(head: freezeHead(core: core), pending: [], frozen: core.pending.frozen())
        do {
            let bytes = try store.write(cp)
            finished(bytes: bytes, error: nil, modelVersion: cp.head.model.version, pending: cp.pendingCount,
                     seconds: clock.monotonic() - t0, journal: cp.head.journal, background: false)
            return bytes
        } catch {
            finished(bytes: nil, error: error.description, modelVersion: cp.head.model.version, pending: cp.pendingCount,
                     seconds: clock.monotonic() - t0, journal: nil, background: false)
            throw error
        }
    }

    /// Shutdown: answers every owed reply with the final checkpoint's outcome (it is
    /// newer than the ones asked for).
    func answerOwed(finalBytes: Int?, error: String?, modelVersion: Int64) -> Replies {
        let reply = Self.reply(path: store.path, bytes: finalBytes, modelVersion: modelVersion, error: error)
        defer { owedWriting.removeAll(); owedWaiting.removeAll() }
        return (owedWriting + owedWaiting).map { ($0, reply) }
    }

    /// Records a finished checkpoint, written or failed: metrics, the `status` view, the
    /// journal files it makes redundant, and the log line.
    private func finished(bytes: Int?, error: String?, modelVersion: Int64, pending count: Int, seconds: Double,
                          journal n: UInt64?, background: Bool) {
        metrics.recordCheckpoint(seconds: seconds, bytes: bytes, at: clock.wall())
        guard let bytes else {
            persistence.checkpoints_failed &+= 1
            logger.error("checkpoint failed: \(error ?? "unknown error")")
            return
        }
        persistence.checkpoints_written &+= 1
        persistence.last_checkpoint = .init(at: clock.wall(), bytes: bytes, model_version: modelVersion, pending: count,
                                            ms: Int(seconds * 1000), background: background)
        // A durable checkpoint starting journal file n: the files before the previous
        // durable checkpoint's are no longer needed (that one stays restorable in full).
        if let j = journal, let n {
            if let previous = journalOfLastCheckpoint { j.removeFiles(before: previous) }
            journalOfLastCheckpoint = n
        }
        var meta: Logger.Metadata = [
            "path": "\(store.path)", "bytes": "\(bytes)", "model_version": "\(modelVersion)",
            "pending": "\(count)", "ms": "\(Int(seconds * 1000))",
        ]
        if background { meta["background"] = "true" }
        logger.info("checkpoint written", metadata: meta)
    }

    /// The `status` reply's view of checkpoints and the journal, as of now.
    func persistenceNow(journal: Journal?) -> Persistence {
        var p = persistence
        p.checkpoint_in_progress = inFlight
        p.journal_file = journal?.number
        p.journal_bytes = journal?.bytes
        p.journal_error = journal?.failure
        return p
    }
}
