import Foundation

/// Writes checkpoints (periodic ones, and those the `checkpoint` command asks for) on a
/// thread of its own, so that encoding, writing and fsyncing a large pending table (about
/// 1.4 s for a million instances) does not stop the event loop from scoring. The event loop hands over a frozen copy of its state (a
/// copy-on-write snapshot) and goes on; one write runs at a time.
final class CheckpointWriter: @unchecked Sendable {
    /// The outcome of one background write, collected by the checkpoint coordinator to log and count.
    struct Outcome: Sendable {
        /// Bytes written, or nil when the write failed.
        var bytes: Int?
        var error: String?
        var pending: Int
        var modelVersion: Int64
        /// The journal file the checkpoint starts (see `Journal`).
        var journal: UInt64?
        /// Time the writer thread spent building, encoding and writing it.
        var seconds: Double
    }

    private let store: CheckpointStore
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var job: (@Sendable () -> Checkpoint)?
    private var busy = false
    private var stopping = false
    private var outcomes: [Outcome] = []
    private var thread: Thread?

    init(store: CheckpointStore) {
        self.store = store
    }

    /// Starts the writer thread (once; `BackgroundThreads` does it at start).
    func start() {
        condition.lock()
        defer { condition.unlock() }
        guard thread == nil else { return }
        // The loop takes the lock first, so it sees `thread` set.
        thread = Thread.started(name: "cfensembled-checkpoint", stackSize: 1 << 20) { [self] in loop() }
    }

    /// Starts a write of what `build` returns, on the writer thread. False when a write
    /// is still in progress (the caller tries again later) or the writer has stopped.
    func submit(_ build: @escaping @Sendable () -> Checkpoint) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !busy, !stopping, thread != nil else { return false }
        job = build
        busy = true
        condition.broadcast()
        return true
    }

    /// True while a write is in progress.
    var isBusy: Bool {
        condition.lock()
        defer { condition.unlock() }
        return busy
    }

    /// The outcomes of the writes finished since the last call.
    func takeOutcomes() -> [Outcome] {
        condition.lock()
        defer { condition.unlock() }
        let taken = outcomes
        outcomes.removeAll()
        return taken
    }

    /// Blocks until no write is in progress (before a synchronous checkpoint, so that
    /// the two never race over the files and generations stay in order).
    func waitIdle() {
        condition.lock()
        while busy { condition.wait() }
        condition.unlock()
    }

    /// Puts this thread below the event loop: a write of a large pending table takes a
    /// core for most of a second, and on two cores the scheduler gave it its share at the
    /// expense of scoring (p99 several times that of the same load without
    /// checkpoints). On Linux the thread runs under SCHED_IDLE (it gets a CPU only when
    /// no other task wants one, and any waking task preempts it at once), at nice 19
    /// where that is refused; on a saturated machine a checkpoint takes longer instead.
    private func lowerPriority() {
        #if os(Linux)
        // On Linux the policy and the nice value are per thread, and 0 is the calling
        // thread. Not fatal when refused: the write then competes with scoring as before.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
        var param = sched_param(sched_priority: 0)
        _ = sched_setscheduler(0, Self.schedIdle, &param)
        #endif
    }

    /// Linux's SCHED_IDLE (<sched.h> declares it only with _GNU_SOURCE).
    static let schedIdle: Int32 = 5

    /// Lets a write in progress finish, then ends the thread.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while busy && thread != nil { condition.wait() }
        condition.unlock()
    }

    private func loop() {
        lowerPriority()
        while true {
            condition.lock()
            while job == nil && !stopping { condition.wait() }
            guard let build = job else {
                condition.unlock()
                return
            }
            job = nil
            condition.unlock()

            let t0 = Clock.monotonic()
            let checkpoint = build()
            var outcome = Outcome(bytes: nil, error: nil, pending: checkpoint.pendingCount,
                                  modelVersion: checkpoint.head.model.version, journal: checkpoint.head.journal, seconds: 0)
            do {
                outcome.bytes = try store.write(checkpoint)
            } catch {
                outcome.error = error.description
            }
            outcome.seconds = Clock.monotonic() - t0

            condition.lock()
            outcomes.append(outcome)
            busy = false
            condition.broadcast()
            condition.unlock()
        }
    }
}
