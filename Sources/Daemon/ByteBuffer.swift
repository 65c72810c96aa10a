import Online

/// Little-endian binary writing and bounds-checked reading, for the compact
/// pending-instance section of checkpoints and for journal records.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    var count: Int { bytes.count }
    mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    mutating func append<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }
    mutating func append(_ v: Double) { append(v.bitPattern) }
    mutating func append(_ v: Float) { append(v.bitPattern) }
    mutating func append(_ s: String) {
        let utf8 = s.utf8
        append(UInt32(utf8.count))
        bytes.append(contentsOf: utf8)
    }
    mutating func append(raw: [UInt8]) { bytes.append(contentsOf: raw) }
    /// The same layout from a stored row's columns.
    mutating func append(classifiers: UnsafeBufferPointer<UInt16>, values: UnsafeBufferPointer<Float>) {
        append(UInt16(classifiers.count))
        for k in classifiers.indices {
            append(classifiers[k])
            append(values[k])
        }
    }

    /// A u16 count, then each entry's u16 classifier and f32 probability.
    mutating func append(entries: [Entry]) {
        append(UInt16(entries.count))
        for e in entries {
            append(e.classifier)
            append(e.value)
        }
    }
}

struct ByteReader {
    struct Overrun: Error {}

    let bytes: [UInt8]
    private(set) var offset: Int

    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    mutating func read<T: FixedWidthInteger>(_: T.Type) throws(Overrun) -> T {
        let n = MemoryLayout<T>.size
        guard remaining >= n else { throw Overrun() }
        var v: T = 0
        withUnsafeMutableBytes(of: &v) { dst in
            bytes.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[offset..<(offset + n)])) }
        }
        offset += n
        return T(littleEndian: v)
    }
    mutating func readDouble() throws(Overrun) -> Double { Double(bitPattern: try read(UInt64.self)) }
    mutating func readFloat() throws(Overrun) -> Float { Float(bitPattern: try read(UInt32.self)) }
    mutating func readBytes(_ n: Int) throws(Overrun) -> ArraySlice<UInt8> {
        guard n >= 0, remaining >= n else { throw Overrun() }
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }
    mutating func readString() throws(Overrun) -> String {
        let n = Int(try read(UInt32.self))
        return String(decoding: try readBytes(n), as: UTF8.self)
    }
    /// What `ByteWriter.append(entries:)` wrote.
    mutating func readEntries() throws(Overrun) -> [Entry] {
        let n = Int(try read(UInt16.self))
        var entries: [Entry] = []
        entries.reserveCapacity(n)
        for _ in 0..<n {
            let u = try read(UInt16.self)
            let v = try readFloat()
            entries.append(Entry(classifier: Int(u), value: Double(v)))
        }
        return entries
    }
}
