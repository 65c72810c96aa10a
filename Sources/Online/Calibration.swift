#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The map from what was published to the `probability` next to it (docs/algorithm.md,
/// "Calibrated probability"): σ(slope · logit(score) + intercept) once the calibrator has
/// been fitted, σ(logit(average) + averageIntercept) before, and for an instance whose
/// published score was the simple average (a fallback). Scorers receive it with the model.
public struct Calibration: Sendable, Codable, Equatable {
    /// Whether the map of the score has been fitted (enough labels of both classes).
    public var fitted: Bool
    public var slope: Double
    /// Includes the log-odds of the estimated positive rate.
    public var intercept: Double
    /// The shift of the simple average's log-odds that makes its mean over the labelled
    /// instances match the estimated positive rate; 0 before any label.
    public var averageIntercept: Double

    public init(fitted: Bool = false, slope: Double = 1, intercept: Double = 0, averageIntercept: Double = 0) {
        self.fitted = fitted
        self.slope = slope
        self.intercept = intercept
        self.averageIntercept = averageIntercept
    }

    /// The calibrated probability of an instance the model scored `score` and whose
    /// reported probabilities average `average`; `published` is false when the score
    /// published was not the model's (a fallback published the average).
    @inline(__always)
    public func probability(score: Double, average: Double, modelPublished: Bool = true) -> Double {
        let p: Double
        if fitted && modelPublished {
            p = Self.sigmoid(slope * Self.logit(score) + intercept)
        } else {
            p = Self.sigmoid(Self.logit(average) + averageIntercept)
        }
        return p.isFinite ? p : min(1, max(0, average.isFinite ? average : 0.5))
    }

    /// log(p / (1 − p)) with p clamped to [1e-6, 1 − 1e-6].
    @inline(__always)
    public static func logit(_ p: Double) -> Double {
        let q = min(1 - 1e-6, max(1e-6, p.isFinite ? p : 0.5))
        return log(q / (1 - q))
    }

    @inline(__always)
    public static func sigmoid(_ z: Double) -> Double {
        z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z))
    }
}
