/// Limits that bound the work and memory one input message can cost.
public struct InputLimits: Sendable {
    /// Longest accepted `id`, in UTF-8 bytes (docs/protocol.md: 256).
    public var maxIdBytes = 256
    /// Most classifiers one message may carry.
    public var maxPreds = 256
    /// Deepest JSON nesting accepted anywhere in a body (unknown fields included).
    public var maxDepth = 16
    /// `ts` is seconds since the Unix epoch: from 2001-09-09 (1e9) up to 2286 (1e10).
    /// Values from 1e11 on are read as milliseconds by mistake and said so.
    public static let tsRange: Range<Double> = 1e9..<1e10
    public static let tsMillisecondsFrom = 1e11

    public init(maxIdBytes: Int = 256, maxPreds: Int = 256, maxDepth: Int = 16) {
        self.maxIdBytes = maxIdBytes
        self.maxPreds = maxPreds
        self.maxDepth = maxDepth
    }
}

/// Decodes and validates `pred` and `label` bodies (docs/protocol.md) without allocating
/// in steady state. Every violated rule yields a `DecodeError` with a precise reason.
///
/// Unknown fields are skipped (forward compatibility); duplicate known fields,
/// duplicate classifier names and trailing bytes are rejected.
public struct MessageDecoder {
    public let limits: InputLimits
    private let scratch = ByteScratch()
    /// Packed names of the current message's readings, for the duplicate check.
    private var keys: [NameKey] = []
    /// The last message's names by position: producers repeat the same names in the
    /// same order, so a name whose bytes match is reused instead of validated and built again.
    private var recentNames: [(key: NameKey, name: String)] = []

    public init(limits: InputLimits = InputLimits()) {
        self.limits = limits
        keys.reserveCapacity(64)
        recentNames.reserveCapacity(64)
    }

    /// Recognises the topic frame.
    public static func topic(_ frame: UnsafeRawBufferPointer) -> InputTopic? {
        if frame.elementsEqual("pred".utf8) { return .pred }
        if frame.elementsEqual("label".utf8) { return .label }
        return nil
    }

    /// The `ping` topic: a producer's readiness check (its body is not read).
    public static func isPing(_ frame: UnsafeRawBufferPointer) -> Bool { frame.elementsEqual("ping".utf8) }

    /// A printable rendering of an unrecognised topic frame, for error reports.
    public static func describeTopic(_ frame: UnsafeRawBufferPointer) -> String {
        let shown = frame.prefix(32).map { (0x20...0x7E).contains($0) ? Character(UnicodeScalar($0)) : "?" }
        return String(shown) + (frame.count > 32 ? "..." : "")
    }

    /// Decodes `body` for `topic` into `message`, or throws why it is invalid.
    public mutating func decode(topic: InputTopic, body: UnsafeRawBufferPointer, into message: inout InputMessage) throws(DecodeError) {
        message.topic = topic
        message.id = ""
        message.ts = nil
        message.preds.removeAll(keepingCapacity: true)
        message.label = nil
        guard isValidUTF8(body) else {
            throw DecodeError("body is not valid UTF-8", kind: "json", topic: topic.rawValue)
        }
        var s = JSONScanner(body, maxDepth: limits.maxDepth)
        do {
            try decodeObject(&s, topic: topic, into: &message)
        } catch let e as ScanError {
            throw wrap(e, topic: topic, message: message)
        } catch let e as DecodeError {
            throw e
        } catch {
            throw DecodeError("\(error)", kind: "json", topic: topic.rawValue)
        }
    }

    private func wrap(_ e: ScanError, topic: InputTopic, message: InputMessage) -> DecodeError {
        let id = message.id.isEmpty ? nil : message.id
        switch e {
        case .syntax(let why): return DecodeError("invalid JSON: \(why)", kind: "json", topic: topic.rawValue, id: id)
        case .tooDeep: return DecodeError("JSON nested deeper than \(limits.maxDepth) levels", kind: "limit", topic: topic.rawValue, id: id)
        }
    }

    private mutating func decodeObject(_ s: inout JSONScanner, topic: InputTopic, into m: inout InputMessage) throws {
        let t = topic.rawValue
        func fail(_ reason: String, _ kind: String = "field") -> DecodeError {
            DecodeError(reason, kind: kind, topic: t, id: m.id.isEmpty ? nil : m.id)
        }
        guard s.nextKind() == .object else {
            if s.nextKind() == .end { throw fail("empty body", "json") }
            throw fail("body must be a JSON object", "json")
        }
        s.pos += 1
        var seenId = false, seenTs = false, seenPreds = false, seenLabel = false
        if !s.consume(UInt8(ascii: "}")) {
            repeat {
                let field = NameKey(try s.readString(scratch: scratch))
                try s.expect(UInt8(ascii: ":"), "':'")
                if field == .id {
                    if seenId { throw fail("duplicate field 'id'") }
                    seenId = true
                    guard s.nextKind() == .string else { throw fail("id: expected a string") }
                    let id = try s.readString(scratch: scratch)
                    if id.isEmpty { throw fail("id: must not be empty") }
                    if id.count > limits.maxIdBytes {
                        throw fail("id: \(id.count) bytes is longer than \(limits.maxIdBytes)")
                    }
                    m.id = String(decoding: id, as: UTF8.self)
                } else if field == .ts {
                    if seenTs { throw fail("duplicate field 'ts'") }
                    seenTs = true
                    switch s.nextKind() {
                    case .null: try s.readNull()
                    case .number:
                        let v = try s.readNumber()
                        if v >= InputLimits.tsMillisecondsFrom && v.isFinite {
                            throw fail("ts: \(format(v)) looks like milliseconds; ts is seconds since the Unix epoch")
                        }
                        if !(v >= InputLimits.tsRange.lowerBound && v < InputLimits.tsRange.upperBound) {
                            throw fail("ts: \(format(v)) is not a time between 2001 and 2286 in seconds since the Unix epoch")
                        }
                        m.ts = v
                    default: throw fail("ts: expected a number of seconds since the Unix epoch")
                    }
                } else if field == .label {
                    if seenLabel { throw fail("duplicate field 'label'") }
                    seenLabel = true
                    m.label = try readLabel(&s, fail: fail)
                } else if field == .preds {
                    if seenPreds { throw fail("duplicate field 'preds'") }
                    seenPreds = true
                    try readPreds(&s, into: &m)
                } else {
                    try s.skipValue(depth: 2)
                }
            } while s.consume(UInt8(ascii: ","))
            try s.expect(UInt8(ascii: "}"), "',' or '}'")
        }
        s.skipWhitespace()
        if !s.atEnd { throw fail("trailing bytes after the JSON object", "json") }
        if !seenId { throw fail("id: required") }
        switch topic {
        case .pred:
            if !seenPreds { throw fail("preds: required") }
        case .label:
            if m.label == nil { throw fail("label: required (0 or 1)") }
        }
    }

    private mutating func readLabel(_ s: inout JSONScanner, fail: (String, String) -> DecodeError) throws -> Int8? {
        switch s.nextKind() {
        case .null:
            try s.readNull()
            return nil
        case .bool:
            return try s.readBool() ? 1 : 0
        case .number:
            let v = try s.readNumber()
            if v == 0 { return 0 }
            if v == 1 { return 1 }
            throw fail("label: expected 0 or 1, got \(format(v))", "field")
        case .string:
            throw fail("label: expected 0 or 1 (or true/false), got a string", "field")
        default:
            throw fail("label: expected 0 or 1 (or true/false)", "field")
        }
    }

    private mutating func readPreds(_ s: inout JSONScanner, into m: inout InputMessage) throws {
        let id = m.id.isEmpty ? nil : m.id
        let topic = m.topic.rawValue
        func fail(_ reason: String, _ kind: String) -> DecodeError {
            DecodeError(reason, kind: kind, topic: topic, id: id)
        }
        guard s.nextKind() == .object else { throw fail("preds: expected an object of classifier name to probability", "field") }
        s.pos += 1
        if s.consume(UInt8(ascii: "}")) { throw fail("preds: at least one classifier is required", "field") }
        keys.removeAll(keepingCapacity: true)
        repeat {
            let bytes = try s.readString(scratch: scratch)
            let key = NameKey(bytes)
            let k = m.preds.count
            let name: String
            if key.isPacked, k < recentNames.count, recentNames[k].key == key {
                name = recentNames[k].name
            } else {
                guard let valid = validName(bytes) else {
                    throw fail("preds: invalid classifier name \"\(printable(bytes))\": 1-64 characters of [A-Za-z0-9_.-]", "field")
                }
                name = valid
                if key.isPacked {
                    if k < recentNames.count { recentNames[k] = (key, name) } else if k == recentNames.count { recentNames.append((key, name)) }
                }
            }
            try s.expect(UInt8(ascii: ":"), "':'")
            let kind = s.nextKind()
            guard kind == .number else {
                let got = switch kind {
                case .string: "a string"
                case .bool: "a boolean"
                case .null: "null"
                case .object: "an object"
                case .array: "an array"
                default: "no valid JSON value (NaN and Infinity are not JSON)"
                }
                // A value that is not JSON at all (NaN, Infinity, a typo) makes the body invalid JSON.
                let valid = kind == .string || kind == .bool || kind == .null || kind == .object || kind == .array
                throw fail("preds.\(name): expected a number in [0, 1], got \(got)", valid ? "field" : "json")
            }
            let v = try s.readNumber()
            if !(v >= 0 && v <= 1) { throw fail("preds.\(name): \(format(v)) is outside [0, 1]", "field") }
            if m.preds.count >= limits.maxPreds {
                throw fail("preds: more than \(limits.maxPreds) classifiers in one message", "limit")
            }
            for (j, other) in keys.enumerated() where other == key && (key.isPacked || m.preds[j].name == name) {
                throw fail("preds: duplicate classifier '\(name)'", "field")
            }
            keys.append(key)
            m.preds.append(Reading(name: name, value: v))
        } while s.consume(UInt8(ascii: ","))
        try s.expect(UInt8(ascii: "}"), "',' or '}'")
    }

    private func validName(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        guard !bytes.isEmpty, bytes.count <= 64 else { return nil }
        for c in bytes {
            let ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
                || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: "-")
            if !ok { return nil }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private func printable(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        let s = String(decoding: bytes.prefix(64), as: UTF8.self)
        let cleaned = s.unicodeScalars.map { $0.value < 0x20 || $0 == "\"" || $0 == "\\" ? "?" : String($0) }.joined()
        return bytes.count > 64 ? cleaned + "..." : cleaned
    }

    private func format(_ v: Double) -> String {
        if !v.isFinite { return v > 0 ? "a number too large for a double" : "a number too small for a double" }
        return v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : "\(v)"
    }
}

/// A classifier name of up to 16 bytes packed into two words with its length, so that
/// comparing two names is two integer comparisons. Longer names keep only their length
/// (`isPacked` is false) and are compared as strings.
struct NameKey: Equatable {
    var low: UInt64 = 0
    var high: UInt64 = 0
    var count: Int

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        count = bytes.count
        guard count <= 16 else { return }
        for (i, b) in bytes.enumerated() {
            if i < 8 { low |= UInt64(b) << (8 * UInt64(i)) } else { high |= UInt64(b) << (8 * UInt64(i - 8)) }
        }
    }

    init(_ text: StaticString) {
        self.init(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    var isPacked: Bool { count <= 16 }

    static let id = NameKey("id"), ts = NameKey("ts"), label = NameKey("label"), preds = NameKey("preds")
}
