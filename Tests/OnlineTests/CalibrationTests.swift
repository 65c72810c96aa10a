import Foundation
import Testing
import TestSupport
@testable import Online

/// The calibrator against computations written here: Platt's fit by iteratively
/// reweighted least squares (Gaussian elimination from `Reference`), its objective's
/// gradient by finite differences, the average's shift by bisection, and the rolling ECE
/// by its definition.
@Suite struct CalibrationTests {
    /// Scores of a stream with positive rate `rate`: positives' log-odds ~ N(1, 1.2), negatives' ~ N(−2, 1).
    static func stream(_ n: Int, rate: Double, seed: UInt64) -> [(score: Double, average: Double, label: Int8)] {
        var g = SeededRandom(seed: seed)
        return (0..<n).map { _ in
            let positive = g.uniform() < rate
            let z = positive ? 1 + 1.2 * g.normal() : -2 + g.normal()
            let a = 0.6 * z - 0.5 + 0.3 * g.normal()
            return (1 / (1 + exp(-z)), 1 / (1 + exp(-a)), positive ? 1 : 0)
        }
    }

    static func logit(_ p: Double) -> Double { let q = min(1 - 1e-6, max(1e-6, p)); return log(q / (1 - q)) }

    /// The class-balanced, ridge-regularised logistic fit of the test, by IRLS.
    static func referencePlatt(_ xs: [Double], _ ys: [Int8], ridge: Double) -> (Double, Double) {
        let np = Double(ys.filter { $0 == 1 }.count), nn = Double(ys.count) - np
        let w = ys.map { $0 == 1 ? (np + nn) / (2 * np) : (np + nn) / (2 * nn) }
        var theta = [1.0, 0.0]
        for _ in 0..<50 {
            var g = [ridge * (theta[0] - 1), ridge * theta[1]]
            var h = [[ridge, 0.0], [0.0, ridge]]
            for k in xs.indices {
                let p = 1 / (1 + exp(-(theta[0] * xs[k] + theta[1])))
                let r = w[k] * (p - Double(ys[k])), v = w[k] * p * (1 - p)
                g[0] += r * xs[k]; g[1] += r
                h[0][0] += v * xs[k] * xs[k]; h[0][1] += v * xs[k]; h[1][0] += v * xs[k]; h[1][1] += v
            }
            let d = Reference.gaussianSolve(h, g)
            theta[0] -= d[0]; theta[1] -= d[1]
        }
        return (theta[0], theta[1])
    }

    static func referenceObjective(_ a: Double, _ b: Double, _ xs: [Double], _ ys: [Int8], ridge: Double) -> Double {
        let np = Double(ys.filter { $0 == 1 }.count), nn = Double(ys.count) - np
        var f = ridge / 2 * ((a - 1) * (a - 1) + b * b)
        for k in xs.indices {
            let p = 1 / (1 + exp(-(a * xs[k] + b)))
            f -= ys[k] == 1 ? (np + nn) / (2 * np) * log(p) : (np + nn) / (2 * nn) * log(1 - p)
        }
        return f
    }

    @Test func plattMatchesAnIndependentFitAndItsGradientVanishes() throws {
        var calibrator = ScoreCalibrator()
        let data = Self.stream(1500, rate: 0.08, seed: 3)
        for d in data { calibrator.record(score: d.score, average: d.average, label: d.label) }
        // What the buffer holds: the last 512 positives and 2,048 negatives (all of these).
        let xs = data.map { Double(Float(Self.logit($0.score))) }, ys = data.map(\.label)
        let fitted = calibrator.fit().run()
        #expect(fitted.fitted)
        let (a, b) = Self.referencePlatt(xs, ys, ridge: 1)
        let rate = Double(ys.filter { $0 == 1 }.count) / Double(ys.count)
        #expect(abs(fitted.slope - a) < 1e-6, "slope \(fitted.slope) vs \(a)")
        // The average's map: the same fit on the averages' log-odds, its level the rate's.
        let xa = data.map { Double(Float(Self.logit($0.average))) }
        let (aa, _) = Self.referencePlatt(xa, ys, ridge: 1)
        #expect(abs(fitted.averageSlope - aa) < 1e-6, "average slope \(fitted.averageSlope) vs \(aa)")
        let meanAverage = xa.map { 1 / (1 + exp(-(fitted.averageSlope * $0 + fitted.averageIntercept))) }.reduce(0, +)
            / Double(xa.count)
        #expect(abs(meanAverage - Double(ys.filter { $0 == 1 }.count) / Double(ys.count)) < 1e-9)
        // The reference is a minimum of the objective written above.
        let h = 1e-5
        let ga = (Self.referenceObjective(a + h, b, xs, ys, ridge: 1) - Self.referenceObjective(a - h, b, xs, ys, ridge: 1)) / (2 * h)
        let gb = (Self.referenceObjective(a, b + h, xs, ys, ridge: 1) - Self.referenceObjective(a, b - h, xs, ys, ridge: 1)) / (2 * h)
        #expect(abs(ga) < 1e-4 && abs(gb) < 1e-4, "gradient \(ga), \(gb)")
        // The level: every instance is in the buffer and in the counts, so the mean
        // probability over them is the positive rate.
        let mean = xs.map { 1 / (1 + exp(-(fitted.slope * $0 + fitted.intercept))) }.reduce(0, +) / Double(xs.count)
        #expect(abs(mean - rate) < 1e-9, "mean probability \(mean) vs rate \(rate)")
        // A plain prior shift of the balanced fit would not be calibrated in the large here.
        let shifted = xs.map { 1 / (1 + exp(-(a * $0 + b + log(rate / (1 - rate))))) }.reduce(0, +) / Double(xs.count)
        #expect(abs(shifted - rate) > 1e-3)
    }

    /// A fit that starts from the previous one (as every fit after the first does) finds
    /// the same optimum as the independent fit of all the buffered instances.
    @Test func aWarmStartedFitFindsTheSameOptimum() throws {
        var calibrator = ScoreCalibrator()
        let data = Self.stream(1800, rate: 0.08, seed: 11)
        for d in data.prefix(1500) { calibrator.record(score: d.score, average: d.average, label: d.label) }
        calibrator.install(calibrator.fit().run())
        for d in data.dropFirst(1500) { calibrator.record(score: d.score, average: d.average, label: d.label) }
        let fit = calibrator.fit()
        #expect(fit.previous.fitted, "the second fit starts from the first")
        let fitted = fit.run()
        let xs = data.map { Double(Float(Self.logit($0.score))) }, ys = data.map(\.label)
        let (a, _) = Self.referencePlatt(xs, ys, ridge: 1)
        #expect(abs(fitted.slope - a) < 1e-6, "slope \(fitted.slope) vs \(a)")
        let xa = data.map { Double(Float(Self.logit($0.average))) }
        let (aa, _) = Self.referencePlatt(xa, ys, ridge: 1)
        #expect(abs(fitted.averageSlope - aa) < 1e-6, "average slope \(fitted.averageSlope) vs \(aa)")
        // From a start far from the optimum too.
        let far = fit.platt(xs.indices.filter { ys[$0] == 1 }.map { Float(xs[$0]) },
                            xs.indices.filter { ys[$0] == 0 }.map { Float(xs[$0]) }, from: (25, -30))
        #expect(far.map { abs($0.0 - a) < 1e-6 } == true, "from far: \(String(describing: far)) vs \(a)")
    }

    @Test func theAverageShiftMeetsTheShrunkPositiveRate() throws {
        // Before the maps are fitted (fewer than min_per_class of a class): the shift alone.
        var config = ScoreCalibrator.Configuration()
        config.minimumPerClass = 1000
        var calibrator = ScoreCalibrator(configuration: config)
        let data = Self.stream(400, rate: 0.1, seed: 5)
        for d in data { calibrator.record(score: d.score, average: d.average, label: d.label) }
        let c = calibrator.fit().run().averageIntercept
        // By its definition, with the buffer's class means mixed by the label counts.
        let pos = data.filter { $0.label == 1 }, neg = data.filter { $0.label == 0 }
        let rate = Double(pos.count) / Double(data.count)
        func mix(_ c: Double) -> Double {
            let mp = pos.map { 1 / (1 + exp(-(Double(Float(Self.logit($0.average))) + c))) }.reduce(0, +) / Double(pos.count)
            let mn = neg.map { 1 / (1 + exp(-(Double(Float(Self.logit($0.average))) + c))) }.reduce(0, +) / Double(neg.count)
            return rate * mp + (1 - rate) * mn
        }
        let target = (Double(pos.count) + 0.5 + 30 * mix(0)) / (Double(data.count) + 1 + 30)
        var lo = -40.0, hi = 40.0
        for _ in 0..<200 { let mid = (lo + hi) / 2; if mix(mid) > target { hi = mid } else { lo = mid } }
        #expect(abs(c - (lo + hi) / 2) < 1e-6, "\(c) vs \((lo + hi) / 2)")
    }

    @Test func probabilitiesAreCalibratedInTheLargeAndStayInRange() throws {
        var calibrator = ScoreCalibrator()
        let data = Self.stream(40000, rate: 0.02, seed: 11)
        var sum = 0.0, positives = 0.0
        for (k, d) in data.enumerated() {
            let p = calibrator.calibration.probability(score: d.score, average: d.average)
            #expect(p >= 0 && p <= 1)
            if k >= 5000 { sum += p; positives += Double(d.label) }
            calibrator.record(score: d.score, average: d.average, label: d.label)
            if k % 64 == 63 { calibrator.install(calibrator.fit().run()) }
        }
        let n = Double(data.count - 5000)
        #expect(abs(sum / n - positives / n) < 0.1 * positives / n, "mean probability \(sum / n) vs rate \(positives / n)")
        let c = calibrator.calibration
        for s in [0.0, 1.0, .nan, -1, 2] {
            for a in [0.0, 1.0, .nan] {
                for modelPublished in [true, false] {
                    let p = c.probability(score: s, average: a, modelPublished: modelPublished)
                    #expect(p.isFinite && p >= 0 && p <= 1, "\(s) \(a) -> \(p)")
                }
            }
        }
    }

    @Test func beforeAnyLabelTheProbabilityIsTheAverage() {
        var calibrator = ScoreCalibrator()
        #expect(abs(calibrator.calibration.probability(score: 0.9, average: 0.3) - 0.3) < 1e-12)
        #expect(calibrator.fit().run() == Calibration())
    }

    @Test func theMixtureWeightsAreThePosteriorOfTheForecastsLogLoss() throws {
        var config = ScoreCalibrator.Configuration()
        config.evidenceHalfLife = 0
        config.mixUntil = .max
        var calibrator = ScoreCalibrator(configuration: config)
        // Written here: each label judged by the three forecasts of the map in use.
        var lossPos = [0.0, 0.0, 0.0], lossNeg = [0.0, 0.0, 0.0], np = 0.0, nn = 0.0
        for (k, d) in Self.stream(3000, rate: 0.1, seed: 17).enumerated() {
            let c = calibrator.calibration
            let mean = min(1 - 1e-6, max(1e-6, d.average))
            let ofAverage = c.averageIntercept == 0 && c.averageSlope == 1
                ? mean : 1 / (1 + exp(-(c.averageSlope * Self.logit(mean) + c.averageIntercept)))
            let ofScore = c.fitted ? 1 / (1 + exp(-(c.slope * Self.logit(d.score) + c.intercept))) : ofAverage
            for (j, p) in [ofScore, ofAverage, mean].enumerated() {
                if d.label == 1 { lossPos[j] -= log(p) } else { lossNeg[j] -= log(1 - p) }
            }
            if d.label == 1 { np += 1 } else { nn += 1 }
            calibrator.record(score: d.score, average: d.average, label: d.label)
            if k % 64 == 63 { calibrator.install(calibrator.fit().run()) }
        }
        let rate = np / (np + nn)
        let loss = (0..<3).map { (np + nn) * (rate * lossPos[$0] / np + (1 - rate) * lossNeg[$0] / nn) }
        let evidence = calibrator.fit().evidenceLosses
        for j in 0..<3 { #expect(abs(evidence[j] - loss[j]) < 1e-6 * loss[j], "\(evidence) vs \(loss)") }
        let least = loss.min()!
        let odds = loss.map { exp(least - $0) }
        let weights = calibrator.fit().run().weights
        for j in 0..<3 { #expect(abs(weights[j] - odds[j] / odds.reduce(0, +)) < 1e-9, "\(weights) vs \(odds)") }
        // Here the score carries the information (the average is a noisy copy of it).
        #expect(weights.x > 0.99)
    }

    @Test func theMixtureFollowsTheBetterForecastUntilItStopsMixing() throws {
        // The average is the true probability and the score is half noise: the mixture
        // comes to the average (its map, or itself) and its log loss to within ln 3 (plus
        // the refits' lag) of the best forecast's; past mix_until labels the score's map
        // is published alone.
        var g = SeededRandom(seed: 23)
        var config = ScoreCalibrator.Configuration()
        config.mixUntil = 4000
        var calibrator = ScoreCalibrator(configuration: config)
        var published = 0.0, best = [0.0, 0.0, 0.0]
        var mixed = SIMD3<Double>()
        for k in 0..<6000 {
            let truth = 1 / (1 + exp(-(-2.5 + 1.5 * g.normal())))
            let label: Int8 = g.uniform() < truth ? 1 : 0
            let score = 1 / (1 + exp(-(Self.logit(truth) + 2 * g.normal())))
            let c = calibrator.calibration
            let p = c.probability(score: score, average: truth)
            let f = c.forecasts(score: score, average: truth)
            if k < 4000 {
                published -= label == 1 ? log(p) : log(1 - p)
                for j in 0..<3 { best[j] -= label == 1 ? log(f[j]) : log(1 - f[j]) }
            }
            calibrator.record(score: score, average: truth, label: label)
            if k % 64 == 63 { calibrator.install(calibrator.fit().run()) }
            if k == 3900 { mixed = calibrator.calibration.weights }
        }
        #expect(mixed.y + mixed.z > 0.95 && mixed.x < 0.05, "weights \(mixed)")
        #expect(calibrator.calibration.weights == SIMD3(1, 0, 0))
        #expect(best[2] < best[0], "the average is the better forecast here")
        #expect(published <= best.min()! + log(3.0) + 2, "mixture \(published) vs best \(best)")
        #expect(best[0] > best.min()! + log(3.0) + 2, "publishing the score's map alone would have cost more")
    }

    @Test func mixingStopsAfterMixUntilLabelsEvenWhenTheRateDecays() throws {
        // rate_half_life 200: the decayed label counts level off near 290, far below
        // mix_until; the labels recorded still reach it. The average is the truth and the
        // score half noise, so the mixture is far from the score's map alone.
        var config = ScoreCalibrator.Configuration()
        config.rateHalfLife = 200
        config.mixUntil = 1000
        var calibrator = ScoreCalibrator(configuration: config)
        var g = SeededRandom(seed: 29)
        var mixedAt999 = SIMD3<Double>()
        for k in 0..<1600 {
            let truth = 1 / (1 + exp(-(-2.5 + 1.5 * g.normal())))
            let label: Int8 = g.uniform() < truth ? 1 : 0
            let score = 1 / (1 + exp(-(Self.logit(truth) + 2 * g.normal())))
            calibrator.record(score: score, average: truth, label: label)
            if k % 64 == 63 || k == 998 { calibrator.install(calibrator.fit().run()) }
            if k == 998 { mixedAt999 = calibrator.calibration.weights }
        }
        #expect(calibrator.counts.positives + calibrator.counts.negatives < 400)
        #expect(calibrator.recorded == 1600 && !calibrator.mixing)
        #expect(mixedAt999.x < 0.5, "still mixing at 999 labels: \(mixedAt999)")
        #expect(calibrator.calibration.weights == SIMD3(1, 0, 0))
        // A checkpoint keeps the count.
        let back = try JSONDecoder().decode(ScoreCalibrator.self, from: JSONEncoder().encode(calibrator))
        #expect(back == calibrator && back.recorded == 1600)
    }

    @Test func aMapSavedBeforeTheMixtureKeepsItsMeaning() throws {
        let json = #"{"fitted":true,"slope":1.5,"intercept":-2,"averageIntercept":0.5}"#
        let old = try JSONDecoder().decode(Calibration.self, from: Data(json.utf8))
        #expect(old.weights == SIMD3(1, 0, 0))
        let p = old.probability(score: 0.3, average: 0.8)
        #expect(abs(p - 1 / (1 + exp(-(1.5 * log(0.3 / 0.7) - 2)))) < 1e-12)
        let round = try JSONDecoder().decode(Calibration.self, from: JSONEncoder().encode(Calibration(weights: SIMD3(0.2, 0.3, 0.5))))
        #expect(round.weights == SIMD3(0.2, 0.3, 0.5))
    }

    @Test func theScoresMapWaitsForEnoughOfEachClass() {
        var calibrator = ScoreCalibrator()
        for k in 0..<100 { calibrator.record(score: 0.2, average: 0.2, label: k < 4 ? 1 : 0) }
        let early = calibrator.fit().run()
        #expect(!early.fitted && early.averageIntercept < 0, "4 positives: only the average's shift")
        calibrator.record(score: 0.9, average: 0.7, label: 1)
        #expect(calibrator.fit().run().fitted)
    }

    @Test func theBufferKeepsTheMostRecentOfEachClass() {
        var config = ScoreCalibrator.Configuration()
        config.positives = 3
        config.negatives = 4
        var calibrator = ScoreCalibrator(configuration: config)
        for k in 0..<10 { calibrator.record(score: 0.5, average: 0.5, label: k % 2 == 0 ? 1 : 0) }
        #expect(calibrator.buffered == (3, 4))
        #expect(calibrator.positiveRate == 0.5)
        var ring = ScoreCalibrator.Ring(capacity: 3)
        for v in 1...5 { ring.append(Float(v), Float(-v)) }
        #expect(ring.ordered().scores == [3, 4, 5] && ring.ordered().averages == [-3, -4, -5])
    }

    @Test func rollingECEIsItsDefinition() throws {
        var window = RollingQuality(window: 500)
        var g = SeededRandom(seed: 8)
        var rows: [(Double, Int8)] = []
        for _ in 0..<700 {
            let p = g.uniform()
            let y: Int8 = g.uniform() < p * p ? 1 : 0   // miscalibrated: truth p²
            window.record(score: p, baseline: p, probability: p, label: y)
            rows.append((Double(Float(p)), y))
        }
        let last = rows.suffix(500).sorted { $0.0 < $1.0 }
        var ece = 0.0, brier = 0.0
        for k in 0..<10 {
            let bin = last[(k * 50)..<((k + 1) * 50)]
            ece += abs(bin.map(\.0).reduce(0, +) - bin.map { Double($0.1) }.reduce(0, +)) / 500
        }
        for (p, y) in last { brier += (p - Double(y)) * (p - Double(y)) / 500 }
        let c = try #require(window.calibration())
        #expect(abs(c.ece - ece) < 1e-9 && abs(c.brier - brier) < 1e-9 && c.count == 500)
        #expect(c.ece > 3 * c.noise, "truth p² against p: far beyond sampling noise")
        // Instances without a probability (older builds) are left out.
        var partial = RollingQuality(window: 50)
        for _ in 0..<50 { partial.record(score: 0.5, baseline: 0.5, label: 0) }
        #expect(partial.calibration(minimum: 1) == nil)
    }
}
