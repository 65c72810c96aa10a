import Foundation
import Synchronization

/// Runs a `step` (an election or a watch) on its own thread until stopped: it blocks on
/// HTTP, so it must not run on the event loop or on Swift's cooperative pool.
final class ClusterThread: @unchecked Sendable {
    private let wake = DispatchSemaphore(value: 0)
    private let stopped = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    private let name: String
    private let step: @Sendable () -> Double
    private let finish: @Sendable () -> Void
    private let clock: @Sendable () -> Double

    init(name: String, clock: @escaping @Sendable () -> Double, step: @escaping @Sendable () -> Double,
         finish: @escaping @Sendable () -> Void = {}) {
        self.name = name
        self.clock = clock
        self.step = step
        self.finish = finish
    }

    func start() {
        let t = Thread { [self] in
            while !stopped.load(ordering: .acquiring) {
                let next = step()
                let wait = max(0.001, next - clock())
                _ = wake.wait(timeout: .now() + wait)
            }
            finish()
            done.signal()
        }
        t.name = name
        t.start()
    }

    /// Stops the loop (after the step in progress) and waits up to `timeout` for its finish.
    func stop(timeout: Double = 5) {
        stopped.store(true, ordering: .releasing)
        wake.signal()
        _ = done.wait(timeout: .now() + timeout)
    }
}
