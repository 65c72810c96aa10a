#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Decides, from prequential evidence, what the published score follows: the learned
/// combination (the reference), the simple average, or one classifier alone.
///
/// Every expert is scored on the recent labelled instances of the replay buffer by a
/// model that had not learnt from them: the learned combination as it stood when their
/// label arrived, the average and each classifier as reported. For each expert and each
/// labelled positive the statistic is the precision at that positive's rank (ties form
/// one threshold, negatives weighted back to the running class ratio), so the mean over
/// positives is the expert's average precision. An expert's evidence against the learned
/// one is its mean paired difference minus `z` standard errors (a single classifier's,
/// the smaller of that and the same against the average); the weights are a
/// softmax of `eta` x positives x evidence. The learned combination keeps the weight
/// until another expert is better by more than noise, so a stream whose classifiers are
/// all alike stays with what learning found, one with a stand-out classifier follows it,
/// and a stream where learning from few labels only fits noise falls back to the average.
///
/// Weights are a convex combination of weighted averages of the classifiers'
/// probabilities, so the published score stays on one scale when they change.
public struct ExpertSelector: Sendable, Equatable, Codable {
    /// [learned, average, classifier 0, ..., classifier m-1]; empty until the first
    /// decision (the learned combination alone).
    public private(set) var weights: [Double] = []
    /// Labelled positives the last decision saw.
    public private(set) var positives = 0
    /// Labels (and positives among them) learnt so far, and as of the last decision.
    private var labelsSeen = 0, positivesSeen = 0
    private var labelsAtDecision = 0, positivesAtDecision = 0

    public init() {}

    /// Counts a mini-batch's labels.
    mutating func observe(labels: Int, positives: Int) {
        labelsSeen += labels
        positivesSeen += positives
    }

    /// Whether enough new evidence arrived since the last decision to decide again:
    /// at least one positive in eight of those in the buffer (`bufferPositives`), and,
    /// once the sample reaches 1,024 instances (`sampleSize`), a quarter of that many new
    /// labels. A decision costs O(experts x sample x log sample); this keeps it to a
    /// few microseconds a label while small streams decide at every new positive.
    func isDue(bufferPositives: Int, sampleSize: Int) -> Bool {
        if weights.isEmpty { return true }
        guard positivesSeen - positivesAtDecision >= max(1, bufferPositives / 8) else { return false }
        return sampleSize < 1024 || labelsSeen - labelsAtDecision >= sampleSize / 4
    }

    public static let learned = 0
    public static let average = 1
    public static let firstClassifier = 2

    /// Whether the published score is the learned combination alone.
    public var followsLearned: Bool { weights.isEmpty || weights[Self.learned] >= 1 - 1e-12 }

    /// A new classifier starts with no weight of its own.
    mutating func append() {
        if !weights.isEmpty { weights.append(0) }
    }

    /// Decides from `scores[e][i]` (expert e's score of instance i, experts in the order of
    /// `weights`) and the instances' labels. `negativeWeight` counts each negative as
    /// that many (the running negative-to-positive ratio over the one in `labels`).
    mutating func decide(scores: [[Double]], labels: [Int8], negativeWeight: Double, z: Double, eta: Double,
                         minPositives: Int = 2) {
        let positiveCount = labels.reduce(0) { $0 + Int($1) }
        guard positiveCount >= max(2, minPositives), positiveCount < labels.count, scores.count >= 2 else { return }
        let precision = scores.map { Self.precisionAtPositives($0, labels, negativeWeight: negativeWeight) }
        let n = Double(positiveCount)
        /// Mean paired difference of e over r minus z standard errors.
        func margin(_ e: Int, over r: Int) -> Double {
            var mean = 0.0
            for k in 0..<positiveCount { mean += precision[e][k] - precision[r][k] }
            mean /= n
            var sq = 0.0
            for k in 0..<positiveCount {
                let d = precision[e][k] - precision[r][k] - mean
                sq += d * d
            }
            let se = (sq / (n - 1)).squareRoot() / n.squareRoot() + 1e-9
            return mean - z * se
        }
        var logits = [Double](repeating: 0, count: scores.count)
        for e in 1..<scores.count {
            // A single classifier must beat the average as well: when the learned
            // combination is poor (noise labels), one of many classifiers beating it by
            // chance is no reason to follow that one.
            let m = e >= Self.firstClassifier ? min(margin(e, over: Self.learned), margin(e, over: Self.average))
                                              : margin(e, over: Self.learned)
            logits[e] = eta * n * m
        }
        let top = logits.max()!
        var total = 0.0
        weights = logits.map { exp($0 - top) }
        for v in weights { total += v }
        for e in weights.indices { weights[e] /= total }
        positives = positiveCount
        labelsAtDecision = labelsSeen
        positivesAtDecision = positivesSeen
    }

    /// For each positive of `labels`, in order, the precision at the threshold of its
    /// score: (positives scoring at least as high) / (those + negativeWeight x negatives
    /// scoring at least as high). The mean is the average precision as scikit-learn
    /// computes it, with each negative counted `negativeWeight` times.
    public static func precisionAtPositives(_ scores: [Double], _ labels: [Int8], negativeWeight: Double) -> [Double] {
        // (score, index) pairs sorted by score, highest first: one allocation, no
        // indirection in the comparisons.
        var order = [(score: Double, index: Int32)]()
        order.reserveCapacity(scores.count)
        for i in scores.indices { order.append((scores[i], Int32(i))) }
        order.sort { $0.score > $1.score }
        var atRank = [Double](repeating: 0, count: scores.count)
        var tp = 0.0, fp = 0.0
        var start = 0
        while start < order.count {
            var end = start
            while end < order.count && order[end].score == order[start].score {
                if labels[Int(order[end].index)] == 1 { tp += 1 } else { fp += negativeWeight }
                end += 1
            }
            let precision = tp > 0 ? tp / (tp + fp) : 0
            for k in start..<end { atRank[Int(order[k].index)] = precision }
            start = end
        }
        var out: [Double] = []
        out.reserveCapacity(scores.count)
        for i in labels.indices where labels[i] == 1 { out.append(atRank[i]) }
        return out
    }
}
