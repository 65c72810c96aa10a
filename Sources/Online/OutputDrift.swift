#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How far the distribution of one stream of probabilities (a classifier's outputs, or
/// the published score) has moved: the population stability index between a reference
/// window and the recent one, over `ProbabilityBins` (docs/alerts.md, classifier_drift).
///
/// Recording is O(log bins) and allocates nothing: a ring of bin numbers and two count
/// vectors. The reference is either `pinned` (the first `referenceSize` values after
/// the start or after `pin()`, then frozen: a classifier's outputs do not depend on the
/// model, so a change against them is a change upstream) or `trailing` (the
/// `referenceSize` values just before the recent window: the published score moves with
/// every model update, and only a change faster than learning is one).
public struct OutputDrift: Codable, Sendable, Equatable {
    public enum Reference: String, Codable, Sendable { case pinned, trailing }

    public let reference: Reference
    public let recentSize: Int
    public let referenceSize: Int
    private var ring: [UInt8]
    private var next = 0
    private var filled = 0
    private var recentCounts: [Int32]
    private var referenceCounts: [Int32]
    private var referenceTotal = 0
    /// Values recorded since the start or the last pin (for `pinned`: the reference is
    /// full once this reaches `referenceSize`).
    public private(set) var recorded = 0

    public init(reference: Reference, recentSize: Int, referenceSize: Int) {
        precondition(recentSize > 0 && referenceSize > 0)
        self.reference = reference
        self.recentSize = recentSize
        self.referenceSize = referenceSize
        ring = [UInt8](repeating: 0, count: reference == .trailing ? recentSize + referenceSize : recentSize)
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
        recorded &+= 1
        let cap = ring.count
        let trailing = reference == .trailing
        recentCounts.withUnsafeMutableBufferPointer { recent in
            referenceCounts.withUnsafeMutableBufferPointer { ref in
                ring.withUnsafeMutableBufferPointer { ring in
                    if !trailing && referenceTotal < referenceSize {
                        ref[b] &+= 1
                        referenceTotal &+= 1
                    }
                    if filled == cap {
                        // The oldest value leaves: the reference (trailing) or the recent window.
                        let old = Int(ring[next])
                        if trailing {
                            ref[old] &-= 1
                            referenceTotal &-= 1
                        } else {
                            recent[old] &-= 1
                        }
                    }
                    if trailing && filled >= recentSize {
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

    /// Starts a new pinned reference: the next `referenceSize` values (the recent window
    /// goes on). A trailing reference has nothing to pin.
    public mutating func pin() {
        guard reference == .pinned else { return }
        for i in referenceCounts.indices { referenceCounts[i] = 0 }
        referenceTotal = 0
        recorded = 0
    }

    /// The population stability index Σ (r − q) ln(r / q) over the bins, r and q the
    /// recent and reference shares (each count + 0.5, so an empty bin is finite), with
    /// what sampling alone gives for two windows of these sizes drawn from one
    /// distribution: (k − 1)(1/n_recent + 1/n_reference), k the bins either window uses
    /// (PSI is then about χ²(k − 1) / n_eff). Nil until the reference is full and the
    /// recent window holds `recentSize` values.
    public func statistic() -> (psi: Double, noise: Double, recent: Int, reference: Int)? {
        let recentTotal = recentCounts.reduce(0) { $0 + Int($1) }
        guard referenceFull, recentTotal >= recentSize else { return nil }
        let k = Double(ProbabilityBins.count)
        let nr = Double(recentTotal) + 0.5 * k, nq = Double(referenceTotal) + 0.5 * k
        var psi = 0.0
        var used = 0
        for i in 0..<ProbabilityBins.count {
            if recentCounts[i] > 0 || referenceCounts[i] > 0 { used += 1 }
            let r = (Double(recentCounts[i]) + 0.5) / nr
            let q = (Double(referenceCounts[i]) + 0.5) / nq
            psi += (r - q) * log(r / q)
        }
        let noise = Double(max(1, used - 1)) * (1 / Double(recentTotal) + 1 / Double(referenceTotal))
        return (psi, noise, recentTotal, referenceTotal)
    }
}
