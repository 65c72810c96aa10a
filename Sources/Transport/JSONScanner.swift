#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a JSON token could not be read; turned into a protocol reject reason by the decoder.
enum ScanError: Error {
    case syntax(String)
    case tooDeep
}

/// A strict RFC 8259 scanner over a byte buffer, made for the two small message shapes
/// of docs/protocol.md: it reads tokens in place and allocates nothing for keys, numbers
/// or skipped values. Strings are unescaped into a reusable scratch buffer.
struct JSONScanner: ~Copyable {
    let base: UnsafePointer<UInt8>
    let end: Int
    var pos: Int = 0
    let maxDepth: Int

    init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        // An empty buffer still needs a valid pointer; `end` stays 0 so it is never read.
        base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1)!
        end = bytes.count
        self.maxDepth = maxDepth
    }

    var atEnd: Bool { pos >= end }

    @inline(__always) func peek() -> UInt8? { pos < end ? base[pos] : nil }

    @inline(__always) mutating func skipWhitespace() {
        while pos < end {
            let c = base[pos]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { pos += 1 } else { return }
        }
    }

    /// Skips whitespace and consumes `byte` if it is next.
    @inline(__always) mutating func consume(_ byte: UInt8) -> Bool {
        skipWhitespace()
        if pos < end && base[pos] == byte { pos += 1; return true }
        return false
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(ScanError) {
        if !consume(byte) { throw .syntax("expected \(what) at byte \(pos)") }
    }

    /// What kind of value starts next (after whitespace).
    enum Kind { case object, array, string, number, bool, null, invalid, end }

    mutating func nextKind() -> Kind {
        skipWhitespace()
        guard let c = peek() else { return .end }
        switch c {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        default: return .invalid
        }
    }

    // MARK: Literals

    private mutating func literal(_ text: StaticString) -> Bool {
        let n = text.utf8CodeUnitCount
        guard end - pos >= n else { return false }
        for i in 0..<n where base[pos + i] != text.utf8Start[i] { return false }
        pos += n
        return true
    }

    mutating func readBool() throws(ScanError) -> Bool {
        skipWhitespace()
        if literal("true") { return true }
        if literal("false") { return false }
        throw .syntax("invalid literal at byte \(pos)")
    }

    mutating func readNull() throws(ScanError) {
        skipWhitespace()
        if !literal("null") { throw .syntax("invalid literal at byte \(pos)") }
    }

    // MARK: Strings

    /// Reads a string and returns its unescaped bytes: a view into the input when the
    /// string has no escapes (the common case, nothing copied), else `scratch`'s contents.
    /// The input was already checked to be valid UTF-8, so raw bytes are taken as they are.
    /// The view is valid until the next read into `scratch` and while the input lives.
    mutating func readString(scratch: ByteScratch) throws(ScanError) -> UnsafeBufferPointer<UInt8> {
        skipWhitespace()
        guard pos < end, base[pos] == UInt8(ascii: "\"") else { throw .syntax("expected a string at byte \(pos)") }
        pos += 1
        let first = pos
        while pos < end {
            let c = base[pos]
            if c == UInt8(ascii: "\"") {
                pos += 1
                return UnsafeBufferPointer(start: base + first, count: pos - 1 - first)
            }
            if c == UInt8(ascii: "\\") || c < 0x20 { break }
            pos += 1
        }
        scratch.removeAll()
        scratch.append(UnsafeBufferPointer(start: base + first, count: pos - first))
        try readEscaped(into: scratch)
        return scratch.bytes
    }

    /// The rest of a string that has escapes, from `pos`, unescaped into `out`.
    private mutating func readEscaped(into out: ByteScratch) throws(ScanError) {
        while pos < end {
            let c = base[pos]
            pos += 1
            if c == UInt8(ascii: "\"") { return }
            if c < 0x20 { throw .syntax("control character in string at byte \(pos - 1)") }
            if c != UInt8(ascii: "\\") { out.append(c); continue }
            guard pos < end else { break }
            let e = base[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if scalar >= 0xD800 && scalar < 0xDC00 {
                    guard end - pos >= 2, base[pos] == UInt8(ascii: "\\"), base[pos + 1] == UInt8(ascii: "u") else {
                        throw .syntax("unpaired surrogate in string at byte \(pos)")
                    }
                    pos += 2
                    let low = try hex4()
                    guard low >= 0xDC00 && low < 0xE000 else { throw .syntax("unpaired surrogate in string at byte \(pos)") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if scalar >= 0xDC00 && scalar < 0xE000 {
                    throw .syntax("unpaired surrogate in string at byte \(pos)")
                }
                appendUTF8(scalar, to: out)
            default:
                throw .syntax("invalid escape in string at byte \(pos - 1)")
            }
        }
        throw .syntax("unterminated string")
    }

    private mutating func hex4() throws(ScanError) -> UInt32 {
        guard end - pos >= 4 else { throw .syntax("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = base[pos]
            pos += 1
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw .syntax("invalid \\u escape at byte \(pos - 1)")
            }
            v = v << 4 | d
        }
        return v
    }

    private func appendUTF8(_ s: UInt32, to out: ByteScratch) {
        switch s {
        case 0..<0x80: out.append(UInt8(s))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | (s >> 6))); out.append(UInt8(0x80 | (s & 0x3F)))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | (s >> 12))); out.append(UInt8(0x80 | ((s >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (s & 0x3F)))
        default:
            out.append(UInt8(0xF0 | (s >> 18))); out.append(UInt8(0x80 | ((s >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((s >> 6) & 0x3F))); out.append(UInt8(0x80 | (s & 0x3F)))
        }
    }

    // MARK: Numbers

    private static let exactPowers: [Double] = (0...22).map { pow(10.0, Double($0)) }

    /// Reads a JSON number. The grammar has no NaN or Infinity, but a valid number can
    /// be too large for a double (`1e999`): that one reads as an infinity, for the
    /// caller to reject as a value out of its range.
    mutating func readNumber() throws(ScanError) -> Double {
        skipWhitespace()
        let start = pos
        var negative = false
        if pos < end && base[pos] == UInt8(ascii: "-") { negative = true; pos += 1 }
        guard pos < end, isDigit(base[pos]) else { throw .syntax("expected a number at byte \(start)") }
        var mantissa: UInt64 = 0
        var digits = 0
        var exponent = 0
        if base[pos] == UInt8(ascii: "0") {
            pos += 1
            if pos < end && isDigit(base[pos]) { throw .syntax("leading zero in number at byte \(start)") }
        } else {
            while pos < end && isDigit(base[pos]) {
                if digits < 19 { mantissa = mantissa &* 10 &+ UInt64(base[pos] - 48); digits += mantissa == 0 ? 0 : 1 } else { exponent += 1 }
                pos += 1
            }
        }
        if pos < end && base[pos] == UInt8(ascii: ".") {
            pos += 1
            guard pos < end, isDigit(base[pos]) else { throw .syntax("expected a digit after '.' at byte \(pos)") }
            while pos < end && isDigit(base[pos]) {
                if digits < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(base[pos] - 48)
                    if mantissa != 0 { digits += 1 }
                    exponent -= 1
                }
                pos += 1
            }
        }
        if pos < end && (base[pos] == UInt8(ascii: "e") || base[pos] == UInt8(ascii: "E")) {
            pos += 1
            var expNegative = false
            if pos < end && (base[pos] == UInt8(ascii: "+") || base[pos] == UInt8(ascii: "-")) {
                expNegative = base[pos] == UInt8(ascii: "-"); pos += 1
            }
            guard pos < end, isDigit(base[pos]) else { throw .syntax("expected an exponent at byte \(pos)") }
            var e = 0
            while pos < end && isDigit(base[pos]) {
                if e < 100_000 { e = e * 10 + Int(base[pos] - 48) }
                pos += 1
            }
            exponent += expNegative ? -e : e
        }
        // Fast path: both mantissa and power of ten are exact doubles, so one operation
        // rounds correctly. Everything else goes through strtod.
        var value: Double
        if mantissa < (1 << 53) && exponent >= -22 && exponent <= 22 {
            value = Double(mantissa)
            value = exponent < 0 ? value / Self.exactPowers[-exponent] : value * Self.exactPowers[exponent]
        } else {
            value = slowParse(start: start, count: pos - start)
            return negative ? -value : value
        }
        return negative ? -value : value
    }

    private func slowParse(start: Int, count: Int) -> Double {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: count + 1) { buf in
            var n = 0
            let skip = base[start] == UInt8(ascii: "-") ? 1 : 0
            for i in skip..<count {
                buf[n] = CChar(bitPattern: base[start + i]); n += 1
            }
            buf[n] = 0
            return strtod(buf.baseAddress!, nil)
        }
    }

    @inline(__always) private func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }

    // MARK: Skipping

    /// Skips one value of any kind, refusing nesting deeper than `maxDepth`.
    mutating func skipValue(depth: Int) throws(ScanError) {
        if depth > maxDepth { throw .tooDeep }
        switch nextKind() {
        case .object:
            pos += 1
            if consume(UInt8(ascii: "}")) { return }
            repeat {
                try skipString()
                try expect(UInt8(ascii: ":"), "':'")
                try skipValue(depth: depth + 1)
            } while consume(UInt8(ascii: ","))
            try expect(UInt8(ascii: "}"), "',' or '}'")
        case .array:
            pos += 1
            if consume(UInt8(ascii: "]")) { return }
            repeat { try skipValue(depth: depth + 1) } while consume(UInt8(ascii: ","))
            try expect(UInt8(ascii: "]"), "',' or ']'")
        case .string: try skipString()
        case .number: _ = try readNumber()
        case .bool: _ = try readBool()
        case .null: try readNull()
        case .invalid: throw .syntax("unexpected character at byte \(pos)")
        case .end: throw .syntax("unexpected end of input")
        }
    }

    mutating func skipString() throws(ScanError) {
        skipWhitespace()
        guard pos < end, base[pos] == UInt8(ascii: "\"") else { throw .syntax("expected a string at byte \(pos)") }
        pos += 1
        while pos < end {
            let c = base[pos]
            pos += 1
            if c == UInt8(ascii: "\"") { return }
            if c < 0x20 { throw .syntax("control character in string at byte \(pos - 1)") }
            if c == UInt8(ascii: "\\") {
                guard pos < end else { break }
                let e = base[pos]
                pos += 1
                if e == UInt8(ascii: "u") {
                    guard end - pos >= 4 else { break }
                    for _ in 0..<4 {
                        guard isHex(base[pos]) else { throw .syntax("invalid \\u escape at byte \(pos)") }
                        pos += 1
                    }
                } else if !"\"\\/bfnrt".utf8.contains(e) {
                    throw .syntax("invalid escape in string at byte \(pos - 1)")
                }
            }
        }
        throw .syntax("unterminated string")
    }

    @inline(__always) private func isHex(_ c: UInt8) -> Bool {
        isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70)
    }
}

/// Checks that `bytes` is well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF).
func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var i = 0
    let n = bytes.count
    while i < n {
        // ASCII, the common case, eight bytes at a time.
        if n - i >= 8, bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
            i += 8
            continue
        }
        let c = bytes[i]
        if c < 0x80 { i += 1; continue }
        var need = 0
        var lower: UInt8 = 0x80, upper: UInt8 = 0xBF
        switch c {
        case 0xC2...0xDF: need = 1
        case 0xE0: need = 2; lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: need = 2
        case 0xED: need = 2; upper = 0x9F
        case 0xF0: need = 3; lower = 0x90
        case 0xF1...0xF3: need = 3
        case 0xF4: need = 3; upper = 0x8F
        default: return false
        }
        guard i + need < n else { return false }
        let b1 = bytes[i + 1]
        guard b1 >= lower && b1 <= upper else { return false }
        for k in 2...max(2, need) where k <= need {
            guard bytes[i + k] & 0xC0 == 0x80 else { return false }
        }
        i += need + 1
    }
    return true
}
