import Foundation
import Testing
@testable import Online

/// Check 4 of docs/algorithm.md and the seed's failure, as properties of seeded streams.
@Suite struct ImbalanceTests {
    private func run(rate: Double, classWeights: Bool, seed: UInt64, nonnegative: Bool = false)
        -> (model: Double, average: Double, cfe: CFEnsemble) {
        var c = ModelConfiguration()
        c.classWeights = classWeights
        c.nonnegativeWeights = nonnegative
        let cfe = CFEnsemble(config: c)
        for u in 0..<10 { _ = cfe.classifier(named: "c\(u)") }
        var stream = SyntheticStream(seed: seed, positiveRate: rate)
        let r = prequential(cfe, stream: &stream, count: 20000, batchSize: 256, warmup: 2000)
        return (r.model, r.average, cfe)
    }

    /// 10 classifiers, 10% positives: with class weights the aggregator keeps a positive,
    /// growing weight sum with most weights positive, and beats the simple average.
    @Test(arguments: [21, 22] as [UInt64])
    func classWeightsKeepWeightsHealthyAndBeatTheAverage(seed: UInt64) {
        let r = run(rate: 0.1, classWeights: true, seed: seed)
        let w = r.cfe.aggregator.w
        #expect(w.reduce(0, +) > r.cfe.config.initialScale, "weight sum \(w.reduce(0, +)) fell below its start")
        #expect(w.filter { $0 > 0 }.count > w.count / 2)
        #expect(r.model >= r.average, "PR-AUC \(r.model) below the simple average's \(r.average)")
    }

    /// `learning.nonnegative_weights`: on a stream where free weights go negative (the
    /// weak classifiers cancel the noise they share with the strong ones), every projected
    /// weight stays at or above zero, some sit exactly at zero, and the model still beats
    /// the simple average.
    @Test func nonnegativeWeightsStayAtOrAboveZero() {
        let free = run(rate: 0.1, classWeights: true, seed: 21)
        let projected = run(rate: 0.1, classWeights: true, seed: 21, nonnegative: true)
        #expect(free.cfe.aggregator.w.contains { $0 < 0 }, "the stream no longer exercises the projection: \(free.cfe.aggregator.w)")
        #expect(projected.cfe.aggregator.w.allSatisfy { $0 >= 0 }, "\(projected.cfe.aggregator.w)")
        #expect(projected.cfe.aggregator.w.contains { $0 == 0 })
        #expect(projected.cfe.aggregator.w.reduce(0, +) > projected.cfe.config.initialScale)
        #expect(projected.model >= projected.average, "PR-AUC \(projected.model) below the simple average's \(projected.average)")
    }

    /// The seed's mechanism, reproduced on the aggregator alone: plain unweighted
    /// gradient steps on each mini-batch of a 1%-positive stream drive the weight sum
    /// below zero. The model's learner (class-weighted steps on a replay buffer that
    /// always holds both classes) keeps it growing and beats the simple average.
    @Test func perBatchUnweightedGradientCollapsesButTheLearnerDoesNot() {
        var stream = SyntheticStream(seed: 23, positiveRate: 0.01)
        var agg = Aggregator(stepRule: .sgd)
        for _ in 0..<10 { agg.append(learnt: false, scale: 1) }
        agg.set(weights: [Double](repeating: 0.1, count: 10), bias: 0)
        var grad = [Double](repeating: 0, count: 11)
        for _ in 0..<80 {
            let batch = (0..<256).map { _ in stream.next() }
            var rows = [Double](repeating: 0, count: 256 * 10)
            for (i, item) in batch.enumerated() { for e in item.entries { rows[i * 10 + Int(e.classifier)] = Double(e.value) } }
            agg.gradient(rhat: rows, labels: batch.map(\.label), omega: [Double](repeating: 1, count: 256), gamma: 0, l2: 0, into: &grad)
            agg.step(grad, learningRate: 0.5)
        }
        #expect(agg.w.reduce(0, +) < 0, "the seed's unweighted per-batch gradient did not collapse: \(agg.w)")

        let learner = run(rate: 0.01, classWeights: true, seed: 23)
        #expect(learner.cfe.aggregator.w.reduce(0, +) > learner.cfe.config.initialScale)
        #expect(learner.model >= learner.average)
    }

    /// `learning.class_weights=false` gives the unweighted loss: each class carries its
    /// share of the running counts instead of half.
    @Test func classWeightsSwitchChangesTheClassShares() {
        for weighted in [true, false] {
            var c = ModelConfiguration()
            c.classWeights = weighted
            let cfe = CFEnsemble(config: c)
            for u in 0..<10 { _ = cfe.classifier(named: "c\(u)") }
            var stream = SyntheticStream(seed: 24, positiveRate: 0.1)
            for _ in 0..<8 { cfe.update((0..<256).map { _ in stream.next() }) }
            let (_, labels, omega) = cfe.replayProblem()
            let positiveShare = zip(labels, omega).filter { $0.0 == 1 }.reduce(0) { $0 + $1.1 }
            let negativeShare = zip(labels, omega).filter { $0.0 == 0 }.reduce(0) { $0 + $1.1 }
            let pi = cfe.classWeights.positives / (cfe.classWeights.positives + cfe.classWeights.negatives)
            #expect(abs(positiveShare - (weighted ? 0.5 : pi)) < 1e-9)
            #expect(abs(negativeShare - (weighted ? 0.5 : 1 - pi)) < 1e-9)
        }
    }
}
