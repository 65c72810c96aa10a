/// Reusable storage for received multipart messages: one fixed-capacity buffer per
/// expected frame, so that steady-state receiving allocates nothing.
///
/// Frames beyond the buffers are counted but not kept; a frame longer than its buffer
/// is truncated and `lengths` holds its true size, so callers can reject it.
public struct MultipartMessage {
    /// One buffer per frame that is kept; `frames[i].count` is its capacity.
    public internal(set) var frames: [[UInt8]]
    /// The true size of each kept frame in the last message.
    public internal(set) var lengths: [Int]
    /// How many frames the last message had (may exceed `frames.count`).
    public internal(set) var frameCount: Int = 0

    /// - Parameter capacities: the largest accepted size of each frame, in order.
    public init(capacities: [Int]) {
        frames = capacities.map { [UInt8](repeating: 0, count: max($0, 1)) }
        lengths = [Int](repeating: 0, count: capacities.count)
    }

    /// Holds a two-frame message as if it had been received (what receiving copies in,
    /// without a socket: the daemon's `--cost-floor`, tests).
    public mutating func fill(topic: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) {
        frameCount = 2
        put(0, topic)
        put(1, body)
    }

    private mutating func put(_ i: Int, _ part: UnsafeRawBufferPointer) {
        guard i < frames.count else { return }
        lengths[i] = part.count
        let n = min(part.count, frames[i].count)
        guard n > 0, let from = part.baseAddress else { return }
        frames[i].withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: from, byteCount: n) }
    }

    /// Whether frame `i` was larger than its buffer.
    public func isTruncated(_ i: Int) -> Bool { lengths[i] > frames[i].count }

    /// Calls `body` with the received bytes of frame `i` (at most its capacity).
    public func withFrame<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let n = min(lengths[i], frames[i].count)
        return try frames[i].withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }
}
