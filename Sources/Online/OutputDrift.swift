/// How far the distribution of the published score has moved: the population
/// stability index between a trailing reference (the `referenceSize` values just before
/// the recent window: the score moves with every model update, and only a change faster
/// than learning is one) and the recent `recentSize` values, over `ProbabilityBins`
/// (docs/alerts.md, score_drift). The classifiers' windows, against a pinned reference,
/// are `ClassifierDriftTable`.
///
/// Recording is O(1) and allocates nothing: a ring of bin numbers and two count
/// vectors.
public struct OutputDrift: Codable, Sendable, Equatable {
    public let recentSize: Int
    public let referenceSize: Int
    private var ring: [UInt8]
    private var next = 0
    private var filled = 0
    private var recentCounts: [Int32]
    private var referenceCounts: [Int32]
    private var referenceTotal = 0

    public init(recentSize: Int, referenceSize: Int) {
        precondition(recentSize > 0 && referenceSize > 0)
        self.recentSize = recentSize
        self.referenceSize = referenceSize
        ring = [UInt8](repeating: 0, count: recentSize + referenceSize)
        recentCounts = [Int32](repeating: 0, count: ProbabilityBins.count)
        referenceCounts = [Int32](repeating: 0, count: ProbabilityBins.count)
    }

    /// Values in the reference now, and in the recent window.
    public var referenceCount: Int { referenceTotal }
    public var recentCount: Int { min(filled, recentSize) }

    /// Whether the reference holds all it will.
    public var referenceFull: Bool { referenceTotal >= referenceSize }

    @inline(__always)
    public mutating func record(_ p: Double) { record(bin: ProbabilityBins.index(of: p)) }

    /// Records a value by its bin (`ProbabilityBins.index`).
    @inline(__always)
    public mutating func record(bin b: Int) {
        let cap = ring.count
        recentCounts.withUnsafeMutableBufferPointer { recent in
            referenceCounts.withUnsafeMutableBufferPointer { ref in
                ring.withUnsafeMutableBufferPointer { ring in
                    if filled == cap {
                        // The oldest value leaves the reference.
                        ref[Int(ring[next])] &-= 1
                        referenceTotal &-= 1
                    }
                    if filled >= recentSize {
                        // The value `recentSize` back moves from the recent window into the reference.
                        var i = next - recentSize
                        if i < 0 { i += cap }
                        let moving = Int(ring[i])
                        recent[moving] &-= 1
                        ref[moving] &+= 1
                        referenceTotal &+= 1
                    }
                    ring[next] = UInt8(truncatingIfNeeded: b)
                    recent[b] &+= 1
                }
            }
        }
        next = next &+ 1 == cap ? 0 : next &+ 1
        if filled < cap { filled &+= 1 }
    }

    /// The population stability index between the windows (`PopulationStability`).
    /// Nil until the reference is full and the recent window holds `recentSize` values.
    public func statistic() -> (psi: Double, noise: Double, recent: Int, reference: Int)? {
        let recentTotal = recentCounts.reduce(0) { $0 + Int($1) }
        guard referenceFull, recentTotal >= recentSize else { return nil }
        let s = recentCounts.withUnsafeBufferPointer { r in
            referenceCounts.withUnsafeBufferPointer { q in
                PopulationStability.index(recent: r, reference: q, recentTotal: recentTotal, referenceTotal: referenceTotal)
            }
        }
        return (s.psi, s.noise, recentTotal, referenceTotal)
    }
}
