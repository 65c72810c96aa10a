/// The most recent published scores (a ring of fixed size: recording allocates nothing),
/// for the score thresholds of alert budgets: the threshold above which a given share of
/// recent traffic scores.
public struct RecentScores: Sendable {
    private var values: [Float]
    private var next = 0
    public private(set) var count = 0

    public init(capacity: Int) { values = [Float](repeating: 0, count: max(1, capacity)) }

    public var capacity: Int { values.count }

    @inline(__always)
    public mutating func record(_ score: Double) {
        guard score.isFinite else { return }
        values[next] = Float(score)
        next = next + 1 == values.count ? 0 : next + 1
        if count < values.count { count += 1 }
    }

    /// For each rate r, the score t such that flagging every score >= t flags the top
    /// ceil(r · n) of the n recent scores (t is the ceil(r · n)-th largest); nil while
    /// the window holds fewer than 1 / r scores (not one alert in it yet).
    public func thresholds(rates: [Double]) -> [Double?] {
        guard count > 0 else { return rates.map { _ in nil } }
        let sorted = values.prefix(count).sorted(by: >)
        return rates.map { r in
            guard r > 0, r < 1, Double(count) * r >= 1 else { return nil }
            let k = Int((Double(count) * r).rounded(.up))
            return Double(sorted[min(count, k) - 1])
        }
    }

    /// The share of recent scores >= `threshold`; nil while empty.
    public func share(atOrAbove threshold: Double) -> Double? {
        guard count > 0 else { return nil }
        var n = 0
        for v in values.prefix(count) where Double(v) >= threshold { n += 1 }
        return Double(n) / Double(count)
    }
}
