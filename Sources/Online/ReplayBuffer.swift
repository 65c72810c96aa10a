/// The most recent labelled instances of each class, kept separately so that every
/// aggregator step sees both classes however rare positives are, and so that a stretch
/// of one-class labels (a label-pipeline outage) cannot push every weight down: the
/// seed's collapse mechanism, online.
public struct ReplayBuffer: Sendable, Equatable, Codable {
    public let capacityPositive: Int
    public let capacityNegative: Int
    public private(set) var positives: [LabelledInstance] = []
    public private(set) var negatives: [LabelledInstance] = []
    private var nextPositive = 0
    private var nextNegative = 0

    public init(positives: Int, negatives: Int) {
        capacityPositive = max(1, positives)
        capacityNegative = max(1, negatives)
    }

    public var count: Int { positives.count + negatives.count }
    public var hasBothClasses: Bool { !positives.isEmpty && !negatives.isEmpty }

    public mutating func add(_ item: LabelledInstance) {
        if item.label == 1 {
            if positives.count < capacityPositive { positives.append(item) } else { positives[nextPositive] = item }
            nextPositive = (nextPositive + 1) % capacityPositive
        } else {
            if negatives.count < capacityNegative { negatives.append(item) } else { negatives[nextNegative] = item }
            nextNegative = (nextNegative + 1) % capacityNegative
        }
    }
}
