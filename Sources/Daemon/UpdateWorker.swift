import Foundation
import Online

/// Runs the aggregator's part of model updates (`AggregatorUpdate`: the gradient steps
/// over the replay buffer and the expert selector's decision) and the calibrator's fit
/// (`UpdateJob`) on a thread of its own,
/// so that the event loop goes on scoring, with the weights it had, while an update
/// runs (`learning.update_thread`). One update at a time: the loop takes the result in
/// as soon as it is ready (`poll`), and waits for it (`wait`) before the next update
/// begins and before anything reads the whole model (a checkpoint, a rollback).
final class UpdateWorker: @unchecked Sendable {
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var job: UpdateJob?
    private var result: UpdateJob.Result?
    private var stopping = false
    private var thread: Thread?

    /// Starts the thread (once; `BackgroundThreads` does it at start).
    func start() {
        condition.lock()
        defer { condition.unlock() }
        guard thread == nil else { return }
        // The loop takes the lock first, so it sees `thread` set.
        thread = Thread.started(name: "cfensembled-update", stackSize: 1 << 20) { [self] in loop() }
    }

    /// Hands over an update; the previous one's result must have been taken.
    func submit(_ update: UpdateJob) {
        condition.lock()
        defer { condition.unlock() }
        precondition(job == nil && result == nil, "an update was submitted before the previous result was taken")
        if thread == nil || stopping {   // not running: run it here
            result = update.run()
        } else {
            job = update
            condition.broadcast()
        }
    }

    /// The finished update's result, if it is ready (taken: the next call returns nil).
    func poll() -> UpdateJob.Result? {
        condition.lock()
        defer { condition.unlock() }
        defer { result = nil }
        return result
    }

    /// Waits for the submitted update's result; nil when none was submitted.
    func wait() -> UpdateJob.Result? {
        condition.lock()
        defer { condition.unlock() }
        while job != nil && result == nil { condition.wait() }
        defer { result = nil }
        return result
    }

    /// Stops the thread after the update it runs, if any.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        let running = thread
        condition.unlock()
        guard running != nil else { return }
        condition.lock()
        while thread != nil { condition.wait() }
        condition.unlock()
    }

    private func loop() {
        condition.lock()
        while true {
            while job == nil && !stopping { condition.wait() }
            guard let next = job else { break }
            condition.unlock()
            let done = next.run()
            condition.lock()
            result = done
            job = nil
            condition.broadcast()
        }
        thread = nil
        condition.broadcast()
        condition.unlock()
    }
}
