#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The map from what was published to the `probability` next to it (docs/algorithm.md,
/// "Calibrated probability"): a mixture of three forecasts, weighted by `weights` (the
/// score's map alone once the calibrator has stopped mixing): the map of the score
/// σ(slope · logit(score) + intercept) once the calibrator has been fitted (before, and
/// for an instance whose published score was the simple average, a fallback: the next
/// one); the map of the average σ(averageSlope · logit(average) + averageIntercept); the
/// average itself. Scorers receive it with the model.
public struct Calibration: Sendable, Codable, Equatable {

    /// Whether the map of the score has been fitted (enough labels of both classes).
    public var fitted: Bool
    public var slope: Double
    /// Includes the log-odds of the estimated positive rate.
    public var intercept: Double
    /// The shift of the simple average's log-odds that makes its mean over the labelled
    /// instances match the estimated positive rate; 0 before any label.
    public var averageIntercept: Double
    /// The slope of the average's map: 1 until both classes have enough labels.
    public var averageSlope: Double
    /// The forecasts' weights (score's map, average's map, average), summing to 1.
    public var weights: SIMD3<Double>

    public init(fitted: Bool = false, slope: Double = 1, intercept: Double = 0, averageIntercept: Double = 0,
                averageSlope: Double = 1, weights: SIMD3<Double> = SIMD3(1, 0, 0)) {
        self.fitted = fitted
        self.slope = slope
        self.intercept = intercept
        self.averageIntercept = averageIntercept
        self.averageSlope = averageSlope
        self.weights = weights
    }

    enum CodingKeys: String, CodingKey { case fitted, slope, intercept, averageIntercept, averageSlope, weights }

    /// A map saved before the mixture decodes as the score's map (what it was).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        fitted = try c.decode(Bool.self, forKey: .fitted)
        slope = try c.decode(Double.self, forKey: .slope)
        intercept = try c.decode(Double.self, forKey: .intercept)
        averageIntercept = try c.decode(Double.self, forKey: .averageIntercept)
        averageSlope = try c.decodeIfPresent(Double.self, forKey: .averageSlope) ?? 1
        weights = try c.decodeIfPresent(SIMD3<Double>.self, forKey: .weights) ?? SIMD3(1, 0, 0)
    }

    /// The three forecasts for an instance: the score's map, the average's map, the average.
    @inline(__always)
    public func forecasts(score: Double, average: Double, modelPublished: Bool = true) -> SIMD3<Double> {
        let mean = min(1 - 1e-6, max(1e-6, average.isFinite ? average : 0.5))
        let ofAverage = averageIntercept == 0 && averageSlope == 1
            ? mean : Self.sigmoid(averageSlope * Self.logit(mean) + averageIntercept)
        let ofScore = fitted && modelPublished ? Self.sigmoid(slope * Self.logit(score) + intercept) : ofAverage
        return SIMD3(ofScore, ofAverage, mean)
    }

    /// The calibrated probability of an instance the model scored `score` and whose
    /// reported probabilities average `average`; `published` is false when the score
    /// published was not the model's (a fallback published the average).
    @inline(__always)
    public func probability(score: Double, average: Double, modelPublished: Bool = true) -> Double {
        let p: Double
        if fitted && modelPublished && weights == SIMD3(1, 0, 0) {
            // The steady state (past `mix_until` labels): the score's map alone.
            p = Self.sigmoid(slope * Self.logit(score) + intercept)
        } else {
            // Written as corrections to the average, so that it is the average exactly
            // while neither map has moved off it (before any label).
            let f = forecasts(score: score, average: average, modelPublished: modelPublished)
            p = f.z + weights.x * (f.x - f.z) + weights.y * (f.y - f.z)
        }
        return p.isFinite ? min(1, max(0, p)) : min(1, max(0, average.isFinite ? average : 0.5))
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
