#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Fixed bins of a probability, equally wide on the log-odds scale (0.75 apart from
/// -7.5 to 7.5, plus the two tails): fraud classifiers put nearly all their mass below
/// 0.05, where bins equally wide in probability would hold everything in one. Binning is
/// a binary search over precomputed edges (no logarithm on the scoring path).
public enum ProbabilityBins {
    /// Upper edges (exclusive) in probability of every bin but the last.
    public static let edges: [Double] = stride(from: -7.5, through: 7.5, by: 0.75).map { 1 / (1 + exp(-$0)) }
    public static var count: Int { edges.count + 1 }

    /// The bin of `p`; a non-finite value goes to the middle bin (callers never pass
    /// one: decoding rejects them).
    @inline(__always)
    public static func index(of p: Double) -> Int {
        edges.withUnsafeBufferPointer { index(of: p, in: $0) }
    }

    /// The bin of `p` given `edges` (a caller binning many values takes the edges once:
    /// each access to the shared array costs a reference count).
    @inline(__always)
    public static func index(of p: Double, in e: UnsafeBufferPointer<Double>) -> Int {
        guard p.isFinite else { return e.count / 2 }
        // Branch-free (a fixed number of conditional moves): outputs arrive in no order a
        // branch predictor could learn.
        var base = 0, n = e.count
        while n > 1 {
            let half = n &>> 1
            base = e[base &+ half] <= p ? base &+ half : base
            n &-= half
        }
        return base &+ (e[base] <= p ? 1 : 0)
    }
}
