/// The two batch input topics of docs/protocol.md: many instances in one body.
public enum BatchTopic: String, Sendable {
    /// Entries are `pred` bodies (each may carry its `label`).
    case predBatch = "pred_batch"
    /// Entries are `label` bodies.
    case labelBatch = "label_batch"

    /// The topic each entry is decoded as.
    public var entryTopic: InputTopic { self == .predBatch ? .pred : .label }

    /// Recognises the topic frame.
    public static func recognise(_ frame: UnsafeRawBufferPointer) -> BatchTopic? {
        if frame.elementsEqual("pred_batch".utf8) { return .predBatch }
        if frame.elementsEqual("label_batch".utf8) { return .labelBatch }
        return nil
    }
}

/// Finds the entries of a batch body, `{"items": [ENTRY, ENTRY, ...]}`, without reading
/// them: each entry is then decoded on its own as a `pred` or `label` body, so a bad
/// entry is rejected alone and its neighbours go on.
///
/// The envelope is read strictly (an object; `items` required, an array, once; other
/// fields skipped, as everywhere in the protocol). Inside the array, entries are
/// delimited by their brackets and strings only, so an entry that is not valid JSON
/// (a `NaN`, a typo) does not hide where the next one starts. Only a body whose
/// structure cannot be followed (unbalanced brackets, an unterminated string) is
/// rejected as a whole. Allocates nothing in steady state.
public struct BatchSplitter {
    /// Byte ranges of the entries found, in order (at most `maxEntries`).
    public private(set) var entries: [Range<Int>] = []
    /// Entries beyond `maxEntries`: counted, not read.
    public private(set) var beyond = 0
    public let maxEntries: Int
    public let maxDepth: Int
    private let scratch = ByteScratch()

    public init(maxEntries: Int, maxDepth: Int = 16) {
        self.maxEntries = maxEntries
        self.maxDepth = maxDepth
        entries.reserveCapacity(min(maxEntries, 4096))
    }

    /// Splits `body`, or throws why the batch as a whole cannot be read.
    public mutating func split(_ body: UnsafeRawBufferPointer, topic: BatchTopic) throws(DecodeError) {
        entries.removeAll(keepingCapacity: true)
        beyond = 0
        let t = topic.rawValue
        func fail(_ reason: String, _ kind: String = "json") -> DecodeError { DecodeError(reason, kind: kind, topic: t) }
        var s = JSONScanner(body, maxDepth: maxDepth)
        do {
            guard s.nextKind() == .object else {
                throw fail(s.nextKind() == .end ? "empty body" : "body must be a JSON object {\"items\": [...]}")
            }
            s.pos += 1
            var seenItems = false
            if !s.consume(UInt8(ascii: "}")) {
                repeat {
                    let isItems = try s.readString(scratch: scratch).elementsEqual("items".utf8)
                    try s.expect(UInt8(ascii: ":"), "':'")
                    if isItems {
                        if seenItems { throw fail("duplicate field 'items'", "field") }
                        seenItems = true
                        guard s.nextKind() == .array else { throw fail("items: expected an array of entries", "field") }
                        s.pos += 1
                        try splitItems(&s, fail: fail)
                    } else {
                        try s.skipValue(depth: 2)
                    }
                } while s.consume(UInt8(ascii: ","))
                try s.expect(UInt8(ascii: "}"), "',' or '}'")
            }
            s.skipWhitespace()
            if !s.atEnd { throw fail("trailing bytes after the JSON object") }
            if !seenItems { throw fail("items: required (the array of entries)", "field") }
            if entries.isEmpty && beyond == 0 { throw fail("items: at least one entry is required", "field") }
        } catch let e as ScanError {
            switch e {
            case .syntax(let why): throw fail("invalid JSON: \(why)")
            case .tooDeep: throw fail("JSON nested deeper than \(maxDepth) levels", "limit")
            }
        } catch let e as DecodeError {
            throw e
        } catch {
            throw fail("\(error)")
        }
    }

    /// From just after `[` to just after the matching `]`: records each entry's range.
    /// Bytes that change no state (digits, letters, most punctuation) are skipped by a
    /// table lookup each, without a branch per kind.
    private mutating func splitItems(_ s: inout JSONScanner, fail: (String, String) -> DecodeError) throws {
        if s.consume(UInt8(ascii: "]")) { return }
        var start = s.pos
        var depth = 0
        let base = s.base, end = s.end, kind = Self.kind
        var pos = s.pos
        defer { s.pos = pos }
        while pos < end {
            let c = base[pos]
            pos += 1
            switch kind[Int(c)] {
            case 0:
                continue
            case 1:   // a string: to its closing quote, past escapes
                var closed = false
                while pos < end {
                    let d = base[pos]
                    pos += 1
                    if d == UInt8(ascii: "\\") { pos += 1 } else if d == UInt8(ascii: "\"") { closed = true; break }
                }
                if !closed { throw fail("items: unterminated string", "json") }
            case 2:   // { or [
                depth += 1
                if depth > maxDepth { throw ScanError.tooDeep }
            case 3:   // }
                depth -= 1
                if depth < 0 { throw fail("items: unbalanced '}' at byte \(pos - 1)", "json") }
            case 4:   // ]
                if depth == 0 {
                    record(start..<(pos - 1))
                    return
                }
                depth -= 1
            default:  // ,
                if depth == 0 {
                    record(start..<(pos - 1))
                    start = pos
                }
            }
        }
        throw fail("items: the array is not closed", "json")
    }

    /// What each byte is to the splitter: 0 nothing, 1 a quote, 2 an opening bracket,
    /// 3 `}`, 4 `]`, 5 a comma.
    private static let kind: [UInt8] = {
        var t = [UInt8](repeating: 0, count: 256)
        t[Int(UInt8(ascii: "\""))] = 1
        t[Int(UInt8(ascii: "{"))] = 2
        t[Int(UInt8(ascii: "["))] = 2
        t[Int(UInt8(ascii: "}"))] = 3
        t[Int(UInt8(ascii: "]"))] = 4
        t[Int(UInt8(ascii: ","))] = 5
        return t
    }()

    private mutating func record(_ range: Range<Int>) {
        if entries.count < maxEntries { entries.append(range) } else { beyond += 1 }
    }
}
