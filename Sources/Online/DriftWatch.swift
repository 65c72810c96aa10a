/// Window sizes of the label-free drift statistics (docs/configuration.md, monitoring.*).
public struct DriftWindows: Codable, Sendable, Equatable {
    /// Values in each recent window.
    public var recent = 1000
    /// Values in each reference window.
    public var reference = 5000
    /// Scored instances between two drift checks.
    public var checkEvery = 250
    /// Instances in each window of the label-free quality estimate.
    public var estimate = 5000

    public init() {}

    public init(recent: Int, reference: Int, checkEvery: Int, estimate: Int = 5000) {
        self.recent = recent
        self.reference = reference
        self.checkEvery = checkEvery
        self.estimate = estimate
    }
}

/// What the drift conditions look at in one check.
public struct DriftObservation: Sendable {
    public struct Stream: Sendable {
        public var psi: Double
        public var noise: Double
        public var recent: Int
        public var reference: Int

        public init(psi: Double, noise: Double, recent: Int, reference: Int) {
            self.psi = psi
            self.noise = noise
            self.recent = recent
            self.reference = reference
        }
    }

    /// Each classifier's output drift (nil until its windows are full), by name.
    public var classifiers: [(name: String, drift: Stream?)]
    /// The published score's drift against its trailing reference.
    public var score: Stream?
    /// The predicted positive rate now and just before, with the standardised difference.
    public var rate: (recent: Double, reference: Double, z: Double)?
    public var now: Double
    public var wall: Double

    public init(classifiers: [(name: String, drift: Stream?)], score: Stream?, rate: (recent: Double, reference: Double, z: Double)?,
                now: Double = 0, wall: Double = 0) {
        self.classifiers = classifiers
        self.score = score
        self.rate = rate
        self.now = now
        self.wall = wall
    }
}

/// The label-free watch over what flows through the daemon: each classifier's outputs
/// against a pinned reference, the published score against a trailing one, and the
/// predicted positive rate (docs/alerts.md: classifier_drift, score_drift). Fed once
/// per scored instance in O(classifiers reported), allocating nothing; the
/// statistics are computed at checks only.
public struct DriftWatch: Codable, Sendable, Equatable {
    public let windows: DriftWindows
    /// By classifier index (the registry's order); grows as classifiers report.
    public private(set) var classifiers: ClassifierDriftTable
    public private(set) var score: OutputDrift
    /// The predicted positive rate's windows; its ring also keeps the last
    /// `windows.estimate` calibrated probabilities and as many before them (the quality
    /// estimate's: `estimateWindows()`).
    public private(set) var rate: PredictedRate
    /// Scored instances since the last check.
    private var sinceCheck = 0

    public init(windows: DriftWindows) {
        self.windows = windows
        classifiers = ClassifierDriftTable(recentSize: windows.recent, referenceSize: windows.reference)
        score = OutputDrift(recentSize: windows.recent, referenceSize: windows.reference)
        rate = PredictedRate(recentSize: windows.recent, referenceSize: windows.reference, capacity: 2 * windows.estimate)
    }

    enum CodingKeys: String, CodingKey { case windows, classifiers, score, rate, sinceCheck }

    /// A watch saved with per-classifier windows (an earlier layout) keeps its score and
    /// rate windows; the classifiers' references fill afresh.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        windows = try c.decode(DriftWindows.self, forKey: .windows)
        classifiers = (try? c.decode(ClassifierDriftTable.self, forKey: .classifiers))
            ?? ClassifierDriftTable(recentSize: windows.recent, referenceSize: windows.reference)
        score = try c.decode(OutputDrift.self, forKey: .score)
        rate = try c.decode(PredictedRate.self, forKey: .rate)
        sinceCheck = try c.decode(Int.self, forKey: .sinceCheck)
    }

    /// The calibrated probabilities of the last `windows.estimate` scored instances and of
    /// as many before them, oldest first (each empty until filled).
    public func estimateWindows() -> (recent: [Float], reference: [Float]) {
        rate.windows(recent: windows.estimate, reference: windows.estimate)
    }

    /// Records one scored instance: its entries (the classifiers that reported), what was
    /// published and its probability. Returns true when a drift check is due.
    @discardableResult
    public mutating func record(_ entries: [Entry], score published: Double, probability: Double) -> Bool {
        for e in entries where Int(e.classifier) >= classifiers.count { classifiers.grow(to: Int(e.classifier) + 1) }
        let lookup = ProbabilityBins.lookup
        entries.withUnsafeBufferPointer { classifiers.record($0, bins: lookup) }
        // The score's bin from its Float value (the precision classifiers report in).
        score.record(bin: lookup.index(of: Float(published)))
        rate.record(probability)
        sinceCheck += 1
        if sinceCheck >= windows.checkEvery {
            sinceCheck = 0
            return true
        }
        return false
    }

    /// Every classifier's outputs from now on make its new reference (`pin_reference`).
    public mutating func pin() {
        classifiers.pin()
    }

    /// The statistics for a check; `names` the registry's, in index order.
    public func observation(names: [String], now: Double = 0, wall: Double = 0) -> DriftObservation {
        func stream(_ s: (psi: Double, noise: Double, recent: Int, reference: Int)?) -> DriftObservation.Stream? {
            s.map { .init(psi: $0.psi, noise: $0.noise, recent: $0.recent, reference: $0.reference) }
        }
        let perClassifier = names.enumerated().map { u, name in (name: name, drift: stream(classifiers.statistic(u))) }
        return DriftObservation(classifiers: perClassifier, score: stream(score.statistic()), rate: rate.statistic(),
                                now: now, wall: wall)
    }
}
