import Foundation

/// Wall-clock and monotonic time in seconds, read without allocating.
enum Clock {
    /// Seconds since the Unix epoch.
    static func wall() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Nanoseconds on the monotonic clock, for durations.
    static func nanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// Seconds on a clock that never jumps, for timers and deadlines.
    static func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Seconds since the Unix epoch that never jump: the wall clock as read once at
    /// start, advanced by the monotonic clock. Pending instances' arrival times are kept
    /// on it, so that a wall-clock step (NTP, an operator) neither expires everything at
    /// once nor stops expiry, yet they stay meaningful in a checkpoint.
    static func steady() -> Double { steadyAnchor + monotonic() }

    private static let steadyAnchor = wall() - monotonic()
}
