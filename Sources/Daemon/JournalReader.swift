import Foundation
import Online

/// Reads one journal file a record at a time through a fixed window, so that replaying
/// hundreds of megabytes after a crash holds one window and one record in memory, never
/// the file or its records.
final class JournalReader {
    /// No record the journal writes is larger than its 1 MiB write buffer; a length
    /// beyond that is damage, not a record to wait for.
    static let maxRecordBytes = 1 << 20

    let path: String
    /// Why reading stopped before the end of the file (a torn or damaged record).
    private(set) var problem: String?
    private(set) var records = 0
    /// The file's size when opened.
    let size: Int

    private let fd: Int32
    private var window: [UInt8]
    private var start = 0, end = 0
    /// File offset of `window[start]`.
    private var offset = 0
    private var eof = false

    init(path: String, windowBytes: Int = 4 << 20) throws(CheckpointError) {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError("cannot read \(path): \(String(cString: strerror(errno)))") }
        var info = stat()
        size = fstat(fd, &info) == 0 ? Int(info.st_size) : 0
        window = [UInt8](repeating: 0, count: max(windowBytes, Self.maxRecordBytes + 16))
    }

    deinit { close(fd) }

    /// The next record; nil at the end of the file or at a torn or damaged record
    /// (`problem` says which).
    func next() -> Journal.Record? {
        guard problem == nil, fill(5) else { return nil }
        let at = offset
        let length = Int(loadU32(start))
        let kindByte = window[start + 4]
        guard length <= Self.maxRecordBytes else {
            return stop("\(path): damaged record at byte \(at)")
        }
        guard fill(9 + length) else {
            return stop("\(path): torn record at byte \(at) (the process stopped mid-write)")
        }
        let sum = loadU32(start + 5 + length)
        let expected = window.withUnsafeBytes { Journal.checksum($0.baseAddress! + start + 4, count: 1 + length) }
        guard expected == sum, let kind = Journal.Kind(rawValue: kindByte) else {
            return stop("\(path): damaged record at byte \(at)")
        }
        let payload = Array(window[(start + 5)..<(start + 5 + length)])
        start += 9 + length
        offset += 9 + length
        guard let record = Journal.decode(kind: kind, payload: payload) else {
            return stop("\(path): damaged record at byte \(at)")
        }
        records += 1
        return record
    }

    private func stop(_ why: String) -> Journal.Record? {
        problem = "\(why); \(size - offset) bytes ignored"
        return nil
    }

    private func loadU32(_ i: Int) -> UInt32 {
        UInt32(window[i]) | UInt32(window[i + 1]) << 8 | UInt32(window[i + 2]) << 16 | UInt32(window[i + 3]) << 24
    }

    /// Makes `n` bytes available from `start`; false when the file ends first.
    private func fill(_ n: Int) -> Bool {
        if end - start >= n { return true }
        if start > 0 {
            window.withUnsafeMutableBytes { w in
                if end > start { memmove(w.baseAddress!, w.baseAddress! + start, end - start) }
            }
            end -= start
            start = 0
        }
        while end < n && !eof {
            let got = window.withUnsafeMutableBytes { w in read(fd, w.baseAddress! + end, w.count - end) }
            if got < 0 {
                if errno == EINTR { continue }
                problem = "cannot read \(path): \(String(cString: strerror(errno)))"
                return false
            }
            if got == 0 { eof = true } else { end += got }
        }
        return end - start >= n
    }
}
