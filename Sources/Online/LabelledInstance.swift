/// A labelled instance for learning: its observed entries and its true class.
public struct LabelledInstance: Sendable, Equatable, Codable {
    public var entries: [Entry]
    public var label: Int8
    /// What the learned combination (w . v / sum(w)) said of it when its label arrived,
    /// before learning from it: the learned expert's out-of-sample score for the
    /// `ExpertSelector`. Set by `CFEnsemble.update`; nil before.
    public var learned: Float?

    public init(entries: [Entry], label: Int8) {
        self.entries = entries
        self.label = label
    }
}
