import Foundation
import Testing
import TestSupport
@testable import Online

/// A labelled window: entries per instance, with labels.
private func makeWindow(n: Int, m: Int, seed: UInt64) -> [LabelledInstance] {
    var rng = SeededRandom(seed: seed)
    return (0..<n).map { _ in
        let label: Int8 = rng.uniform() < 0.3 ? 1 : 0
        var entries: [Entry] = []
        for u in 0..<m where rng.uniform() < 0.8 {
            let logit = (label == 1 ? 1.0 : -1.0) * Double(u + 1) * 0.4 + rng.normal()
            entries.append(Entry(classifier: u, value: 1 / (1 + exp(-logit))))
        }
        if entries.isEmpty { entries.append(Entry(classifier: 0, value: rng.uniform())) }
        return LabelledInstance(entries: entries, label: label)
    }
}

/// Batch ALS on a fixed window, written independently of Online: Gaussian elimination
/// on the ridge normal equations, alternating X and Y from the documented start.
private func batchALS(_ window: [LabelledInstance], m: Int, d: Int, lambda: Double, alpha: Double,
                      strength: Double, sweeps: Int) -> [[Double]] {
    var x: [[Double]] = (0..<m).map { u in
        var row = [Double](repeating: 0, count: d)
        row[0] = 1
        if d > 1 { row[1 + u % (d - 1)] = 1 }
        return row
    }
    func conf(_ r: Double, _ y: Int8) -> Double {
        let agreement = y == 1 ? r : 1 - r
        return (1 + alpha * abs(2 * r - 1)) * (1 + strength * (2 * agreement - 1))
    }
    func foldAll() -> [[Double]] {
        window.map { item in
            Reference.ridge(features: item.entries.map { x[Int($0.classifier)] },
                            targets: item.entries.map { Double($0.value) },
                            weights: item.entries.map { conf(Double($0.value), item.label) }, lambda: lambda)
        }
    }
    var y = foldAll()
    for _ in 0..<sweeps {
        for u in 0..<m {
            var feats: [[Double]] = [], targets: [Double] = [], weights: [Double] = []
            for (i, item) in window.enumerated() {
                for e in item.entries where Int(e.classifier) == u {
                    feats.append(y[i]); targets.append(Double(e.value)); weights.append(conf(Double(e.value), item.label))
                }
            }
            if !feats.isEmpty { x[u] = Reference.ridge(features: feats, targets: targets, weights: weights, lambda: lambda) }
        }
        y = foldAll()
    }
    return x
}

/// sum c (r - x.y)^2 + lambda (|X|^2 + |Y|^2) with Y folded in for X.
private func alsObjective(_ window: [LabelledInstance], x: [[Double]], lambda: Double) -> Double {
    func conf(_ r: Double, _ y: Int8) -> Double {
        let agreement = y == 1 ? r : 1 - r
        return (1 + abs(2 * r - 1)) * (1 + 0.5 * (2 * agreement - 1))
    }
    var total = 0.0
    for item in window {
        let y = Reference.ridge(features: item.entries.map { x[Int($0.classifier)] }, targets: item.entries.map { Double($0.value) },
                                weights: item.entries.map { conf(Double($0.value), item.label) }, lambda: lambda)
        for e in item.entries {
            let rhat = zip(x[Int(e.classifier)], y).reduce(0) { $0 + $1.0 * $1.1 }
            total += conf(Double(e.value), item.label) * pow(Double(e.value) - rhat, 2)
        }
        total += lambda * y.reduce(0) { $0 + $1 * $1 }
    }
    return total + lambda * x.flatMap { $0 }.reduce(0) { $0 + $1 * $1 }
}

private func model(m: Int, _ configure: (inout ModelConfiguration) -> Void) -> CFEnsemble {
    var c = ModelConfiguration()
    configure(&c)
    let model = CFEnsemble(config: c)
    for u in 0..<m { _ = model.classifier(named: "c\(u)") }
    return model
}

private func spearman(_ a: [Double], _ b: [Double]) -> Double {
    func ranks(_ v: [Double]) -> [Double] {
        var r = [Double](repeating: 0, count: v.count)
        for (rank, i) in v.indices.sorted(by: { v[$0] < v[$1] }).enumerated() { r[i] = Double(rank) }
        return r
    }
    let ra = ranks(a), rb = ranks(b)
    let n = Double(a.count)
    let d2 = zip(ra, rb).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
    return 1 - 6 * d2 / (n * (n * n - 1))
}

@Suite struct LearningTests {
    /// Check 2 of docs/algorithm.md: with beta = 1 and the window as one mini-batch, the inner
    /// sweeps converge to the batch ALS solution on the same entries and confidences.
    /// (A ridge of 3 makes the solution unique enough to compare factors entry by entry;
    /// see `smallRidgeReachesTheSameObjective` for the flat-valley case.)
    @Test func innerSweepsConvergeToBatchALS() {
        let m = 6, d = 3, sweeps = 40, lambda = 3.0
        let window = makeWindow(n: 80, m: m, seed: 3)
        let cfe = model(m: m) { c in
            c.latentDim = d; c.lambda = lambda; c.forgetting = 1; c.innerSweeps = sweeps
        }
        cfe.update(window)
        let reference = batchALS(window, m: m, d: d, lambda: lambda, alpha: 1, strength: 0.5, sweeps: sweeps)
        let longer = batchALS(window, m: m, d: d, lambda: lambda, alpha: 1, strength: 0.5, sweeps: sweeps + 40)
        for u in 0..<m {
            for k in 0..<d {
                #expect(abs(cfe.factors.x[u * d + k] - reference[u][k]) < 1e-9)
                // The reference itself has converged: more sweeps do not move it.
                #expect(abs(longer[u][k] - reference[u][k]) < 1e-6)
            }
        }
    }

    /// With a small ridge X is only determined up to a near-flat valley (scale and
    /// rotation trade between X and Y), so factors cannot be compared entry by entry; exact
    /// ALS still never increases its objective from one sweep to the next.
    @Test func smallRidgeSweepsNeverIncreaseTheObjective() {
        let m = 6, d = 3, lambda = 0.1
        let window = makeWindow(n: 80, m: m, seed: 3)
        var previous = Double.infinity
        for sweeps in 1...12 {
            let cfe = model(m: m) { c in
                c.latentDim = d; c.lambda = lambda; c.forgetting = 1; c.innerSweeps = sweeps
            }
            cfe.update(window)
            let x = (0..<m).map { u in (0..<d).map { cfe.factors.x[u * d + $0] } }
            let objective = alsObjective(window, x: x, lambda: lambda)
            #expect(objective <= previous * (1 + 1e-9), "sweep \(sweeps): \(objective) after \(previous)")
            previous = objective
        }
    }

    /// Repeated mini-batch updates of the same window, forgetting the previous pass,
    /// are ALS iterations and reach the same solution.
    @Test func repeatedUpdatesConvergeToBatchALS() {
        let m = 5, d = 4, passes = 30, lambda = 3.0
        let window = makeWindow(n: 60, m: m, seed: 4)
        let cfe = model(m: m) { c in
            c.latentDim = d; c.lambda = lambda; c.forgetting = 1e-12; c.innerSweeps = 1
        }
        for _ in 0..<passes { cfe.update(window) }
        let reference = batchALS(window, m: m, d: d, lambda: lambda, alpha: 1, strength: 0.5, sweeps: passes)
        for u in 0..<m {
            for k in 0..<d { #expect(abs(cfe.factors.x[u * d + k] - reference[u][k]) < 1e-8) }
        }
        #expect(cfe.version == Int64(passes))
    }

    /// Check 3 of docs/algorithm.md: the aggregator gradient equals a finite-difference gradient
    /// of the class-weighted (focal) loss, computed here from its definition.
    @Test(arguments: [0.0, 0.5, 2.0])
    func aggregatorGradientMatchesFiniteDifferences(gamma: Double) {
        var rng = SeededRandom(seed: 5)
        let n = 40, m = 5, l2 = 0.01
        let rows = (0..<(n * m)).map { _ in rng.uniform() }
        let labels: [Int8] = (0..<n).map { _ in rng.uniform() < 0.25 ? 1 : 0 }
        let omega = labels.map { $0 == 1 ? 2.5 : 0.7 }
        var agg = Aggregator(stepRule: .sgd)
        for _ in 0..<m { agg.append(learnt: false, scale: 1) }
        let w0 = (0..<m).map { _ in rng.normal() }
        let b0 = rng.normal()
        agg.set(weights: w0, bias: b0)

        func loss(_ w: [Double], _ b: Double) -> Double {
            var sum = 0.0, total = 0.0
            for i in 0..<n {
                var z = b
                for u in 0..<m { z += w[u] * rows[i * m + u] }
                let p = 1 / (1 + exp(-z))
                let pt = labels[i] == 1 ? p : 1 - p
                sum += omega[i] * -pow(1 - pt, gamma) * log(pt)
                total += omega[i]
            }
            return sum / total + 0.5 * l2 * w.reduce(0) { $0 + $1 * $1 }
        }
        var grad = [Double](repeating: 0, count: m + 1)
        agg.gradient(rhat: rows, labels: labels, omega: omega, gamma: gamma, l2: l2, into: &grad)
        var gradEqual = [Double](repeating: 0, count: m + 1)
        agg.gradient(rhat: rows, labels: labels, omega: omega, gamma: gamma, l2: l2, prior: .equal, into: &gradEqual)
        func lossEqual(_ w: [Double], _ b: Double) -> Double {
            let mean = w.reduce(0, +) / Double(m)
            return loss(w, b) - 0.5 * l2 * w.reduce(0) { $0 + $1 * $1 } + 0.5 * l2 * w.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
        }
        let h = 1e-6
        for u in 0...m {
            var wp = w0, wm = w0, bp = b0, bm = b0
            if u < m { wp[u] += h; wm[u] -= h } else { bp += h; bm -= h }
            let fd = (loss(wp, bp) - loss(wm, bm)) / (2 * h)
            #expect(abs(grad[u] - fd) < 1e-6, "component \(u): analytic \(grad[u]) vs finite difference \(fd)")
            let fdEqual = (lossEqual(wp, bp) - lossEqual(wm, bm)) / (2 * h)
            #expect(abs(gradEqual[u] - fdEqual) < 1e-6, "equal prior, component \(u): \(gradEqual[u]) vs \(fdEqual)")
        }
        #expect(abs(agg.objective(rhat: rows, labels: labels, omega: omega, gamma: gamma, l2: l2) - loss(w0, b0)) < 1e-9)
        #expect(abs(agg.objective(rhat: rows, labels: labels, omega: omega, gamma: gamma, l2: l2, prior: .equal) - lossEqual(w0, b0)) < 1e-9)
    }

    /// focal_gamma = 0 is plain class-weighted cross-entropy: gradient sum omega (p - y) x / sum omega.
    @Test func focalGammaZeroIsWeightedCrossEntropy() {
        var rng = SeededRandom(seed: 6)
        let n = 25, m = 3
        let rows = (0..<(n * m)).map { _ in rng.uniform() }
        let labels: [Int8] = (0..<n).map { _ in rng.uniform() < 0.5 ? 1 : 0 }
        let omega = labels.map { $0 == 1 ? 3.0 : 0.6 }
        var agg = Aggregator(stepRule: .sgd)
        for _ in 0..<m { agg.append(learnt: false, scale: 1) }
        agg.set(weights: [Double](repeating: 1 / Double(m), count: m), bias: 0)
        var grad = [Double](repeating: 0, count: m + 1)
        agg.gradient(rhat: rows, labels: labels, omega: omega, gamma: 0, l2: 0, into: &grad)
        var expected = [Double](repeating: 0, count: m + 1)
        let total = omega.reduce(0, +)
        for i in 0..<n {
            var z = 0.0
            for u in 0..<m { z += (1.0 / Double(m)) * rows[i * m + u] }
            let r = omega[i] * (1 / (1 + exp(-z)) - Double(labels[i])) / total
            for u in 0..<m { expected[u] += r * rows[i * m + u] }
            expected[m] += r
        }
        for k in 0...m { #expect(abs(grad[k] - expected[k]) < 1e-12) }
    }

    @Test func classWeightsAreInverseFrequency() {
        var cw = ClassWeights(halfLife: 0)
        #expect(cw.weight(for: 1) == 1 && cw.weight(for: 0) == 1)
        for i in 0..<100 { cw.observe(i < 10 ? 1 : 0) }
        #expect(abs(cw.weight(for: 1) - 5) < 1e-12)
        #expect(abs(cw.weight(for: 0) - 100.0 / 180.0) < 1e-12)

        var decayed = ClassWeights(halfLife: 10)
        decayed.observe(1)
        for _ in 0..<10 { decayed.observe(0) }
        #expect(abs(decayed.positives - 0.5) < 1e-9)
    }

    /// Before any label the reconstruction approximates the reported probabilities
    /// (up to the ridge when d > m) ...
    @Test func untrainedReconstructionApproximatesTheInput() {
        var rng = SeededRandom(seed: 7)
        let m = 5
        let cfe = model(m: m) { $0.latentDim = 8; $0.aggregatorInput = .reconstructed; $0.unlabelledFactors = false }
        var scores: [Double] = [], averages: [Double] = []
        for _ in 0..<300 {
            let entries = (0..<m).map { Entry(classifier: $0, value: rng.uniform()) }
            let s = cfe.score(entries)
            for e in entries { #expect(abs(cfe.lastReconstruction[Int(e.classifier)] - Double(e.value)) < 0.02) }
            scores.append(s.score); averages.append(s.average)
        }
        #expect(spearman(scores, averages) > 0.999)
    }

    /// ... and with the default input (observed values), untrained scores rank exactly like
    /// the simple average and approximate it (w = 4/m, b = -2: slope 1 at 0.5).
    @Test func untrainedModelScoresLikeTheAverage() {
        var rng = SeededRandom(seed: 8)
        let m = 6
        let cfe = model(m: m) { _ in }
        var scores: [Double] = [], averages: [Double] = []
        for _ in 0..<300 {
            let entries = (0..<m).map { Entry(classifier: $0, value: rng.uniform()) }
            let s = cfe.score(entries)
            #expect(abs(s.score - s.average) < 0.1)
            scores.append(s.score); averages.append(s.average)
        }
        #expect(spearman(scores, averages) == 1)
        #expect(cfe.version == 0)
    }

    /// The normalized output keeps one score scale across model versions: an instance on
    /// which every classifier reports p scores sigmoid(s (p - 1/2)) whatever was learnt.
    @Test func normalizedScoresStayOnOneScaleAcrossVersions() {
        let cfe = model(m: 6) { $0.scoreOutput = .normalized }
        var stream = SyntheticStream(seed: 9, positiveRate: 0.2, classifiers: 6)
        for version in 0..<6 {
            if version > 0 { cfe.update((0..<64).map { _ in stream.next() }) }
            #expect(cfe.version == Int64(version))
            for p in [0.1, 0.5, 0.93] {
                let s = cfe.score((0..<6).map { Entry(classifier: $0, value: p) }).score
                let expected = 1 / (1 + exp(-4 * (Double(Float(p)) - 0.5)))
                #expect(abs(s - expected) < 1e-9, "version \(version), p \(p): \(s) vs \(expected)")
            }
        }
        #expect(cfe.aggregator.w.reduce(0, +) > 0)
    }

    /// `model.missing_fill: average` (the default): a classifier that did not report reads
    /// the plain mean of those that did, so the instance scores exactly as if it had
    /// reported that mean, whatever the learnt weights; the CF reconstruction would not.
    @Test(arguments: [MissingFill.average, .reconstruction])
    func missingClassifiersReadTheMeanOfTheReported(fill: MissingFill) {
        let m = 6
        let cfe = model(m: m) { $0.missingFill = fill; $0.expertSelection = false }
        var stream = SyntheticStream(seed: 21, positiveRate: 0.2, classifiers: m)
        for _ in 0..<8 { cfe.update((0..<64).map { _ in stream.next() }) }
        let w = cfe.aggregator.w
        #expect(Set(w.map { ($0 * 1e6).rounded() }).count == m, "the learnt weights differ from one another")
        var rng = SeededRandom(seed: 22)
        var differences = 0.0
        for _ in 0..<50 {
            let values = (0..<m).map { _ in Double(Float(rng.uniform())) }
            let missing = [Int(rng.uniform() * Double(m)) % m, 0]
            let reported = (0..<m).filter { !missing.contains($0) }
            let mean = reported.reduce(0.0) { $0 + values[$1] } / Double(reported.count)
            let partial = cfe.score(reported.map { Entry(classifier: $0, value: values[$0]) }, learnUnlabelled: false)
            let complete = cfe.score((0..<m).map { Entry(classifier: $0, value: missing.contains($0) ? mean : values[$0]) },
                                     learnUnlabelled: false)
            // The published score by hand: sigmoid(s (w . v / sum(w) - 1/2)) over the filled row.
            let row = (0..<m).map { missing.contains($0) ? Double(Float(mean)) : values[$0] }
            let z = 4 * (zip(w, row).reduce(0.0) { $0 + $1.0 * $1.1 } / w.reduce(0, +) - 0.5)
            if fill == .average {
                #expect(abs(partial.score - complete.score) < 1e-6)
                #expect(abs(partial.score - 1 / (1 + exp(-z))) < 1e-6)
            }
            differences += abs(partial.score - complete.score)
        }
        if fill == .reconstruction { #expect(differences > 1e-3) }
    }

    /// An update whose aggregator part runs elsewhere: until it finishes the model scores
    /// with the weights it had, and afterwards it is the model a synchronous update makes,
    /// bit for bit, also when a classifier registered in between.
    @Test func anUpdateRunElsewhereEndsAsTheSynchronousOne() throws {
        let sync = model(m: 5) { _ in }
        let split = model(m: 5) { _ in }
        var stream = SyntheticStream(seed: 41, positiveRate: 0.2, classifiers: 5)
        let probe = (0..<5).map { Entry(classifier: $0, value: 0.2 + 0.1 * Double($0)) }
        for round in 0..<10 {
            let batch = (0..<64).map { _ in stream.next() }
            let scoreBefore = split.score(probe, learnUnlabelled: false).score
            let weightsBefore = split.aggregator.w
            sync.update(batch)
            let begun = try #require(split.beginUpdate(batch))
            #expect(split.updateInProgress == (begun.aggregator != nil))
            // Scoring goes on meanwhile, with the weights the model had.
            #expect(split.score(probe, learnUnlabelled: false).score == scoreBefore)
            #expect(split.aggregator.w == weightsBefore)
            if round == 5 {   // registered while the update runs
                _ = sync.classifier(named: "late")
                _ = split.classifier(named: "late")
            }
            let result = begun.aggregator?.run()
            if let result { split.finishUpdate(result) }
            #expect(!split.updateInProgress)
            #expect(split.aggregator == sync.aggregator, "round \(round)")
            #expect(split.experts == sync.experts, "round \(round)")
            #expect(split.version == sync.version && split.labelled == sync.labelled)
        }
        #expect(split.classifierCount == 6)
        #expect(split.snapshot() == sync.snapshot())
    }

    @Test func newClassifiersAreCappedAndStartAtTheMeanWeight() {
        var c = ModelConfiguration()
        c.maxClassifiers = 3
        let cfe = CFEnsemble(config: c)
        #expect(cfe.classifier(named: "a") == 0)
        #expect(cfe.classifier(named: "b") == 1)
        #expect(cfe.aggregator.w == [2, 2] && cfe.aggregator.b == -2)
        #expect(cfe.classifier(named: "c") == 2)
        #expect(cfe.classifier(named: "d") == nil)
        #expect(cfe.classifierCount == 3)
    }

    /// A model kept earlier, extended to the live model's classifiers: its own keep their
    /// index and state, the new ones are appended as a fresh registration makes them.
    @Test func coverAppendsLaterClassifiersWithoutMovingIndices() throws {
        let window = makeWindow(n: 80, m: 3, seed: 12)
        let kept = model(m: 3) { _ in }
        kept.update(window)
        let snapshot = kept.snapshot()
        let live = try CFEnsemble(config: kept.config, restoring: snapshot)
        _ = live.classifier(named: "late1")
        _ = live.classifier(named: "late2")
        let covered = try CFEnsemble(config: kept.config, restoring: snapshot)
        try covered.cover(live.registry.names)
        #expect(covered.registry.names == live.registry.names)
        // Same as registering the names on the restored model one by one.
        #expect(covered.snapshot() == live.snapshot())
        #expect(Array(covered.aggregator.w.prefix(3)) == snapshot.aggregator.w)
        let mean = snapshot.aggregator.w.reduce(0, +) / 3
        #expect(abs(covered.aggregator.w[3] - mean) < 1e-12)
        // It scores instances that carry the new classifiers.
        let s = covered.score([Entry(classifier: 0, value: 0.8), Entry(classifier: 4, value: 0.9)])
        #expect(s.score.isFinite && abs(s.average - 0.85) < 1e-6)
        // Already covering: nothing changes.
        try covered.cover(live.registry.names)
        #expect(covered.classifierCount == 5)
        // Names that would move an index are refused.
        let other = try CFEnsemble(config: kept.config, restoring: snapshot)
        #expect(throws: SnapshotError.self) { try other.cover(["c1", "c0", "c2", "x"]) }
        #expect(throws: SnapshotError.self) { try other.cover(["c0"]) }
        #expect(other.classifierCount == 3)
    }

    @Test func snapshotRoundTripsThroughJSON() throws {
        let window = makeWindow(n: 50, m: 4, seed: 8)
        let cfe = model(m: 4) { $0.latentDim = 3 }
        cfe.update(window)
        let data = try JSONEncoder().encode(cfe.snapshot())
        let restored = try CFEnsemble(config: cfe.config, restoring: JSONDecoder().decode(ModelSnapshot.self, from: data))
        #expect(restored.snapshot() == cfe.snapshot())
        let probe = [Entry(classifier: 0, value: 0.3), Entry(classifier: 2, value: 0.9)]
        #expect(restored.score(probe) == cfe.score(probe))
        var other = cfe.config
        other.latentDim = 5
        #expect(throws: SnapshotError.self) { _ = try CFEnsemble(config: other, restoring: cfe.snapshot()) }
    }
}

/// A scorer process scores without touching its model and the learner `observe`s the
/// same instance: together they must learn exactly what one process scoring it learns.
@Test func scoringElsewhereThenObservingEqualsScoringHere() {
    let window = makeWindow(n: 700, m: 6, seed: 41)
    var config = ModelConfiguration()
    config.unlabelledFactors = true
    config.factorRefreshInterval = 64
    let local = CFEnsemble(config: config), learner = CFEnsemble(config: config), scorer = CFEnsemble(config: config)
    for u in 0..<6 { _ = local.classifier(named: "c\(u)"); _ = learner.classifier(named: "c\(u)"); _ = scorer.classifier(named: "c\(u)") }
    for (k, item) in window.enumerated() {
        let here = local.score(item.entries)
        let there = scorer.score(item.entries, learnUnlabelled: false)
        learner.observe(item.entries)
        if k < 64 { #expect(here == there) }     // before the first refresh the models agree
        if k % 100 == 99 {
            _ = local.update(Array(window[(k - 99)...k]))
            _ = learner.update(Array(window[(k - 99)...k]))
        }
    }
    #expect(local.snapshot() == learner.snapshot())
    // The scorer's own model never moved: only what it is sent changes it.
    #expect(scorer.snapshot() == CFEnsemble(config: config, registering: (0..<6).map { "c\($0)" }).snapshot())
    #expect(local.snapshot() != scorer.snapshot())
}

private extension CFEnsemble {
    convenience init(config: ModelConfiguration, registering names: [String]) {
        self.init(config: config)
        for n in names { _ = classifier(named: n) }
    }
}
