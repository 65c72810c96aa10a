import Foundation
import Testing
@testable import Online

/// ALGORITHM.md check 4 and the seed's failure, as properties of seeded streams.
@Suite struct ImbalanceTests {
    private func run(rate: Double, classWeights: Bool, seed: UInt64) -> (model: Double, average: Double, cfe: CFEnsemble) {
        var c = ModelConfiguration()
        c.classWeights = classWeights
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
        #expect(w.reduce(0, +) > 1, "weight sum \(w.reduce(0, +)) fell below its start")
        #expect(w.filter { $0 > 0 }.count > w.count / 2)
        #expect(r.model >= r.average, "PR-AUC \(r.model) below the simple average's \(r.average)")
    }

    /// The seed's mechanism: at 1% positives the unweighted gradient
    /// (`learning.class_weights=false`) drives the weight sum below zero and the ensemble
    /// far below the average; the class-weighted one does not.
    @Test func unweightedGradientCollapsesOnRarePositives() {
        let unweighted = run(rate: 0.01, classWeights: false, seed: 23)
        let weighted = run(rate: 0.01, classWeights: true, seed: 23)
        #expect(unweighted.cfe.aggregator.w.reduce(0, +) < 0)
        #expect(unweighted.model < unweighted.average / 2)
        #expect(weighted.cfe.aggregator.w.reduce(0, +) > 1)
        #expect(weighted.model >= weighted.average)
    }
}
