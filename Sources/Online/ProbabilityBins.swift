#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Fixed bins of a probability, equally wide on the log-odds scale (0.75 apart from
/// -7.5 to 7.5, plus the two tails): fraud classifiers put nearly all their mass below
/// 0.05, where bins equally wide in probability would hold everything in one. No
/// logarithm on the scoring path: a `Double` is binned by a binary search over
/// precomputed edges, a `Float` (what a classifier reports) by a table lookup.
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

    /// The lookup tables that bin a `Float` as `index(of: Double(p))` does (a unit test
    /// checks every bucket's boundaries and a million values), built once.
    public static let lookup = BinLookup()
}

/// Tables that bin a `Float` probability without a search (`ProbabilityBins`): the
/// value's top 12 bits (exponent and 3 bits of mantissa; of 1 − p above 0.5, where the
/// bins crowd toward 1) pick a bucket 1/8 as wide as its magnitude, narrower than any
/// bin there, so a bucket holds at most one edge: its bin below the edge, and the edge
/// rounded up to a `Float` (p ≥ it exactly when p ≥ the edge).
public struct BinLookup: @unchecked Sendable {
    /// Buckets of values up to 0.5 (0.5's top 12 bits are 0x3F0).
    static let buckets = 0x3F1
    private let lowBase: UnsafeMutablePointer<UInt8>
    private let lowEdge: UnsafeMutablePointer<Float>
    private let highBase: UnsafeMutablePointer<UInt8>
    private let highEdge: UnsafeMutablePointer<Float>
    /// A bucket holding more than one edge (none does: checked when built) is searched.
    private static let search: UInt8 = .max

    init() {
        let n = Self.buckets
        lowBase = .allocate(capacity: n)
        lowEdge = .allocate(capacity: n)
        highBase = .allocate(capacity: n)
        highEdge = .allocate(capacity: n)
        let edges = ProbabilityBins.edges
        for k in 0..<n {
            // Values with these top bits: [lo, hi).
            let lo = Double(Float(bitPattern: UInt32(k) << 20))
            let top = Double(Float(bitPattern: UInt32(k + 1) << 20).nextDown)
            Self.fill(k, lowBase, lowEdge, from: min(lo, 0.5), to: min(top, 0.5), edges: edges)
            // 1 − p with these top bits: p in [1 − top, 1 − lo].
            Self.fill(k, highBase, highEdge, from: max(0.5, 1 - top), to: max(0.5, 1 - lo), edges: edges)
        }
    }

    private static func fill(_ k: Int, _ base: UnsafeMutablePointer<UInt8>, _ edge: UnsafeMutablePointer<Float>,
                             from: Double, to: Double, edges: [Double]) {
        let first = ProbabilityBins.index(of: from), last = ProbabilityBins.index(of: to)
        base[k] = last - first > 1 ? search : UInt8(first)
        if last == first {
            edge[k] = .infinity
        } else {
            // The smallest Float not below the edge.
            let e = edges[first]
            var f = Float(e)
            if Double(f) < e { f = f.nextUp }
            edge[k] = f
        }
    }

    /// The bin of `p` (non-finite: the middle bin).
    @inline(__always)
    public func index(of p: Float) -> Int {
        guard p.isFinite else { return ProbabilityBins.edges.count / 2 }
        let x = min(max(p, 0), 1)
        let k: Int, b: UInt8, e: Float
        if x <= 0.5 {
            k = Int(x.bitPattern &>> 20)
            b = lowBase[k]; e = lowEdge[k]
        } else {
            k = Int((1 - x).bitPattern &>> 20)
            b = highBase[k]; e = highEdge[k]
        }
        if b == Self.search { return ProbabilityBins.index(of: Double(x)) }
        return Int(b) &+ (x >= e ? 1 : 0)
    }
}
