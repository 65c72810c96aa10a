import Foundation
import Testing
import TestSupport
@testable import Online

/// `explain` against the published score: the shares must add up to the combination the
/// score was published from, σ(s (Σ shares − ½)) = score, whatever the experts' weights.
@Suite struct ExplainTests {
    static func trained(seed: UInt64, strongest: Int? = nil) -> CFEnsemble {
        var config = ModelConfiguration()
        // The selector moves on any evidence, so that other experts than the learned one
        // weigh in the published combination.
        if strongest != nil { config.expertZ = 0; config.expertEta = 50 }
        let model = CFEnsemble(config: config)
        for name in ["a", "b", "c", "d"] { _ = model.classifier(named: name) }
        var g = SeededRandom(seed: seed)
        for _ in 0..<20 {
            var batch: [LabelledInstance] = []
            for _ in 0..<64 {
                let y: Int8 = g.uniform() < 0.2 ? 1 : 0
                let entries = (0..<4).map { u -> Entry in
                    let skill = u == strongest ? 4.0 : 0.3 + 0.3 * Double(u)
                    let z = (y == 1 ? skill : -skill) + g.normal()
                    return Entry(classifier: u, value: 1 / (1 + exp(-z)))
                }
                _ = model.score(entries)
                batch.append(LabelledInstance(entries: entries, label: y))
            }
            _ = model.update(batch)
        }
        return model
    }

    @Test(arguments: [nil, 2] as [Int?])
    func sharesAddUpToThePublishedCombination(strongest: Int?) throws {
        let model = Self.trained(seed: 5, strongest: strongest)
        for entries in [[Entry(classifier: 0, value: 0.9), Entry(classifier: 1, value: 0.2), Entry(classifier: 2, value: 0.7),
                         Entry(classifier: 3, value: 0.4)],
                        [Entry(classifier: 1, value: 0.8), Entry(classifier: 3, value: 0.6)]] {
            let scored = model.score(entries, learnUnlabelled: false)
            let e = model.explain(entries)
            let v = e.shares.reduce(0, +)
            let s = model.config.initialScale
            #expect(abs(1 / (1 + exp(-s * (v - 0.5))) - scored.score) < 1e-9, "shares \(e.shares) vs score \(scored.score)")
            #expect(e.names == ["a", "b", "c", "d"])
            #expect(e.filled == (entries.count == 4 ? [] : ["a", "c"]))
        }
        let e = model.explain([Entry(classifier: 1, value: 0.8), Entry(classifier: 3, value: 0.6)])
        // A stand-out classifier is followed by the selector; otherwise the learned combination.
        #expect(strongest == nil ? e.expert == "learned" : model.experts.weights[ExpertSelector.learned] < 0.99,
                "\(e.expert), expert weights \(model.experts.weights)")
    }
}
