#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Pre-built `pred` and `label` bodies whose 10-digit id is patched in place, so the
/// load generator (and the daemon's `--cost-floor`) allocate nothing per message. Probabilities are seeded and correlated
/// with a seeded class (10% positive), so that labels teach the daemon something real.
public struct BodyTemplates {
    public static let variants = 1024
    public let runTag: UInt8
    private var preds: [[UInt8]]
    private var labelBodies: [[UInt8]]
    /// Both bodies start with {"id":"<tag>: the 10 id digits follow at byte 8.
    private static let idOffset = 7

    public init(classifiers: Int, runTag: UInt8) {
        self.runTag = runTag
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func uniform() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
        let head = "{\"id\":\"" + String(UnicodeScalar(runTag)) + "0000000000\""
        var preds: [[UInt8]] = [], labelBodies: [[UInt8]] = []
        for _ in 0..<Self.variants {
            let y: UInt8 = uniform() < 0.1 ? 1 : 0
            var text = head + ",\"preds\":{"
            for u in 0..<classifiers {
                let skill = 0.3 + 0.1 * Double(u % 5)
                let centre = y == 1 ? 0.5 + skill / 2 : 0.5 - skill / 2
                let p = min(0.9999, max(0.0001, centre + (uniform() - 0.5) * 0.6))
                let digits = Int((p * 10000).rounded())
                let frac = String(digits)
                text += (u == 0 ? "" : ",") + "\"c\(u)\":0." + String(repeating: "0", count: 4 - frac.count) + frac
            }
            text += "}}"
            preds.append(Array(text.utf8))
            labelBodies.append(Array((head + ",\"label\":\(y)}").utf8))
        }
        self.preds = preds
        self.labelBodies = labelBodies
    }

    private static func patch(_ bytes: inout [UInt8], at offset: Int, _ id: Int) {
        var v = id
        for k in stride(from: offset + 10, to: offset, by: -1) {
            bytes[k] = UInt8(48 + v % 10)
            v /= 10
        }
    }

    /// Calls `body` with the pred of instance `i`.
    public mutating func pred<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let v = i % Self.variants
        Self.patch(&preds[v], at: Self.idOffset, i)
        return preds[v].withUnsafeBytes(body)
    }

    /// Calls `body` with the label of instance `i`.
    public mutating func label<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let v = i % Self.variants
        Self.patch(&labelBodies[v], at: Self.idOffset, i)
        return labelBodies[v].withUnsafeBytes(body)
    }

    /// A `pred_batch` (or, `labels`, a `label_batch`) body of the instances in `range`,
    /// written into `buffer` (which keeps its capacity from batch to batch).
    public mutating func batch(_ range: Range<Int>, labels: Bool = false, into buffer: inout [UInt8]) {
        buffer.removeAll(keepingCapacity: true)
        buffer.append(contentsOf: #"{"items":["#.utf8)
        for i in range {
            if i > range.lowerBound { buffer.append(UInt8(ascii: ",")) }
            let v = i % Self.variants
            if labels {
                Self.patch(&labelBodies[v], at: Self.idOffset, i)
                buffer.append(contentsOf: labelBodies[v])
            } else {
                Self.patch(&preds[v], at: Self.idOffset, i)
                buffer.append(contentsOf: preds[v])
            }
        }
        buffer.append(contentsOf: "]}".utf8)
    }

    /// Calls `each` with the instance index of every entry of a batch answer body
    /// (`score_batch` from the daemon, the `pred_batch` itself from the relay).
    public static func indexes(in data: UnsafeMutableRawPointer?, count: Int, runTag: UInt8, _ each: (Int) -> Void) {
        guard let data, count > 18 else { return }
        let b = data.assumingMemoryBound(to: UInt8.self)
        var k = 0
        while k + 18 < count {
            // Each entry starts with {"id":"<tag>: from one '{' to the next.
            guard let hit = memchr(b + k, 0x7B, count - k) else { return }
            k = hit.assumingMemoryBound(to: UInt8.self) - b
            if let i = index(in: data + k, count: count - k, runTag: runTag) {
                each(i)
                k += 18
            } else {
                k += 1
            }
        }
    }

    /// The instance index in an answer body: the digits after `"id":"<tag>`.
    public static func index(in data: UnsafeMutableRawPointer?, count: Int, runTag: UInt8) -> Int? {
        guard let data, count > 18 else { return nil }
        let b = data.assumingMemoryBound(to: UInt8.self)
        // Both answers start with {"id":" (score messages and forwarded preds).
        guard b[0] == 0x7B, b[1] == 0x22, b[2] == 0x69, b[3] == 0x64, b[6] == 0x22, b[7] == runTag else { return nil }
        var v = 0
        for k in 8..<18 {
            let c = b[k]
            guard c >= 48 && c <= 57 else { return nil }
            v = v * 10 + Int(c - 48)
        }
        return v
    }
}
