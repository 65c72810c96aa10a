/// Every classifier's drift windows against a pinned reference (docs/alerts.md,
/// classifier_drift), in flat storage: one ring of bin numbers, one block of bin counts
/// and one cursor per classifier, each in a single array, so that recording a message's
/// entries touches three buffers once instead of three per classifier.
///
/// A classifier's reference is its first `referenceSize` outputs after the start or the
/// last `pin()`, then frozen (its outputs do not depend on the model, so a change
/// against them is a change upstream); its recent window is its last `recentSize`.
public struct ClassifierDriftTable: Codable, Sendable, Equatable {
    public let recentSize: Int
    public let referenceSize: Int
    /// Classifiers with windows (the registry's indices below it).
    public private(set) var count = 0
    /// `recentSize` bin numbers per classifier.
    private var rings: [UInt8] = []
    /// Per classifier: the recent window's bin counts, then the reference's.
    private var counts: [Int32] = []
    private var cursors: [Cursor] = []

    struct Cursor: Codable, Sendable, Equatable {
        var next: Int32 = 0
        var filled: Int32 = 0
        var referenceTotal: Int32 = 0
        /// Outputs recorded since the start or the last pin.
        var recorded = 0
    }

    private static let bins = ProbabilityBins.count

    public init(recentSize: Int, referenceSize: Int) {
        precondition(recentSize > 0 && referenceSize > 0 && recentSize < Int(Int32.max) && referenceSize < Int(Int32.max))
        self.recentSize = recentSize
        self.referenceSize = referenceSize
    }

    /// Windows for classifiers up to index `n − 1`.
    public mutating func grow(to n: Int) {
        guard n > count else { return }
        rings.append(contentsOf: repeatElement(0, count: (n - count) * recentSize))
        counts.append(contentsOf: repeatElement(0, count: (n - count) * 2 * Self.bins))
        cursors.append(contentsOf: repeatElement(Cursor(), count: n - count))
        count = n
    }

    /// Records one message's entries (every classifier index below `count`).
    @inline(__always)
    public mutating func record(_ entries: UnsafeBufferPointer<Entry>, bins lookup: BinLookup = ProbabilityBins.lookup) {
        let bins = Self.bins, size = recentSize, fullReference = Int32(referenceSize), window = Int32(recentSize)
        rings.withUnsafeMutableBufferPointer { rings in
            counts.withUnsafeMutableBufferPointer { counts in
                cursors.withUnsafeMutableBufferPointer { cursors in
                    for e in entries {
                        let u = Int(e.classifier)
                        let b = lookup.index(of: e.value)
                        var c = cursors[u]
                        c.recorded &+= 1
                        let recent = u &* 2 &* bins
                        if c.referenceTotal < fullReference {
                            counts[recent &+ bins &+ b] &+= 1
                            c.referenceTotal &+= 1
                        }
                        let slot = u &* size &+ Int(c.next)
                        if c.filled == window {
                            counts[recent &+ Int(rings[slot])] &-= 1
                        } else {
                            c.filled &+= 1
                        }
                        rings[slot] = UInt8(truncatingIfNeeded: b)
                        counts[recent &+ b] &+= 1
                        c.next = c.next &+ 1 == window ? 0 : c.next &+ 1
                        cursors[u] = c
                    }
                }
            }
        }
    }

    /// Outputs of classifier `u` recorded since the start or the last pin.
    public func recorded(_ u: Int) -> Int { u < count ? cursors[u].recorded : 0 }
    /// Values in classifier `u`'s reference and recent window now.
    public func referenceCount(_ u: Int) -> Int { u < count ? Int(cursors[u].referenceTotal) : 0 }
    public func recentCount(_ u: Int) -> Int { u < count ? Int(cursors[u].filled) : 0 }

    /// Every classifier's outputs from now on make its new reference (the recent
    /// windows go on).
    public mutating func pin() {
        for u in 0..<count {
            for b in 0..<Self.bins { counts[u * 2 * Self.bins + Self.bins + b] = 0 }
            cursors[u].referenceTotal = 0
            cursors[u].recorded = 0
        }
    }

    /// Classifier `u`'s population stability index against its reference; nil until
    /// its reference is full and its recent window holds `recentSize` values.
    public func statistic(_ u: Int) -> (psi: Double, noise: Double, recent: Int, reference: Int)? {
        guard u < count else { return nil }
        let c = cursors[u]
        guard c.referenceTotal >= Int32(referenceSize), c.filled >= Int32(recentSize) else { return nil }
        let s = counts.withUnsafeBufferPointer { all in
            let recent = UnsafeBufferPointer(rebasing: all[(u * 2 * Self.bins)..<(u * 2 * Self.bins + Self.bins)])
            let reference = UnsafeBufferPointer(rebasing: all[(u * 2 * Self.bins + Self.bins)..<((u + 1) * 2 * Self.bins)])
            return PopulationStability.index(recent: recent, reference: reference, recentTotal: Int(c.filled),
                                             referenceTotal: Int(c.referenceTotal))
        }
        return (s.psi, s.noise, Int(c.filled), Int(c.referenceTotal))
    }
}
