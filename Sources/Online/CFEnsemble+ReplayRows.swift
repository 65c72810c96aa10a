/// The replay buffer as rows for the aggregator, and the rows that need nothing but
/// their instance's entries (which an `AggregatorUpdate` builds wherever it runs).
extension CFEnsemble {
    /// Whether an aggregator row depends on its instance's entries alone (observed input,
    /// missing classifiers read as the mean of the reported): then anyone can build it.
    var rowsFromEntriesAlone: Bool { config.aggregatorInput == .observed && config.missingFill == .average }

    /// The row of observed input with missing classifiers read as the mean of those
    /// reported, over `v.count` classifiers.
    static func observedRow(_ entries: UnsafeBufferPointer<Entry>, into v: inout [Double]) {
        if entries.count != v.count {
            let fill = reportedMean(entries)
            for u in v.indices { v[u] = fill }
        }
        for e in entries { v[Int(e.classifier)] = Double(e.value) }
    }

    /// The plain mean of the reported probabilities.
    static func reportedMean(_ entries: UnsafeBufferPointer<Entry>) -> Double {
        var sum = 0.0
        for e in entries { sum += Double(e.value) }
        return sum / Double(entries.count)
    }

    /// The replay buffer's instances' rows (positives, then negatives), built by `row`.
    static func rows(of replay: ReplayBuffer, width m: Int,
                     _ row: (UnsafeBufferPointer<Entry>, inout [Double]) -> Void) -> [Double] {
        var rows = [Double](repeating: 0, count: replay.count * m)
        var scratch = [Double](repeating: 0, count: m)
        var i = 0
        for part in [replay.positives, replay.negatives] {
            for item in part {
                item.entries.withUnsafeBufferPointer { row($0, &scratch) }
                for u in 0..<m { rows[i * m + u] = scratch[u] }
                i += 1
            }
        }
        return rows
    }

    /// The replay buffer's labels and per-instance loss weights (positives, then negatives).
    func replayWeights() -> (labels: [Int8], omega: [Double]) {
        var labels = [Int8](repeating: 0, count: replay.count)
        for i in replay.positives.indices { labels[i] = 1 }
        let p = Double(replay.positives.count), q = Double(replay.negatives.count)
        var share = 0.5
        if !config.classWeights {
            let total = classWeights.positives + classWeights.negatives
            share = total > 0 ? classWeights.positives / total : 0.5
        }
        let omega = labels.map { $0 == 1 ? share / p : (1 - share) / q }
        return (labels, omega)
    }
}
