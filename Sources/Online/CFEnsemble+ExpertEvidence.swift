/// What the expert selector decides on at an update (`AggregatorUpdate`).
extension CFEnsemble {
    /// Expert selection needs the normalized output (every expert a weighted average).
    var selectsExperts: Bool { config.expertSelection && config.scoreOutput == .normalized }

    /// The replay-buffer instances the selector decides on, when a decision is due: every
    /// positive, and an even sample of the negatives (about two per positive, at least
    /// 256): the estimates' noise is the positives', and a decision costs
    /// O(experts x items x log items).
    func expertEvidence() -> AggregatorUpdate.Decision? {
        let p = replay.positives.count, q = replay.negatives.count
        let stride = max(1, q / max(256, 2 * p))
        guard experts.isDue(bufferPositives: p, sampleSize: p + (q + stride - 1) / stride) else { return nil }
        let picked = Array(0..<p) + Swift.stride(from: p, to: p + q, by: stride).map { $0 }
        var averages: [Double] = [], learned: [Double?] = []
        averages.reserveCapacity(picked.count)
        learned.reserveCapacity(picked.count)
        for i in picked {
            let item = i < p ? replay.positives[i] : replay.negatives[i - p]
            averages.append(item.entries.withUnsafeBufferPointer(Self.reportedMean))
            learned.append(item.learned.map(Double.init))
        }
        // Each sampled negative stands for (running negatives / positives) x (positives
        // here / negatives here) negatives of the stream.
        let ratio = classWeights.positives > 0 ? classWeights.negatives / classWeights.positives : 1
        let negativeWeight = ratio * Double(p) / Double(max(1, picked.count - p))
        return AggregatorUpdate.Decision(picked: picked, averages: averages, learned: learned, negativeWeight: negativeWeight)
    }
}
