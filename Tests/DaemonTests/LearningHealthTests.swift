import Foundation
import Testing
import TestSupport
import Online
@testable import Daemon

/// How learning and the health conditions interact, in process on a manual clock (each
/// instance 10 ms after the one before): collapse under contradicting labels, a label
/// outage, the seed's unweighted collapse. The socket path of an alert and its fallback
/// is covered end to end by the integration suite's HealthTests.
@Suite struct LearningHealthTests {
    private func feed(_ h: CoreHarness, _ range: Range<Int>, preds: (Int) -> [String: Double], label: (Int) -> Int?) {
        for i in range {
            h.pred("h\(i)", preds(i))
            if let l = label(i) { h.label("h\(i)", Int8(l)) }
            h.clock.advance(by: 0.01)
            h.core.tick(now: h.clock.now)
        }
    }

    @Test func projectedWeightsCollapseToZeroFireOnTheFallingSumAndRecover() throws {
        let h = CoreHarness {
            $0.batchSize = 32
            $0.healthIntervalSeconds = 0.2
            $0.model.nonnegativeWeights = true
        }
        feed(h, 0..<1500, preds: { honestPreds($0, truth: $0 % 2) }, label: { $0 % 2 })
        #expect(h.core.health.status == "healthy")
        feed(h, 1500..<7500, preds: { honestPreds($0, truth: $0 % 2) }, label: { 1 - $0 % 2 })
        let firing = try #require(h.sink.alerts.first { $0.alert == "weight_collapse" && $0.state == "firing" })
        #expect(firing.severity == "critical" && firing.action == "fallback")
        #expect(firing.reason.contains("is below 0.25 of its healthy level"), "\(firing.reason)")
        #expect(h.core.model.aggregator.w.allSatisfy { $0 >= 0 })
        #expect(h.core.healthBody().fallback_active)
        h.pred("during", ["m0": 0.9, "m1": 0.7])
        #expect(h.sink.scores.last?.fallback == true)
        #expect(abs((h.sink.scores.last?.score ?? 0) - 0.8) < 1e-6)

        feed(h, 7500..<10_500, preds: { honestPreds($0, truth: $0 % 2) }, label: { $0 % 2 })
        #expect(h.sink.alerts.contains { $0.alert == "weight_collapse" && $0.state == "resolved" })
        #expect(h.core.health.status != "critical")
        h.pred("after", ["m0": 0.9, "m1": 0.7])
        #expect(h.sink.scores.last?.fallback == false)
    }

    /// Positives stop arriving: label_outage warns, the weights stay positive (the replay
    /// buffer keeps recent positives), and it resolves once positives return.
    @Test func labelOutageWarnsWithoutCollapseAndResolves() throws {
        let h = CoreHarness {
            $0.batchSize = 32
            $0.healthIntervalSeconds = 0.2
        }
        let preds = { (i: Int) in honestPreds(i, truth: i % 10 == 0 ? 1 : 0) }
        feed(h, 0..<2000, preds: preds, label: { $0 % 10 == 0 ? 1 : 0 })
        feed(h, 2000..<6000, preds: preds, label: { $0 % 10 == 0 ? nil : 0 })
        let outage = try #require(h.sink.alerts.first { $0.alert == "label_outage" })
        #expect(outage.state == "firing" && outage.severity == "warning")
        #expect(outage.reason.contains("without a positive"))
        #expect(h.core.health.status == "warning")
        #expect(!h.sink.alerts.contains { $0.severity == "critical" })
        #expect(h.core.model.aggregator.w.allSatisfy { $0 > 0 }, "\(h.core.model.aggregator.w)")
        feed(h, 6000..<7000, preds: preds, label: { $0 % 10 == 0 ? 1 : 0 })
        #expect(h.sink.alerts.contains { $0.alert == "label_outage" && $0.state == "resolved" })
    }

    /// The seed's mechanism: ten weak classifiers near 0.5, 10% positives. Without class
    /// weights and with Adam the weights absorb the shift toward the base rate together
    /// and collapse; with class weights and plain gradient steps no critical alert fires.
    @Test(arguments: [false, true])
    func unweightedLearningCollapsesLikeTheSeedAndWeightedDoesNot(classWeights: Bool) throws {
        let h = CoreHarness {
            $0.batchSize = 32
            $0.healthIntervalSeconds = 0.2
            $0.model.classWeights = classWeights
            if !classWeights {
                $0.model.stepRule = .adam
                $0.model.learningRate = 0.3
            }
        }
        let weak = { (i: Int) -> [String: Double] in
            let truth = i % 10 == 0
            var out: [String: Double] = [:]
            for u in 0..<10 { out["w\(u)"] = 0.5 + (truth ? 0.01 : -0.01) + 0.2 * (SeededRandom.uniform(at: UInt64(i * 16 + u + 1)) - 0.5) }
            return out
        }
        feed(h, 0..<6000, preds: weak, label: { $0 % 10 == 0 ? 1 : 0 })
        let critical = h.sink.alerts.filter { $0.severity == "critical" && $0.state == "firing" }
        let w = h.core.model.aggregator.w
        if classWeights {
            #expect(critical.isEmpty, "\(critical)")
            #expect(w.reduce(0, +) > 1, "\(w)")
        } else {
            let collapse = try #require(critical.first { $0.alert == "weight_collapse" }, "no collapse; weights \(w)")
            let sum = collapse.metrics["weight_sum"] ?? .infinity, reference = collapse.metrics["reference_weight_sum"] ?? 0
            #expect(sum <= 0.25 * reference || (collapse.metrics["negative_weights"] ?? 0) * 2 > Double(w.count))
            // While it fired, published scores came from the fallback.
            #expect(h.sink.scores.contains { $0.fallback })
        }
    }
}
