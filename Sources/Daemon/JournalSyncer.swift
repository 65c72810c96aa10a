import Foundation

/// Makes the journal durable every `interval` seconds with fdatasync, on a thread of its
/// own: a sync can take milliseconds and the event loop never waits for it. A power
/// loss then costs at most the last interval (plus the journal's write buffer) instead
/// of everything since the last checkpoint.
///
/// It works on duplicates of the journal's descriptors, which it owns and closes, so
/// that rotating the journal never closes a descriptor under a sync in progress.
final class JournalSyncer: @unchecked Sendable {
    private let interval: Double
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var incoming: [Int32] = []
    private var stopping = false
    private var finished = false
    private var syncCount: UInt64 = 0

    private var started = false

    init(interval: Double) {
        self.interval = interval
    }

    /// Starts the sync thread (once; `BackgroundThreads` does it at start).
    func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !started else { return }
        started = true
        _ = Thread.started(name: "cfensembled-journal-sync", stackSize: 256 << 10) { [self] in loop() }
    }

    /// Hands over a duplicate of the current journal file's descriptor (the syncer syncs
    /// and closes the previous one).
    func adopt(_ fd: Int32) {
        condition.lock()
        incoming.append(fd)
        condition.unlock()
    }

    /// Syncs made so far.
    var syncs: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return syncCount
    }

    /// A last sync, then the thread ends and closes its descriptors.
    func stop() {
        condition.lock()
        guard started else {
            // Never started: close what was adopted.
            for fd in incoming { close(fd) }
            incoming.removeAll()
            condition.unlock()
            return
        }
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }

    private func loop() {
        var current: Int32 = -1
        while true {
            condition.lock()
            if !stopping { _ = condition.wait(until: Date(timeIntervalSinceNow: interval)) }
            let adopted = incoming
            incoming.removeAll()
            let stop = stopping
            condition.unlock()

            for fd in adopted {
                if current >= 0 {
                    fdatasync(current)
                    close(current)
                }
                current = fd
            }
            if current >= 0 { fdatasync(current) }

            condition.lock()
            syncCount &+= 1
            if stop {
                if current >= 0 { close(current) }
                finished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            condition.unlock()
        }
    }
}
