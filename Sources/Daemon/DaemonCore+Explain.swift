import Online
import Transport

extension DaemonCore {
    /// `output.explain`: the live model's explanation of the instance it just scored; a
    /// fallback's is the simple average's (each reported classifier an equal share).
    func explain(_ entries: [Entry], modelPublished: Bool, fallback: Bool) -> ScoreExplanation {
        let names = model.registry.names
        guard fallback else {
            let e = model.explain(entries)
            return ScoreExplanation(expert: e.expert, names: e.names, shares: e.shares, filled: e.filled)
        }
        let reported = Set(entries.map { Int($0.classifier) })
        var shares = [Double](repeating: 0, count: names.count)
        for e in entries where Int(e.classifier) < shares.count { shares[Int(e.classifier)] = Double(e.value) / Double(entries.count) }
        // The last healthy model's shares are not computed: only which expert it is.
        return ScoreExplanation(expert: modelPublished ? "last_healthy" : "average", names: modelPublished ? [] : names,
                                shares: modelPublished ? [] : shares,
                                filled: names.indices.filter { !reported.contains($0) }.map { names[$0] })
    }
}
