import Foundation
import Testing
import Wire
@testable import Online

/// The model state a learner publishes to its scorers.
struct ModelStateTests {
    private func state(poison: Double?) -> ModelState {
        let model = CFEnsemble(config: ModelConfiguration())
        for name in ["a", "b", "c"] { _ = model.classifier(named: name) }
        var snapshot = model.scoringSnapshot()
        if let poison {
            snapshot.aggregator.w[1] = poison
            snapshot.aggregator.b = poison
        }
        return ModelState(lineage: "L", version: 7, status: "critical", fallback: "average", ts: 1, model: snapshot, healthy: snapshot)
    }

    /// A poisoned model (NaN or infinite weights) still encodes, as checkpoints do, and
    /// decodes to the same numbers: before, it encoded to no bytes at all.
    @Test(arguments: [Double.nan, .infinity, -.infinity])
    func poisonedModelsEncodeAndDecode(poison: Double) throws {
        let bytes = state(poison: poison).encoded()
        #expect(!bytes.isEmpty)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains(poison.isNaN ? "\"nan\"" : poison > 0 ? "\"inf\"" : "\"-inf\""), "\(text.prefix(300))")
        let back = try ModelState.decode(bytes)
        let w = try #require(back.model?.aggregator.w)
        #expect(w.count == 3 && w[0] == state(poison: nil).model!.aggregator.w[0])
        #expect(poison.isNaN ? w[1].isNaN : w[1] == poison)
        #expect(back.version == 7 && back.lineage == "L" && back.healthy != nil)
    }

    @Test func finiteModelsRoundTripExactly() throws {
        let s = state(poison: nil)
        #expect(try ModelState.decode(s.encoded()) == s)
    }
}
