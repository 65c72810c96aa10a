/// Learns the `Calibration` that turns published scores into probabilities, from the
/// labelled instances: for each, the score and the simple average published when it was
/// scored (prequential: no instance calibrates its own score).
///
/// - The map of the score is Platt scaling with class-balanced weights over the most
///   recent `positives` positives and `negatives` negatives (a class-stratified buffer,
///   like the aggregator's), plus the log-odds of the positive rate estimated from the
///   running label counts (prior shift). The buffer gives the shape, the counts the level.
/// - The map of the simple average (used before the score's map is fitted, and when a
///   fallback published the average) only shifts its log-odds so that its mean over the
///   labelled instances meets the positive rate, shrunk toward the average's own mean by
///   `priorLabels` pseudo-labels while labels are few.
///
/// Fits run with the model updates (`fit()`, a pure job that can run on another thread,
/// then `install`), so that the probability changes when the score's meaning does.
public struct ScoreCalibrator: Sendable, Codable, Equatable {
    public struct Configuration: Sendable, Codable, Equatable {
        /// Recent labelled instances of each class kept for the fit.
        public var positives = 512
        public var negatives = 2048
        /// Labels of each class the buffer needs before the score's map is fitted.
        public var minimumPerClass = 5
        /// Pseudo-labels that shrink the average's shift toward none while labels are few.
        public var priorLabels = 30.0
        /// Strength of the pull of (slope, balanced intercept) toward (1, 0).
        public var ridge = 1.0
        /// Labels after which an old one counts half in the positive rate (0: never decays).
        public var rateHalfLife = 0.0
        /// Labels after which an old one's log loss counts half in the mixture's weights
        /// (0: never decays). About the buffer's span: the maps are judged on the traffic
        /// they are fitted to.
        public var evidenceHalfLife = 2048.0
        /// Labels after which the score's map alone is published (0: from the start). The
        /// mixture is for a cold start, when the score's map is fitted to few labels; past
        /// it the published probability is the score's map (calibrated, not the pool's
        /// under-confident blend, and ranked as the score: the label-free PR-AUC estimate
        /// needs both).
        public var mixUntil = 2048

        public init() {}

        enum CodingKeys: String, CodingKey {
            case positives, negatives, minimumPerClass, priorLabels, ridge, rateHalfLife, evidenceHalfLife, mixUntil
        }

        /// A configuration saved before the forecasts' weights had the default half-life.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            positives = try c.decode(Int.self, forKey: .positives)
            negatives = try c.decode(Int.self, forKey: .negatives)
            minimumPerClass = try c.decode(Int.self, forKey: .minimumPerClass)
            priorLabels = try c.decode(Double.self, forKey: .priorLabels)
            ridge = try c.decode(Double.self, forKey: .ridge)
            rateHalfLife = try c.decode(Double.self, forKey: .rateHalfLife)
            evidenceHalfLife = try c.decodeIfPresent(Double.self, forKey: .evidenceHalfLife) ?? 2048
            mixUntil = try c.decodeIfPresent(Int.self, forKey: .mixUntil) ?? 2048
        }
    }

    public let configuration: Configuration
    /// What probabilities are computed with now.
    public private(set) var calibration = Calibration()
    /// Running label counts by class (the positive rate), decayed by `rateHalfLife`.
    public private(set) var counts: ClassWeights
    /// log-odds of the score and of the average for recent labelled instances, by class.
    private var positive = Ring()
    private var negative = Ring()
    /// How well each forecast has predicted the labels.
    public private(set) var evidence: ForecastEvidence
    /// Labelled instances recorded since the last fit, to be judged by its map (at most
    /// the buffer's size: beyond, a label counts in the fit but not in the evidence).
    private var unjudged = Unjudged()
    /// Labels recorded since the start, undecayed (`counts` decays with `rateHalfLife`).
    public private(set) var recorded = 0
    /// Fits installed so far.
    public private(set) var fits = 0

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        counts = ClassWeights(halfLife: configuration.rateHalfLife)
        evidence = ForecastEvidence(halfLife: configuration.evidenceHalfLife)
        positive = Ring(capacity: max(1, configuration.positives))
        negative = Ring(capacity: max(1, configuration.negatives))
    }

    enum CodingKeys: String, CodingKey { case configuration, calibration, counts, positive, negative, evidence, unjudged, recorded, fits }

    /// A calibrator saved before the mixture starts its evidence afresh.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        configuration = try c.decode(Configuration.self, forKey: .configuration)
        calibration = try c.decode(Calibration.self, forKey: .calibration)
        counts = try c.decode(ClassWeights.self, forKey: .counts)
        positive = try c.decode(Ring.self, forKey: .positive)
        negative = try c.decode(Ring.self, forKey: .negative)
        evidence = try c.decodeIfPresent(ForecastEvidence.self, forKey: .evidence)
            ?? ForecastEvidence(halfLife: configuration.evidenceHalfLife)
        unjudged = try c.decodeIfPresent(Unjudged.self, forKey: .unjudged) ?? Unjudged()
        // Saved before it was kept: the counts, exact unless they decay.
        recorded = try c.decodeIfPresent(Int.self, forKey: .recorded) ?? Int((counts.positives + counts.negatives).rounded())
        fits = try c.decode(Int.self, forKey: .fits)
    }

    /// Labelled instances in the buffer, by class.
    public var buffered: (positives: Int, negatives: Int) { (positive.count, negative.count) }

    /// The estimated positive rate; nil before any label.
    public var positiveRate: Double? {
        let n = counts.positives + counts.negatives
        return n > 0 ? counts.positives / n : nil
    }

    /// Whether the published probability is still the mixture (`Configuration.mixUntil`).
    public var mixing: Bool { configuration.mixUntil > 0 && recorded < configuration.mixUntil }

    /// A labelled instance, with what was published for it when it was scored.
    public mutating func record(score: Double, average: Double, label: Int8) {
        guard score.isFinite, average.isFinite else { return }
        // Judged at the next fit by the map of the last one, which has not learnt from it
        // (only while mixing: past it the evidence weighs nothing).
        if mixing && unjudged.count < configuration.positives + configuration.negatives {
            unjudged.append(Float(score), Float(average), label)
        }
        recorded += 1
        counts.observe(label)
        let x = Float(Calibration.logit(score)), a = Float(Calibration.logit(average))
        if label == 1 { positive.append(x, a) } else { negative.append(x, a) }
    }

    /// The fit over what has been recorded so far, to run anywhere. First the labels
    /// recorded since the last fit are judged by the map in use, the last fit's (the
    /// caller installs each fit before taking the next: the journal's replay meets the
    /// same map at the same labels, however late the live install came).
    public mutating func fit() -> CalibrationFit {
        for k in 0..<unjudged.count {
            let f = calibration.forecasts(score: Double(unjudged.scores[k]), average: Double(unjudged.averages[k]))
            evidence.observe(f, label: unjudged.labels[k])
        }
        unjudged.removeAll()
        return CalibrationFit(positives: positive.ordered(), negatives: negative.ordered(),
                       positiveLabels: counts.positives, negativeLabels: counts.negatives,
                       evidence: evidence, mixing: mixing, previous: calibration, configuration: configuration)
    }

    public mutating func install(_ fitted: Calibration) {
        calibration = fitted
        fits += 1
    }

    /// Labelled instances waiting for the next fit's judgement.
    struct Unjudged: Sendable, Codable, Equatable {
        var scores: [Float] = []
        var averages: [Float] = []
        var labels: [Int8] = []
        var count: Int { labels.count }

        mutating func append(_ score: Float, _ average: Float, _ label: Int8) {
            scores.append(score); averages.append(average); labels.append(label)
        }

        mutating func removeAll() {
            scores.removeAll(keepingCapacity: true)
            averages.removeAll(keepingCapacity: true)
            labels.removeAll(keepingCapacity: true)
        }
    }

    /// A ring of (score log-odds, average log-odds) pairs.
    struct Ring: Sendable, Codable, Equatable {
        var capacity = 1
        var scores: [Float] = []
        var averages: [Float] = []
        var next = 0

        init(capacity: Int = 1) { self.capacity = capacity }

        var count: Int { scores.count }

        mutating func append(_ x: Float, _ a: Float) {
            if scores.count < capacity {
                scores.append(x); averages.append(a)
            } else {
                scores[next] = x; averages[next] = a
            }
            next = (next + 1) % capacity
        }

        /// Oldest first.
        func ordered() -> (scores: [Float], averages: [Float]) {
            guard scores.count == capacity, next > 0 else { return (scores, averages) }
            return (Array(scores[next...] + scores[..<next]), Array(averages[next...] + averages[..<next]))
        }
    }
}
