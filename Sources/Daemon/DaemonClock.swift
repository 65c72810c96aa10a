import Foundation

/// Time as the daemon's logic reads it. The event loop runs on the system's clocks;
/// in-process tests drive a `ManualClock` forward instead of sleeping.
protocol DaemonClock: AnyObject {
    /// Seconds on a clock that never jumps: timers, deadlines, ages.
    func monotonic() -> Double
    /// Seconds since the Unix epoch: timestamps in published messages.
    func wall() -> Double
    /// Seconds since the Unix epoch that never jump: the wall clock as read at start,
    /// advanced by the monotonic clock. Pending instances' arrival times are on it, so a
    /// wall-clock step neither expires everything at once nor stops expiry, yet they stay
    /// meaningful in a checkpoint.
    func steady() -> Double
}

/// The system's clocks.
final class SystemClock: DaemonClock, @unchecked Sendable {
    private let anchor = Clock.wall() - Clock.monotonic()
    func monotonic() -> Double { Clock.monotonic() }
    func wall() -> Double { Clock.wall() }
    func steady() -> Double { anchor + Clock.monotonic() }
}

/// A clock that moves only when told (tests).
final class ManualClock: DaemonClock, @unchecked Sendable {
    private(set) var now: Double
    private let epoch: Double

    /// `epoch`: the wall time at monotonic 0.
    init(start: Double = 1000, epoch: Double = 1_764_300_000) {
        now = start
        self.epoch = epoch
    }

    func advance(by seconds: Double) { now += seconds }
    func monotonic() -> Double { now }
    func wall() -> Double { epoch + now }
    func steady() -> Double { epoch + now }
}
