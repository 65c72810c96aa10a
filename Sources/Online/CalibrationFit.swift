#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One fit of the `ScoreCalibrator`: pure, so that it can run on the update thread.
public struct CalibrationFit: Sendable {
    let positives: (scores: [Float], averages: [Float])
    let negatives: (scores: [Float], averages: [Float])
    let positiveLabels: Double
    let negativeLabels: Double
    let evidence: ForecastEvidence
    /// Whether the fit publishes the mixture or the score's map alone.
    let mixing: Bool
    let previous: Calibration
    let configuration: ScoreCalibrator.Configuration

    /// Each forecast's summed loss (`ForecastEvidence.losses`) as this fit weighs them.
    public var evidenceLosses: SIMD3<Double> {
        let labels = positiveLabels + negativeLabels
        return evidence.losses(positiveRate: labels > 0 ? positiveLabels / labels : nil)
    }

    public func run() -> Calibration {
        var out = previous
        let labels = positiveLabels + negativeLabels
        guard labels > 0 else { return Calibration() }
        let rate = positiveLabels / labels
        out.weights = mixing ? evidence.weights(positiveRate: rate) : SIMD3(1, 0, 0)
        out.averageIntercept = averageShift(rate: rate, labels: labels)
        let minimum = max(1, configuration.minimumPerClass)
        let enough = positives.scores.count >= minimum && negatives.scores.count >= minimum && positiveLabels > 0
            && negativeLabels > 0
        // Each fit starts where the previous one ended (the buffers change by a
        // mini-batch between fits): Newton's method then needs two or three steps
        // instead of six or more. The objective is strictly convex (ridge), so the
        // optimum does not depend on the start.
        let prior = log(rate / (1 - rate))
        let averageStart = previous.fitted ? (previous.averageSlope, previous.averageIntercept - prior) : (1.0, 0.0)
        if enough, let (slope, balanced) = platt(positives.averages, negatives.averages, from: averageStart) {
            // The average's map gets its own slope once both classes are there, as the
            // score's does (averages of near-perfect classifiers are far too timid or bold).
            out.averageSlope = slope
            out.averageIntercept = solveShift(scores: false, slope: slope, start: balanced + log(rate / (1 - rate)),
                                              rate: rate, target: rate)
        }
        let scoreStart = previous.fitted ? (previous.slope, previous.intercept - prior) : (1.0, 0.0)
        if enough, let (slope, balanced) = platt(positives.scores, negatives.scores, from: scoreStart) {
            out.fitted = true
            out.slope = slope
            // The balanced fit gives the shape; the level is set so that the labelled
            // instances' mean probability (each class's buffer mean, mixed by the counts)
            // is the positive rate: a plain prior shift of a misspecified fit need not be.
            out.intercept = solveShift(scores: true, slope: slope, start: balanced + log(rate / (1 - rate)), rate: rate,
                                       target: rate)
        }
        return out
    }

    // MARK: The score's map

    /// Minimises the class-balanced cross-entropy of σ(a x + b) over the buffer plus
    /// ridge/2 ((a − 1)² + b²), by Newton's method with step halving from `start`; nil
    /// if it does not converge (the previous map is kept).
    func platt(_ positive: [Float], _ negative: [Float], from start: (Double, Double) = (1, 0)) -> (Double, Double)? {
        let np = Double(positive.count), nn = Double(negative.count)
        let wp = (np + nn) / (2 * np), wn = (np + nn) / (2 * nn)
        let ridge = configuration.ridge
        var a = start.0.isFinite ? start.0 : 1, b = start.1.isFinite ? start.1 : 0
        var f = objective(positive, negative, a, b, wp, wn, ridge)
        for _ in 0..<100 {
            var ga = ridge * (a - 1), gb = ridge * b
            var haa = ridge, hab = 0.0, hbb = ridge
            accumulate(positive, label: 1, weight: wp, a, b, &ga, &gb, &haa, &hab, &hbb)
            accumulate(negative, label: 0, weight: wn, a, b, &ga, &gb, &haa, &hab, &hbb)
            let det = haa * hbb - hab * hab
            guard det > 0, det.isFinite else { return nil }
            let da = (hbb * ga - hab * gb) / det, db = (haa * gb - hab * ga) / det
            var step = 1.0, accepted = false
            while step > 1e-8 {
                let fa = objective(positive, negative, a - step * da, b - step * db, wp, wn, ridge)
                if fa <= f + 1e-12 {
                    a -= step * da; b -= step * db; f = fa
                    accepted = true
                    break
                }
                step /= 2
            }
            if !accepted || max(abs(step * da), abs(step * db)) < 1e-10 { break }
        }
        return a.isFinite && b.isFinite ? (a, b) : nil
    }

    private func accumulate(_ xs: [Float], label: Double, weight w: Double, _ a: Double, _ b: Double,
                            _ ga: inout Double, _ gb: inout Double,
                            _ haa: inout Double, _ hab: inout Double, _ hbb: inout Double) {
        for xf in xs {
            let x = Double(xf)
            let p = Calibration.sigmoid(a * x + b)
            let r = w * (p - label), h = w * p * (1 - p)
            ga += r * x; gb += r
            haa += h * x * x; hab += h * x; hbb += h
        }
    }

    func objective(_ positive: [Float], _ negative: [Float], _ a: Double, _ b: Double, _ wp: Double, _ wn: Double,
                   _ ridge: Double) -> Double {
        var f = ridge / 2 * ((a - 1) * (a - 1) + b * b)
        // −log σ(z) = softplus(−z); −log(1 − σ(z)) = softplus(z).
        for xf in positive { f += wp * Self.softplus(-(a * Double(xf) + b)) }
        for xf in negative { f += wn * Self.softplus(a * Double(xf) + b) }
        return f
    }

    static func softplus(_ z: Double) -> Double { z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)) }

    // MARK: The average's map

    /// The c for which the labelled instances' mean of σ(logit(average) + c) (each class's
    /// buffer mean, mixed by the running counts) is the positive rate, shrunk toward the
    /// average's own mean by the configured pseudo-labels.
    func averageShift(rate: Double, labels: Double) -> Double {
        let mean0 = mix(scores: false, slope: 1, 0, rate)
        let target = (rate * labels + 0.5 + configuration.priorLabels * mean0) / (labels + 1 + configuration.priorLabels)
        return solveShift(scores: false, slope: 1, start: previous.averageIntercept, rate: rate, target: target)
    }

    /// The c for which the class-mixed mean of σ(slope · x + c) is `target`, x the
    /// buffered log-odds of the scores or of the averages (Newton inside a bisection
    /// bracket: the mean rises with c).
    func solveShift(scores: Bool, slope: Double, start: Double, rate: Double, target: Double) -> Double {
        var lo = -40.0, hi = 40.0, c = start.isFinite ? min(hi, max(lo, start)) : 0
        for _ in 0..<100 {
            let f = mix(scores: scores, slope: slope, c, rate) - target
            if abs(f) < 1e-12 { break }
            if f > 0 { hi = c } else { lo = c }
            let d = mixSlope(scores: scores, slope: slope, c, rate)
            var next = d > 1e-15 ? c - f / d : (lo + hi) / 2
            if !(next > lo && next < hi) { next = (lo + hi) / 2 }
            if abs(next - c) < 1e-12 { c = next; break }
            c = next
        }
        return c
    }

    private func mix(scores: Bool, slope: Double, _ c: Double, _ rate: Double) -> Double {
        Self.mean(scores ? positives.scores : positives.averages, slope, c, rate)
            + Self.mean(scores ? negatives.scores : negatives.averages, slope, c, 1 - rate)
    }

    private func mixSlope(scores: Bool, slope: Double, _ c: Double, _ rate: Double) -> Double {
        Self.meanSlope(scores ? positives.scores : positives.averages, slope, c, rate)
            + Self.meanSlope(scores ? negatives.scores : negatives.averages, slope, c, 1 - rate)
    }

    private static func mean(_ xs: [Float], _ slope: Double, _ c: Double, _ share: Double) -> Double {
        guard !xs.isEmpty, share > 0 else { return 0 }
        var s = 0.0
        for x in xs { s += Calibration.sigmoid(slope * Double(x) + c) }
        return share * s / Double(xs.count)
    }

    private static func meanSlope(_ xs: [Float], _ slope: Double, _ c: Double, _ share: Double) -> Double {
        guard !xs.isEmpty, share > 0 else { return 0 }
        var s = 0.0
        for x in xs {
            let p = Calibration.sigmoid(slope * Double(x) + c)
            s += p * (1 - p)
        }
        return share * s / Double(xs.count)
    }
}
