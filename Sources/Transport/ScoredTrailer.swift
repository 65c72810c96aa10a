/// The third frame of a `scored` message from a scorer to the learner: what the scorer
/// computed for the instance whose `pred` body is the second frame (the body is passed on
/// as received, so the learner decodes and validates it with the same decoder).
///
/// 24 bytes, little-endian IEEE 754: published score, simple average, arrival time
/// (seconds since the Unix epoch).
public enum ScoredTrailer {
    public static let size = 24
    public static let topic: StaticString = "scored"
    /// Many scored instances from one batch: a `pred_batch` body of their entries, and
    /// a frame of one trailer per entry, in the same order.
    public static let batchTopic: StaticString = "scored_batch"

    /// Whether a topic frame is `scored`.
    public static func isTopic(_ frame: UnsafeRawBufferPointer) -> Bool {
        frame.elementsEqual(UnsafeRawBufferPointer(start: topic.utf8Start, count: topic.utf8CodeUnitCount))
    }

    /// Whether a topic frame is `scored_batch`.
    public static func isBatchTopic(_ frame: UnsafeRawBufferPointer) -> Bool {
        frame.elementsEqual(UnsafeRawBufferPointer(start: batchTopic.utf8Start, count: batchTopic.utf8CodeUnitCount))
    }

    /// Appends one trailer to `bytes` (a `scored_batch`'s trailer frame).
    public static func append(score: Double, average: Double, arrival: Double, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: score.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: average.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: arrival.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// Makes `bytes` the trailer of one instance.
    public static func write(score: Double, average: Double, arrival: Double, into bytes: inout [UInt8]) {
        bytes.removeAll(keepingCapacity: true)
        append(score: score, average: average, arrival: arrival, to: &bytes)
    }

    /// nil unless the frame is exactly 24 bytes holding a score and average in [0, 1].
    public static func read(_ frame: UnsafeRawBufferPointer) -> (score: Double, average: Double, arrival: Double)? {
        guard frame.count == size else { return nil }
        func at(_ k: Int) -> Double { Double(bitPattern: UInt64(littleEndian: frame.loadUnaligned(fromByteOffset: k, as: UInt64.self))) }
        let score = at(0), average = at(8), arrival = at(16)
        guard (0...1).contains(score), (0...1).contains(average), arrival.isFinite else { return nil }
        return (score, average, arrival)
    }
}
