import Foundation

/// Keeps a learner's model versions from ever going back across restarts, even after a
/// crash that lost the updates published since the last checkpoint.
///
/// Versions are reserved ahead in blocks (`lease` in the state directory, written with
/// fsync before a version beyond the reservation is published); a learner that restarts
/// continues after the reservation, skipping at most one block of numbers. A clean stop
/// shrinks the reservation to the version it checkpointed, so no numbers are skipped.
/// The file also names the lineage: scorers accept a lower version only from a new one.
struct VersionLease {
    let path: String
    private(set) var lineage: String
    private(set) var reserved: Int64
    let block: Int64

    /// Reads the lease, or starts a new lineage when there is none (a fresh learner).
    init(directory: String, block: Int64 = 1000) throws(StartupError) {
        path = (directory as NSString).appendingPathComponent("lease")
        self.block = block
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            var lineage: String?, reserved: Int64?
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { continue }
                if parts[0] == "lineage" { lineage = parts[1] }
                if parts[0] == "reserved" { reserved = Int64(parts[1]) }
            }
            guard let lineage, !lineage.isEmpty, let reserved, reserved >= 0 else {
                throw StartupError("\(path) is damaged (expected 'lineage ID' and 'reserved N' lines); move it aside only if the scorers may restart from a new lineage")
            }
            self.lineage = lineage
            self.reserved = reserved
        } else {
            lineage = Self.newLineage()
            reserved = 0
        }
    }

    static func newLineage() -> String {
        var g = SystemRandomNumberGenerator()
        return String(format: "%016llx", g.next() as UInt64)
    }

    /// The first version a restarted learner may publish after `checkpointed`.
    func resumeVersion(after checkpointed: Int64) -> Int64 { max(checkpointed, reserved) }

    /// Makes sure `version` is covered before it is published.
    mutating func cover(_ version: Int64) throws {
        guard version > reserved else { return }
        try write(reserved: version + block)
    }

    /// At a clean stop: nothing past `version` was published.
    mutating func settle(at version: Int64) throws { try write(reserved: version) }

    /// A fresh model (no checkpoint): a new lineage, so scorers accept its low versions.
    mutating func startLineage() throws {
        lineage = Self.newLineage()
        try write(reserved: 0)
    }

    private mutating func write(reserved new: Int64) throws {
        let tmp = path + ".tmp"
        let text = "lineage \(lineage)\nreserved \(new)\n"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LeaseError("cannot write \(tmp): \(String(cString: strerror(errno)))") }
        let ok = text.utf8CString.withUnsafeBufferPointer { b in
            Foundation.write(fd, b.baseAddress, b.count - 1) == b.count - 1
        } && fsync(fd) == 0
        close(fd)
        guard ok, rename(tmp, path) == 0 else { throw LeaseError("cannot write \(path): \(String(cString: strerror(errno)))") }
        let dir = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_CLOEXEC)
        if dir >= 0 { fsync(dir); close(dir) }
        reserved = new
    }
}

struct LeaseError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
