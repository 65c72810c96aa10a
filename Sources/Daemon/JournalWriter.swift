import Foundation

/// Writes the journal's filled buffers to its files on a thread of its own, in order, so
/// that the event loop never makes a write system call for the journal: on ext4 a write
/// that extends a file can wait for a journal commit of the filesystem, and while a
/// checkpoint of a million pending instances was fsynced those waits reached tens of
/// milliseconds on the scoring path (p999 22-32 ms against 3-7 ms with the journal off).
///
/// The journal fills one buffer and hands it over (`submit`), taking a free one back;
/// it waits only when every buffer is still queued (the disk has been stalled for
/// several flushes). Closing a file is queued after its writes, and so is deleting the
/// files a checkpoint covers. A failed write is
/// reported to the journal at its next flush (`takeFailure`); records already handed
/// over for that file are dropped, as they were when the loop wrote them itself.
final class JournalWriter: @unchecked Sendable {
    struct Job {
        enum Kind { case write(UnsafeMutableRawPointer, count: Int), close, remove }
        var fd: Int32
        var path: String
        var kind: Kind

        /// A write to a file whose earlier write failed is dropped (until it is closed).
        func skipped(after failedFD: Int32) -> Bool {
            if case .write = kind { return failedFD >= 0 && fd == failedFD }
            return false
        }
    }

    private let condition = NSCondition()
    // Guarded by `condition`.
    private var queue: [Job] = []
    private var free: [UnsafeMutableRawPointer] = []
    private var failure: String?
    private var failedFD: Int32 = -1
    private var busy = false
    private var stopping = false
    private var finished = false
    private var started = false
    private let all: [UnsafeMutableRawPointer]

    /// `buffers` buffers of `bufferSize` bytes (one of them is the journal's to fill).
    init(bufferSize: Int, buffers: Int = 4) {
        all = (0..<max(2, buffers)).map { _ in UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 8) }
        free = Array(all.dropFirst())
        queue.reserveCapacity(all.count + 8)
    }

    deinit { for b in all { b.deallocate() } }

    /// The buffer the journal fills first.
    var first: UnsafeMutableRawPointer { all[0] }

    /// Starts the thread (once; `BackgroundThreads` does it at start). Until then, and
    /// after `stop`, handed-over buffers are written on the caller's thread.
    func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !started, !stopping else { return }
        started = true
        _ = Thread.started(name: "cfensembled-journal", stackSize: 256 << 10) { [self] in loop() }
    }

    /// Hands over `count` bytes of `buffer` to write to `fd`; returns a free buffer.
    func submit(_ buffer: UnsafeMutableRawPointer, count: Int, fd: Int32, path: String) -> UnsafeMutableRawPointer {
        condition.lock()
        defer { condition.unlock() }
        guard enqueue(Job(fd: fd, path: path, kind: .write(buffer, count: count))) else { return buffer }
        while free.isEmpty { condition.wait() }
        return free.removeLast()
    }

    /// Closes `fd` after the writes queued for it.
    func close(_ fd: Int32, path: String) {
        condition.lock()
        defer { condition.unlock() }
        _ = enqueue(Job(fd: fd, path: path, kind: .close))
    }

    /// Deletes the file at `path` after what is queued (journal files a durable
    /// checkpoint covers: deleting a large file on ext4 took the loop up to 35 ms).
    func remove(_ path: String) {
        condition.lock()
        defer { condition.unlock() }
        _ = enqueue(Job(fd: -1, path: path, kind: .remove))
    }

    /// Under the lock: queues `job` for the thread and returns true, or, while the thread
    /// does not run, runs it here and returns false.
    private func enqueue(_ job: Job) -> Bool {
        guard started, !finished else {
            record(job, error: job.skipped(after: failedFD) ? nil : Self.run(job))
            return false
        }
        queue.append(job)
        condition.broadcast()
        return true
    }

    /// Blocks until everything handed over is written (shutdown, and a rotation after a
    /// failure, which looks at what reached the file).
    func drain() {
        condition.lock()
        while !queue.isEmpty || busy { condition.wait() }
        condition.unlock()
    }

    /// Why a write failed since the last call, if one did.
    func takeFailure() -> String? {
        condition.lock()
        defer { condition.unlock() }
        let f = failure
        failure = nil
        return f
    }

    /// Writes to `fd` are attempted again (after a failure, on the same file).
    func retry(_ fd: Int32) {
        condition.lock()
        defer { condition.unlock() }
        if failedFD == fd { failedFD = -1 }
        failure = nil
    }

    /// Writes what is queued, then ends the thread; later jobs run on the caller's thread.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while started && !finished { condition.wait() }
        condition.unlock()
    }

    private func loop() {
        condition.lock()
        while true {
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty {
                finished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let job = queue.removeFirst()
            let skip = job.skipped(after: failedFD)
            busy = true
            condition.unlock()
            let error = skip ? nil : Self.run(job)
            condition.lock()
            busy = false
            record(job, error: error)
            if case let .write(buffer, _) = job.kind { free.append(buffer) }
            condition.broadcast()
        }
    }

    /// Notes a job's outcome (under the lock): a failed write stops the writes to its
    /// file; the descriptor's number is free again once it is closed.
    private func record(_ job: Job, error: String?) {
        if let error {
            failedFD = job.fd
            failure = error
        }
        if case .close = job.kind, job.fd == failedFD { failedFD = -1 }
    }

    /// Runs one job; why a write failed, if it did.
    private static func run(_ job: Job) -> String? {
        switch job.kind {
        case .close:
            Foundation.close(job.fd)
        case .remove:
            unlink(job.path)
        case let .write(buffer, count):
            var off = 0
            while off < count {
                let n = Foundation.write(job.fd, buffer + off, count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    return "cannot write \(job.path): \(String(cString: strerror(errno)))"
                }
                off += n
            }
        }
        return nil
    }
}
