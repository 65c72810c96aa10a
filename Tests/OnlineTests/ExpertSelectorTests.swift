import Foundation
import Testing
import TestSupport
@testable import Online

/// Average precision from its definition, written apart from Online: the mean over the
/// distinct thresholds, from the highest score down, of precision at the threshold times
/// the recall it adds (negatives counted `negativeWeight` times).
private func referenceAP(_ scores: [Double], _ labels: [Int8], negativeWeight: Double = 1) -> Double {
    let thresholds = Set(scores).sorted(by: >)
    let positives = Double(labels.filter { $0 == 1 }.count)
    var ap = 0.0, recallBefore = 0.0
    for t in thresholds {
        var tp = 0.0, fp = 0.0
        for (s, l) in zip(scores, labels) where s >= t {
            if l == 1 { tp += 1 } else { fp += negativeWeight }
        }
        let recall = tp / positives
        if tp > 0 { ap += (recall - recallBefore) * tp / (tp + fp) }
        recallBefore = recall
    }
    return ap
}

@Suite struct ExpertSelectorTests {
    @Test func precisionAtPositivesAveragesToAveragePrecision() {
        var rng = SeededRandom(seed: 3)
        for trial in 0..<40 {
            let n = 30 + trial * 5
            let labels: [Int8] = (0..<n).map { _ in rng.uniform() < 0.2 ? 1 : 0 }
            guard labels.contains(1), labels.contains(0) else { continue }
            // Coarse scores: many ties, which form one threshold.
            let scores = labels.map { Double(Int((rng.uniform() + (Double($0) * 0.3)) * 8)) / 8 }
            for w in [1.0, 3.5] {
                let per = ExpertSelector.precisionAtPositives(scores, labels, negativeWeight: w)
                #expect(per.count == labels.filter { $0 == 1 }.count)
                let mean = per.reduce(0, +) / Double(per.count)
                #expect(abs(mean - referenceAP(scores, labels, negativeWeight: w)) < 1e-12, "trial \(trial) weight \(w)")
            }
        }
    }

    /// The weights are the softmax of eta x positives x (mean paired difference of the
    /// per-positive precisions - z standard errors), recomputed here from the reference AP
    /// pieces: an expert that ranks every positive first takes the weight from a learned
    /// combination that does not; experts no better than it stay at about zero.
    @Test func aClearlyBetterExpertTakesTheWeightAndEqualOnesDoNot() {
        var rng = SeededRandom(seed: 9)
        let n = 400
        let labels: [Int8] = (0..<n).map { $0 % 10 == 0 ? 1 : 0 }
        let noisy = labels.map { Double($0) * 0.4 + rng.uniform() }
        let perfect = labels.map { Double($0) + rng.uniform() * 0.5 }
        var selector = ExpertSelector()
        // learned, average, then two classifiers: the first is the learned one's equal, the second perfect.
        selector.decide(scores: [noisy, noisy.map { $0 * 2 }, noisy, perfect], labels: labels, negativeWeight: 1, z: 3, eta: 1)
        #expect(selector.weights.count == 4)
        #expect(selector.weights[3] > 0.999, "\(selector.weights)")
        #expect(!selector.followsLearned)
        // Independent recomputation of the perfect expert's logit against the learned one.
        let p0 = ExpertSelector.precisionAtPositives(noisy, labels, negativeWeight: 1)
        let p3 = ExpertSelector.precisionAtPositives(perfect, labels, negativeWeight: 1)
        #expect(abs(p3.reduce(0, +) / Double(p3.count) - 1) < 1e-12)
        #expect(abs(p0.reduce(0, +) / Double(p0.count) - referenceAP(noisy, labels)) < 1e-12)

        // Experts that rank exactly like the learned combination: it keeps the weight.
        var same = ExpertSelector()
        same.decide(scores: [noisy, noisy.map { $0 + 1 }, noisy, noisy.map { $0 * 3 }], labels: labels, negativeWeight: 1, z: 3, eta: 1)
        #expect(same.weights.allSatisfy { abs($0 - 0.25) < 1e-4 }, "identical experts share equally: \(same.weights)")
        var worse = ExpertSelector()
        worse.decide(scores: [perfect, noisy, noisy, noisy], labels: labels, negativeWeight: 1, z: 3, eta: 1)
        #expect(worse.followsLearned || worse.weights[0] > 0.999, "\(worse.weights)")
    }

    enum Stream: String, CaseIterable { case noise, weak, standout }

    /// End to end in the model, scored on 1,000 held-out instances after learning from
    /// 3,000: labels that carry no information amplify no weight; six equally weak classifiers
    /// keep positive, near-equal weights (no collapse); one far better classifier ends up
    /// dominating the published score.
    @Test(arguments: Stream.allCases)
    func learnerFollowsEvidenceOnly(stream: Stream) {
        var config = ModelConfiguration()
        config.unlabelledFactors = false
        let model = CFEnsemble(config: config)
        let m = 6
        for u in 0..<m { _ = model.classifier(named: "c\(u)") }
        var rng = SeededRandom(seed: 21)
        func instance(_ label: Int8) -> [Entry] {
            (0..<m).map { u in
                let signal: Double
                switch stream {
                case .noise: signal = 0
                case .weak: signal = 0.4
                case .standout: signal = u == 0 ? 3 : 0.3
                }
                let logit = (label == 1 ? signal : -signal) + rng.normal()
                return Entry(classifier: u, value: 1 / (1 + exp(-logit)))
            }
        }
        var batch: [LabelledInstance] = []
        var heldOut: [(entries: [Entry], label: Int8)] = []
        for i in 0..<4000 {
            let label: Int8 = rng.uniform() < 0.1 ? 1 : 0
            let entries = instance(label)
            if i >= 3000 { heldOut.append((entries, label)); continue }
            batch.append(LabelledInstance(entries: entries, label: label))
            if batch.count == 64 { model.update(batch); batch.removeAll() }
        }
        let labels = heldOut.map(\.label)
        let published = heldOut.map { model.score($0.entries, learnUnlabelled: false).score }
        let average = heldOut.map { $0.entries.reduce(0.0) { $0 + Double($1.value) } / Double(m) }
        let single = model.experts.weights.isEmpty ? 0 : model.experts.weights[ExpertSelector.firstClassifier...].max() ?? 0
        let aw = model.aggregator.w, total = aw.reduce(0, +)
        switch stream {
        case .noise:
            // Nothing is amplified: the class-weighted loss shrinks every weight toward zero
            // (the classifiers say nothing about these labels; the daemon's weight_collapse
            // then fires and it publishes the average), and whatever is published ranks no
            // better or worse than the average beyond noise.
            #expect(aw.allSatisfy { abs($0) < config.initialScale / Double(m) }, "a weight grew on noise: \(aw)")
            #expect(abs(referenceAP(published, labels) - referenceAP(average, labels)) < 0.03)
        case .weak:
            #expect(single < 0.05, "\(model.experts.weights)")
            #expect(total > 0 && aw.allSatisfy { $0 > 0 && abs($0 / total - 1.0 / Double(m)) < 0.06 }, "weights \(aw)")
            #expect(referenceAP(published, labels) >= referenceAP(average, labels) - 0.01)
        case .standout:
            let best = heldOut.map { Double($0.entries[0].value) }
            let apPublished = referenceAP(published, labels), apBest = referenceAP(best, labels)
            #expect(apPublished >= apBest - 0.02, "published \(apPublished), c0 alone \(apBest)")
            #expect(apPublished > referenceAP(average, labels) + 0.05)
            #expect(aw[0] / total > 0.5, "c0's learned weight \(aw[0] / total)")
        }
    }

    /// Ten independent weak classifiers, 3.5% positives, labels right after scoring: the
    /// simple average is the best combination there is, and learning from ~95 positives
    /// can only add noise. Scored prequentially, the default learner (plain gradient
    /// steps and expert selection) stays near the average; Adam's per-coordinate steps,
    /// the earlier default, fall far below it.
    @Test(arguments: [UInt64(0), 1, 2])
    func independentWeakClassifiersStayNearTheAverage(seed: UInt64) {
        func prequential(_ config: ModelConfiguration) -> (published: Double, average: Double) {
            let model = CFEnsemble(config: config)
            let m = 10
            for u in 0..<m { _ = model.classifier(named: "c\(u)") }
            var rng = SeededRandom(seed: 100 + seed)
            var scores: [Double] = [], averages: [Double] = [], labels: [Int8] = []
            var batch: [LabelledInstance] = []
            for _ in 0..<2700 {
                let label: Int8 = rng.uniform() < 0.035 ? 1 : 0
                let entries = (0..<m).map { u in
                    Entry(classifier: u, value: 1 / (1 + exp(-((label == 1 ? 0.3 : -0.3) + rng.normal()))))
                }
                let s = model.score(entries, learnUnlabelled: false)
                scores.append(s.score)
                averages.append(s.average)
                labels.append(label)
                batch.append(LabelledInstance(entries: entries, label: label))
                if batch.count == 64 { model.update(batch); batch.removeAll() }
            }
            return (referenceAP(scores, labels), referenceAP(averages, labels))
        }
        var config = ModelConfiguration()
        config.unlabelledFactors = false
        let now = prequential(config)
        config.stepRule = .adam
        config.learningRate = 0.3
        config.expertSelection = false
        let adam = prequential(config)
        #expect(now.published >= now.average - 0.06, "default \(now.published), average \(now.average)")
        #expect(now.published >= adam.published + 0.05, "default \(now.published), adam \(adam.published)")
    }
}
