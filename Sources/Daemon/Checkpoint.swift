import Foundation
import Online

/// Everything the daemon persists: the model, the pending instances (so labels that
/// arrive after a restart still find their instance), counters and quality window.
struct Checkpoint: Sendable {
    struct PendingRecord: Sendable {
        var id: String
        var instance: PendingInstance
    }

    /// Everything but the pending instances: small, stored as JSON.
    struct Head: Codable, Sendable {
        var writtenAt: Double
        var model: ModelSnapshot
        var evicted: UInt64
        var expired: UInt64
        var counters: Counters
        var quality: RollingQuality
        /// What turns scores into probabilities (absent in checkpoints of earlier builds).
        var calibrator: ScoreCalibrator? = nil
        /// Labelled instances waiting for the next mini-batch update (absent in
        /// checkpoints of earlier builds, and after a clean stop, which learns them first).
        var batch: [LabelledInstance]? = nil
        /// The journal file that records what came after this checkpoint (replayed
        /// after a crash); absent when the journal is off.
        var journal: UInt64? = nil
        /// The health supervisor's state (absent in checkpoints of earlier builds).
        var health: DurableHealth? = nil
    }

    var head: Head
    /// The pending instances read back (and in tests' checkpoints)...
    var pending: [PendingRecord]
    /// ...or, when writing, the frozen store they are encoded from one at a time.
    var frozen: PendingStore.Frozen? = nil

    var pendingCount: Int { frozen?.count ?? pending.count }
}

/// Why a checkpoint could not be written or read.
struct CheckpointError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Reads and writes `checkpoint.cfe` in the state directory, atomically: a temporary
/// file is written and fsynced, renamed over the old one, and the directory fsynced,
/// so a crash leaves either the old or the new checkpoint, never a torn one.
///
/// File format: one header line `cfensembled-checkpoint 2 <length> <fnv1a64-hex>`
/// (padded with spaces to `headerWidth` bytes)
/// then a `length`-byte payload: a u32 length and the JSON `Head` (model, counters,
/// quality window), a u64 count, then each pending instance in little-endian binary
/// (id, arrival f64, score f32, average f32, probability f32 (format 2 on), u16 entry
/// count, entries of u16 classifier + f32 probability). A wrong length or checksum means corruption.
struct CheckpointStore {
    static let magic = "cfensembled-checkpoint"
    static let formatVersion = 2
    /// Formats this build reads: 1 (before the calibrated probability) and 2.
    static let readableVersions = 1...2

    let directory: String
    /// How many generations to keep: checkpoint.cfe, checkpoint.1.cfe, ...
    var generations: Int = 3
    var path: String { directory + "/checkpoint.cfe" }

    /// The file of generation `g` (0 is the newest).
    func path(generation g: Int) -> String { g == 0 ? path : directory + "/checkpoint.\(g).cfe" }

    /// Creates the state directory (mode 0700) if needed.
    func prepare() throws(CheckpointError) {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) {
            if !isDir.boolValue { throw CheckpointError("state directory \(directory) exists and is not a directory") }
        } else {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw CheckpointError("cannot create state directory \(directory): \(error.localizedDescription)")
            }
        }
        guard access(directory, W_OK) == 0 else { throw CheckpointError("state directory \(directory) is not writable") }
    }

    /// Width of the header line as written (padded with spaces; readers split it on
    /// spaces): room for the largest length and hash, reserved before the payload is
    /// streamed and filled in after it.
    static let headerWidth = 80

    /// Writes the checkpoint durably; returns its size in bytes. The payload is encoded
    /// and written a chunk at a time (`ChecksummedFileWriter`), its header last.
    @discardableResult
    func write(_ checkpoint: Checkpoint) throws(CheckpointError) -> Int {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CheckpointError("cannot create \(tmp): \(String(cString: strerror(errno)))") }
        let size: Int
        do throws(CheckpointError) {
            var file = try ChecksummedFileWriter(fd: fd, headerWidth: Self.headerWidth)
            try Self.encode(checkpoint, into: &file)
            try file.finish { length, hash in "\(Self.magic) \(Self.formatVersion) \(length) \(String(hash, radix: 16))" }
            guard fsync(fd) == 0 else { throw CheckpointError(String(cString: strerror(errno))) }
            size = Self.headerWidth + file.length
            close(fd)
        } catch {
            close(fd)
            unlink(tmp)
            throw CheckpointError("cannot write \(tmp): \(error.description)")
        }
        // Shift older generations down (each rename is atomic; a crash in between leaves
        // every generation readable under some name), then publish the new one.
        if generations > 1 {
            unlink(self.path(generation: generations - 1))
            for g in stride(from: generations - 2, through: 0, by: -1) where FileManager.default.fileExists(atPath: self.path(generation: g)) {
                rename(self.path(generation: g), self.path(generation: g + 1))
            }
        }
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw CheckpointError("cannot rename \(tmp) to \(path): \(String(cString: strerror(e)))")
        }
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
        return size
    }

    /// Reads the newest generation that is intact; `rejected` lists the newer ones that
    /// were not (path and reason). Nil when there is no checkpoint at all; throws when
    /// checkpoints exist but none is intact (refusing to start from nothing silently).
    func readNewestGood() throws(CheckpointError) -> (checkpoint: Checkpoint, path: String, rejected: [String])? {
        var rejected: [String] = []
        var found = false
        for g in 0..<max(1, generations) {
            let p = path(generation: g)
            guard FileManager.default.fileExists(atPath: p) else { continue }
            found = true
            do {
                if let cp = try read(at: p) { return (cp, p, rejected) }
            } catch {
                rejected.append(error.description)
            }
        }
        if found { throw CheckpointError(rejected.joined(separator: "; ") + "; no intact checkpoint generation") }
        return nil
    }

    /// Reads the checkpoint; nil when there is none. Throws on a corrupt or unreadable one.
    func read() throws(CheckpointError) -> Checkpoint? { try read(at: path) }

    func read(at path: String) throws(CheckpointError) -> Checkpoint? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CheckpointError("cannot read \(path)")
        }
        guard let nl = data.firstIndex(of: 0x0A) else { throw CheckpointError("\(path): no header line (truncated or not a checkpoint)") }
        let header = String(decoding: data[data.startIndex..<nl], as: UTF8.self).split(separator: " ")
        guard header.count == 4, header[0] == Self.magic else { throw CheckpointError("\(path): not a cfensembled checkpoint") }
        guard let version = Int(header[1]), Self.readableVersions.contains(version) else {
            throw CheckpointError("\(path): checkpoint format \(header[1]) is not supported (this build reads formats \(Self.readableVersions.lowerBound) to \(Self.readableVersions.upperBound))")
        }
        let payload = data[(nl + 1)...]
        guard let length = Int(header[2]), length == payload.count else {
            throw CheckpointError("\(path): truncated (header says \(header[2]) bytes, file has \(payload.count))")
        }
        guard String(Self.fnv1a(payload), radix: 16) == header[3] else {
            throw CheckpointError("\(path): checksum mismatch (corrupt)")
        }
        return try Self.decode(Array(payload), path: path, version: version)
    }

    /// Encodes the payload into `file`'s buffer, handing it a chunk at a time.
    static func encode(_ checkpoint: Checkpoint, into file: inout ChecksummedFileWriter) throws(CheckpointError) {
        let head: Data
        do {
            let encoder = JSONEncoder()
            encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            head = try encoder.encode(checkpoint.head)
        } catch {
            throw CheckpointError("cannot encode checkpoint: \(error)")
        }
        file.buffer.append(UInt32(head.count))
        file.buffer.append(raw: Array(head))
        file.buffer.append(UInt64(checkpoint.pendingCount))
        /// One pending instance in the layout `decode` reads: id, arrival, score, average,
        /// probability, then its entries (`entries` appends them).
        func append(_ id: String, _ arrival: Double, _ score: Float, _ average: Float, _ probability: Float,
                    entries: (inout ByteWriter) -> Void) throws(CheckpointError) {
            file.buffer.append(id)
            file.buffer.append(arrival)
            file.buffer.append(score)
            file.buffer.append(average)
            file.buffer.append(probability)
            entries(&file.buffer)
            try file.flushIfFull()
        }
        do {
            if let frozen = checkpoint.frozen {
                try frozen.forEachRow { (row: borrowing PendingStore.Row) throws(CheckpointError) in
                    try append(row.id, row.arrival, row.score, row.average, row.probability) {
                        $0.append(classifiers: row.classifiers, values: row.values)
                    }
                }
            } else {
                for record in checkpoint.pending {
                    let p = record.instance
                    try append(record.id, p.arrival, p.score, p.average, p.probability) { $0.append(entries: p.entries) }
                }
            }
        } catch let e as CheckpointError {
            throw e
        } catch {
            throw CheckpointError("cannot write checkpoint: \(error)")
        }
    }

    static func decode(_ payload: [UInt8], path: String, version: Int = formatVersion) throws(CheckpointError) -> Checkpoint {
        var r = ByteReader(payload)
        do {
            let headLength = Int(try r.read(UInt32.self))
            let headBytes = try r.readBytes(headLength)
            let decoder = JSONDecoder()
            decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            let head: Checkpoint.Head
            do { head = try decoder.decode(Checkpoint.Head.self, from: Data(headBytes)) } catch {
                throw CheckpointError("\(path): cannot decode: \(error)")
            }
            let count = try r.read(UInt64.self)
            guard count <= UInt64(r.remaining) else { throw CheckpointError("\(path): pending count \(count) exceeds the file") }
            var pending: [Checkpoint.PendingRecord] = []
            pending.reserveCapacity(Int(count))
            for _ in 0..<count {
                let id = try r.readString()
                let arrival = try r.readDouble()
                let score = try r.readFloat()
                let average = try r.readFloat()
                let probability = version >= 2 ? try r.readFloat() : .nan
                let entries = try r.readEntries()
                pending.append(.init(id: id, instance: PendingInstance(entries: entries, arrival: arrival, score: Double(score),
                                                                        average: Double(average), probability: Double(probability))))
            }
            guard r.remaining == 0 else { throw CheckpointError("\(path): \(r.remaining) unexpected trailing bytes") }
            return Checkpoint(head: head, pending: pending)
        } catch let e as CheckpointError {
            throw e
        } catch {
            throw CheckpointError("\(path): payload ends early (truncated)")
        }
    }

    static let fnvOffset: UInt64 = 0xcbf2_9ce4_8422_2325

    /// FNV-1a of `data`, continuing from `h` (the hash of what came before it).
    static func fnv1a<D: DataProtocol>(_ data: D, from h: UInt64 = fnvOffset) -> UInt64 {
        var h = h
        for region in data.regions {
            for b in region { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        }
        return h
    }
}
