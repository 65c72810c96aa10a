#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How well each of the calibrator's three candidate forecasts has predicted the labels
/// so far, and the weights of their mixture (docs/algorithm.md, "Calibrated probability"). The
/// forecasts are, in this order: the map of the score, the map of the simple average,
/// and the simple average itself.
///
/// Each label is judged by every forecast of a map that has not learnt from it. The log
/// losses are summed by class, decayed per label, and mixed by the estimated positive
/// rate, so that a labelled set enriched in one class (labels late by class) weighs the
/// forecasts as the traffic would.
public struct ForecastEvidence: Sendable, Codable, Equatable {
    /// Decayed log loss of each forecast over the positive and the negative labels.
    public private(set) var positiveLoss = SIMD3<Double>()
    public private(set) var negativeLoss = SIMD3<Double>()
    /// Decayed label counts by class.
    public private(set) var positives = 0.0
    public private(set) var negatives = 0.0
    /// Per-label decay factor (1: never forgets).
    public let decay: Double

    /// - Parameter halfLife: labels after which an old label's loss counts half (0: never decays).
    public init(halfLife: Double) {
        decay = halfLife > 0 ? exp2(-1 / halfLife) : 1
    }

    /// The forecasts' probabilities for an instance whose label is `label`.
    public mutating func observe(_ forecasts: SIMD3<Double>, label: Int8) {
        positiveLoss *= decay
        negativeLoss *= decay
        positives *= decay
        negatives *= decay
        let floor = 1e-12
        if label == 1 {
            positives += 1
            positiveLoss += SIMD3(-log(max(floor, forecasts.x)), -log(max(floor, forecasts.y)), -log(max(floor, forecasts.z)))
        } else {
            negatives += 1
            negativeLoss += SIMD3(-log(max(floor, 1 - forecasts.x)), -log(max(floor, 1 - forecasts.y)),
                                  -log(max(floor, 1 - forecasts.z)))
        }
    }

    /// Each forecast's summed loss, the classes mixed by `positiveRate` when both have
    /// been seen: (n₊ + n₋) · (π L₊ / n₊ + (1 − π) L₋ / n₋).
    public func losses(positiveRate: Double?) -> SIMD3<Double> {
        guard positives > 0, negatives > 0, let rate = positiveRate, rate > 0, rate < 1 else {
            return positiveLoss + negativeLoss
        }
        return (positives + negatives) * (rate / positives * positiveLoss + (1 - rate) / negatives * negativeLoss)
    }

    /// The mixture's weights while it mixes (`Configuration.mixUntil`): each
    /// forecast's exp(−its summed loss), normalised, a Bayesian posterior over the three
    /// whose total log loss is within ln 3 of the best forecast's, whichever it is.
    public func weights(positiveRate: Double?) -> SIMD3<Double> {
        let l = losses(positiveRate: positiveRate)
        guard l.x.isFinite, l.y.isFinite, l.z.isFinite else { return SIMD3(1, 0, 0) }
        let least = l.min()
        let w = SIMD3(exp(least - l.x), exp(least - l.y), exp(least - l.z))
        return w / w.sum()
    }
}
