/// Appends JSON text to a reusable byte buffer: the allocation-free writer behind the
/// `score` encoder. Numbers are written with up to 15 significant digits (what a double
/// holds reliably), integers without a fraction.
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    public mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    @inline(__always) public mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// Bytes that are already JSON (a body as received).
    public mutating func raw(bytes other: UnsafeRawBufferPointer) { bytes.append(contentsOf: other) }

    /// Bytes already written by another writer.
    public mutating func raw(_ other: JSONWriter) { bytes.append(contentsOf: other.bytes) }

    /// A JSON string, escaped as RFC 8259 requires.
    public mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case 0x0A: raw("\\n")
            case 0x0D: raw("\\r")
            case 0x09: raw("\\t")
            case 0..<0x20:
                raw("\\u00")
                bytes.append(hexDigit(c >> 4))
                bytes.append(hexDigit(c & 0xF))
            default: bytes.append(c)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    @inline(__always) private func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 48 + v : 87 + v }

    public mutating func int(_ v: Int64) {
        if v < 0 { bytes.append(UInt8(ascii: "-")) }
        var m = v.magnitude
        if m == 0 { bytes.append(48); return }
        let start = bytes.count
        while m > 0 { bytes.append(UInt8(48 + m % 10)); m /= 10 }
        reverseTail(from: start)
    }

    /// Reverses bytes[start...] in place (a slice's `reverse()` can copy the buffer).
    @inline(__always) private mutating func reverseTail(from start: Int) {
        bytes.withUnsafeMutableBufferPointer { b in
            var i = start, j = b.count - 1
            while i < j { b.swapAt(i, j); i += 1; j -= 1 }
        }
    }

    public mutating func bool(_ v: Bool) { if v { raw("true") } else { raw("false") } }

    /// A finite double; non-finite values are written as `null` (JSON has no NaN).
    public mutating func double(_ v: Double) {
        guard v.isFinite else { raw("null"); return }
        if v == 0 { bytes.append(48); return }
        var x = v
        if x < 0 { bytes.append(UInt8(ascii: "-")); x = -x }
        if x >= 1e15 || x < 1e-4 {
            exponential(x)
            return
        }
        // Fixed notation with 15 significant digits, trailing zeros removed.
        var intPart = x.rounded(.towardZero)
        var intDigits = 1
        var p = 10.0
        while p <= intPart { intDigits += 1; p *= 10 }
        var fracDigits = max(0, 15 - intDigits)
        if intPart == 0 {
            // Neither the leading "0" nor zeros right after the point are significant.
            fracDigits = 15
            var y = x
            while y < 0.1 { y *= 10; fracDigits += 1 }
        }
        var scale = 1.0
        for _ in 0..<fracDigits { scale *= 10 }
        var frac = ((x - intPart) * scale).rounded()
        if frac >= scale { intPart += 1; frac -= scale }
        int(Int64(intPart))
        var f = UInt64(frac)
        var n = fracDigits
        while n > 0 && f % 10 == 0 { f /= 10; n -= 1 }
        guard n > 0 else { return }
        bytes.append(UInt8(ascii: "."))
        let start = bytes.count
        for _ in 0..<n { bytes.append(UInt8(48 + f % 10)); f /= 10 }
        reverseTail(from: start)
    }

    private mutating func exponential(_ x: Double) {
        var e = 0
        var m = x
        while m >= 10 { m /= 10; e += 1 }
        while m < 1 { m *= 10; e -= 1 }
        double(m)
        bytes.append(UInt8(ascii: "e"))
        int(Int64(e))
    }
}
