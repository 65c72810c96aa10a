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

    /// Whether frame `i` was larger than its buffer.
    public func isTruncated(_ i: Int) -> Bool { lengths[i] > frames[i].count }

    /// Calls `body` with the received bytes of frame `i` (at most its capacity).
    public func withFrame<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let n = min(lengths[i], frames[i].count)
        return try frames[i].withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }
}
