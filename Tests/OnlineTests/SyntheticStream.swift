import TestSupport
import Foundation
@testable import Online

/// A seeded stream of correlated base classifiers of mixed skill (the seed's scenario:
/// 10 classifiers, a given positive rate), for property tests of learning.
struct SyntheticStream {
    var rng: SeededRandom
    let positiveRate: Double
    let skills: [Double]
    let correlation: Double
    let missingRate: Double

    init(seed: UInt64, positiveRate: Double, classifiers: Int = 10, correlation: Double = 0.6, missingRate: Double = 0) {
        rng = SeededRandom(seed: seed)
        self.positiveRate = positiveRate
        skills = (0..<classifiers).map { 0.4 + 2.0 * Double($0) / Double(max(1, classifiers - 1)) }
        self.correlation = correlation
        self.missingRate = missingRate
    }

    mutating func next() -> LabelledInstance {
        let label: Int8 = rng.uniform() < positiveRate ? 1 : 0
        let shared = rng.normal()
        var entries: [Entry] = []
        for (u, s) in skills.enumerated() {
            if missingRate > 0 && rng.uniform() < missingRate { continue }
            let noise = correlation * shared + (1 - correlation * correlation).squareRoot() * rng.normal()
            let logit = (label == 1 ? s : -s) + 1.2 * noise - 1
            entries.append(Entry(classifier: u, value: 1 / (1 + exp(-logit))))
        }
        if entries.isEmpty { entries.append(Entry(classifier: 0, value: 0.5)) }
        return LabelledInstance(entries: entries, label: label)
    }
}

/// Scores a stream prequentially (each instance before its label is learnt, labels
/// learnt in mini-batches) and returns the PR-AUC of the model and of the simple average.
func prequential(_ model: CFEnsemble, stream: inout SyntheticStream, count: Int, batchSize: Int, warmup: Int = 0)
    -> (model: Double, average: Double) {
    var scores: [Double] = [], averages: [Double] = [], labels: [Int8] = []
    var batch: [LabelledInstance] = []
    for i in 0..<count {
        let item = stream.next()
        let s = model.score(item.entries)
        if i >= warmup { scores.append(s.score); averages.append(s.average); labels.append(item.label) }
        batch.append(item)
        if batch.count == batchSize { model.update(batch); batch.removeAll() }
    }
    return (RollingQuality.averagePrecision(scores, labels)!, RollingQuality.averagePrecision(averages, labels)!)
}
