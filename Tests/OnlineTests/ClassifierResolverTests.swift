import Testing
@testable import Online

@Suite struct ClassifierResolverTests {
    private func resolve(_ r: inout ClassifierResolver, _ names: [String], _ model: CFEnsemble, now: Double,
                         registered: inout [String]) -> (ClassifierResolver.Outcome, [Entry]) {
        var entries: [Entry] = []
        var seen: [String] = []
        let readings = names.enumerated().map { (name: $0.element, value: 0.1 * Double($0.offset + 1)) }
        let outcome = r.resolve(readings, name: { $0.name }, value: { $0.value }, model: model, into: &entries, now: now) {
            seen.append($0)
        }
        registered += seen
        return (outcome, entries)
    }

    @Test func mapsNamesInAnyOrderRegistersNewOnesAndRecordsWhenEachReported() {
        let model = CFEnsemble(config: ModelConfiguration())
        var r = ClassifierResolver()
        var registered: [String] = []
        var (o, e) = resolve(&r, ["a", "b"], model, now: 1, registered: &registered)
        #expect(o == .resolved && registered == ["a", "b"])
        #expect(e.map(\.classifier) == [0, 1] && e.map(\.value) == [Float(0.1), Float(0.2)])
        // The same names at other positions (the position cache must not mislead).
        (o, e) = resolve(&r, ["b", "c", "a"], model, now: 2, registered: &registered)
        #expect(e.map(\.classifier) == [1, 2, 0])
        #expect(registered == ["a", "b", "c"])
        (o, e) = resolve(&r, ["b", "c"], model, now: 5, registered: &registered)
        #expect(e.map(\.classifier) == [1, 2])
        #expect(r.lastSeen == [2, 5, 5])
        // A model replaced under it (a rollback, a scorer's new state) after forgetPositions.
        let other = CFEnsemble(config: ModelConfiguration())
        _ = other.classifier(named: "c")
        _ = other.classifier(named: "b")
        r.forgetPositions()
        (o, e) = resolve(&r, ["b", "c"], other, now: 6, registered: &registered)
        #expect(e.map(\.classifier) == [1, 0])
    }

    @Test func namesBeyondTheLimitRegisterNothing() {
        var config = ModelConfiguration()
        config.maxClassifiers = 3
        let model = CFEnsemble(config: config)
        var r = ClassifierResolver()
        var registered: [String] = []
        _ = resolve(&r, ["a", "b"], model, now: 1, registered: &registered)
        let (o, _) = resolve(&r, ["a", "c", "d"], model, now: 2, registered: &registered)
        #expect(o == .tooMany(newNames: 2))
        #expect(model.classifierCount == 2 && registered == ["a", "b"])
        let (o2, e2) = resolve(&r, ["c", "a"], model, now: 3, registered: &registered)
        #expect(o2 == .resolved && e2.map(\.classifier) == [2, 0] && registered == ["a", "b", "c"])
    }
}
