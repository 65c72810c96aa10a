/// The predicted positive rate (the mean published `probability`) of the recent window
/// of scored instances against the window just before it, without labels: a rise or a
/// fall faster than learning moves it is a change in the traffic (docs/alerts.md,
/// score_drift). A ring of the recent probabilities (at least both windows; more when
/// the ring also serves longer windows, as the quality estimate's) and two running
/// sums: recording is O(1) and allocates nothing.
public struct PredictedRate: Codable, Sendable, Equatable {
    public let recentSize: Int
    public let referenceSize: Int
    private var ring: [Float]
    private var next = 0
    private var filled = 0
    private var recentSum = 0.0
    private var referenceSum = 0.0

    /// `capacity`: probabilities the ring keeps, at least `recentSize + referenceSize`.
    public init(recentSize: Int, referenceSize: Int, capacity: Int = 0) {
        precondition(recentSize > 0 && referenceSize > 0)
        self.recentSize = recentSize
        self.referenceSize = referenceSize
        ring = [Float](repeating: 0, count: max(capacity, recentSize + referenceSize))
    }

    public mutating func record(_ probability: Double) {
        guard probability.isFinite else { return }
        let cap = ring.count
        if filled >= recentSize + referenceSize {
            // The value `recentSize + referenceSize` back leaves the reference.
            var i = next - recentSize - referenceSize
            if i < 0 { i += cap }
            referenceSum -= Double(ring[i])
        }
        if filled >= recentSize {
            var i = next - recentSize
            if i < 0 { i += cap }
            recentSum -= Double(ring[i])
            referenceSum += Double(ring[i])
        }
        let v = Float(min(1, max(0, probability)))
        ring[next] = v
        recentSum += Double(v)
        next = next + 1 == cap ? 0 : next + 1
        if filled < cap { filled += 1 }
    }

    /// The last `recent` probabilities and the `reference` before them, oldest first
    /// (each empty until filled); `recent + reference` at most the ring's capacity.
    public func windows(recent: Int, reference: Int) -> (recent: [Float], reference: [Float]) {
        precondition(recent + reference <= ring.count)
        let cap = ring.count
        func slice(back from: Int, count: Int) -> [Float] {
            // The `count` values ending `from` places back from the newest.
            guard filled >= from + count else { return [] }
            return (0..<count).map { k in
                var i = next - from - count + k
                while i < 0 { i += cap }
                return ring[i]
            }
        }
        return (slice(back: 0, count: recent), slice(back: recent, count: reference))
    }

    /// The recent window's mean probability, or nil while it is not full.
    public var recentRate: Double? { filled >= recentSize ? max(0, recentSum) / Double(recentSize) : nil }

    /// Recent and reference mean probability and the standardised difference
    /// (m_r − m_q) / √(m_q (1/n_r + 1/n_q)): the variance of a sum of probabilities is at
    /// most its mean (each p(1 − p) ≤ p), so under no change |z| rarely passes 4.
    /// Nil until both windows are full or while the reference predicts no positive.
    public func statistic() -> (recent: Double, reference: Double, z: Double)? {
        guard filled >= recentSize + referenceSize else { return nil }
        let r = max(0, recentSum) / Double(recentSize), q = max(0, referenceSum) / Double(referenceSize)
        guard q > 0 else { return nil }
        let z = (r - q) / (q * (1 / Double(recentSize) + 1 / Double(referenceSize))).squareRoot()
        return (r, q, z)
    }
}
