import Foundation

/// The process's open-file limit (RLIMIT_NOFILE) and use.
enum DescriptorLimit {
    /// Raises the soft limit to the hard one (systemd's default soft limit is 1024, far
    /// below what a daemon with thousands of connections needs); returns the soft limit
    /// in force afterwards.
    @discardableResult
    static func raiseToHard() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return Int(clamping: raised.rlim_cur) }
        }
        return Int(clamping: limit.rlim_cur)
    }

    /// The soft limit now.
    static var soft: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        return Int(clamping: limit.rlim_cur)
    }

    /// Descriptors open now (entries of /proc/self/fd; nil where there is none).
    static func openCount() -> Int? {
        guard let dir = opendir("/proc/self/fd") else { return nil }
        defer { closedir(dir) }
        var n = -1   // the directory's own descriptor
        while let entry = readdir(dir) {
            if entry.pointee.d_name.0 != UInt8(ascii: ".") { n += 1 }
        }
        return max(0, n)
    }

    /// Descriptors kept free of connections: state files, the journal, control and
    /// metrics clients, libzmq's own.
    static let reserve = 256

    /// Per-socket connection caps that fit the limit: `caps` as configured, scaled down
    /// together when their sum and the reserve exceed `limit`.
    static func fit(_ caps: [Int], limit: Int) -> [Int] {
        let budget = max(caps.count, limit - reserve)
        let total = caps.reduce(0, +)
        guard total > budget else { return caps }
        return caps.map { max(1, $0 * budget / total) }
    }
}
