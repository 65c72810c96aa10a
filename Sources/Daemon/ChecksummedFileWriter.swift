import Foundation

/// Writes a file's payload through one fixed buffer (flushed whenever it holds `chunk`
/// bytes), keeping the payload's length and FNV-1a hash as it goes, after a header of
/// `headerWidth` bytes reserved at the start and written last (`finish`). A checkpoint
/// of a million pending instances (some 100 MB) is thus never held in memory whole:
/// building it took that much fresh memory twice (the payload, then the file's copy),
/// and the page faults and copies of a background write were felt on the scoring path.
struct ChecksummedFileWriter {
    let fd: Int32
    let headerWidth: Int
    let chunk: Int
    /// What is waiting to be written.
    var buffer: ByteWriter
    /// Payload bytes written so far, and their hash.
    private(set) var length = 0
    private(set) var hash = CheckpointStore.fnvOffset

    init(fd: Int32, headerWidth: Int, chunk: Int = 1 << 20) throws(CheckpointError) {
        self.fd = fd
        self.headerWidth = headerWidth
        self.chunk = chunk
        buffer = ByteWriter(capacity: chunk + 4096)
        guard lseek(fd, off_t(headerWidth), SEEK_SET) == off_t(headerWidth) else {
            throw CheckpointError("cannot seek: \(String(cString: strerror(errno)))")
        }
    }

    /// Writes the buffer out once it holds a chunk.
    @inline(__always)
    mutating func flushIfFull() throws(CheckpointError) {
        if buffer.count >= chunk { try flush() }
    }

    mutating func flush() throws(CheckpointError) {
        // Read in place: a copy of the bytes held across `reset` would make it allocate
        // a new buffer for every chunk.
        let (h, written) = buffer.bytes.withUnsafeBytes { raw in
            (CheckpointStore.fnv1a(raw, from: hash), Self.writeAll(fd, raw, at: nil))
        }
        guard written else { throw Self.writeError() }
        hash = h
        length += buffer.count
        buffer.reset()
    }

    /// Writes what is left, then the header (`header(length, hash)`, padded with spaces to
    /// the reserved width, its newline last) at the start.
    mutating func finish(header: (Int, UInt64) -> String) throws(CheckpointError) {
        try flush()
        var line = Array(header(length, hash).utf8)
        guard line.count < headerWidth else { throw CheckpointError("checkpoint header longer than \(headerWidth) bytes") }
        line += [UInt8](repeating: 0x20, count: headerWidth - 1 - line.count)
        line.append(0x0A)
        guard line.withUnsafeBytes({ Self.writeAll(fd, $0, at: 0) }) else { throw Self.writeError() }
    }

    /// Writes all of `raw` (at `offset`, or where the file stands); false on an error
    /// (`errno` says which).
    private static func writeAll(_ fd: Int32, _ raw: UnsafeRawBufferPointer, at offset: off_t?) -> Bool {
        var off = 0
        while off < raw.count {
            let n = offset.map { pwrite(fd, raw.baseAddress! + off, raw.count - off, $0 + off_t(off)) }
                ?? write(fd, raw.baseAddress! + off, raw.count - off)
            if n < 0 { if errno == EINTR { continue }; return false }
            off += n
        }
        return true
    }

    private static func writeError() -> CheckpointError {
        CheckpointError("cannot write: \(String(cString: strerror(errno)))")
    }
}
