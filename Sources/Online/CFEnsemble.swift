#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The online CF-Ensemble (docs/algorithm.md): classifiers are users, instances items, their
/// probabilities ratings. Each new instance is folded into latent space and scored by
/// a logistic aggregator over its reconstruction; mini-batches of labelled instances
/// update the classifier factors (exact ALS over a forgotten window) and the aggregator
/// (class-weighted, optionally focal, gradient steps).
///
/// Not thread-safe: one owner drives it.
public final class CFEnsemble {
    public private(set) var config: ModelConfiguration
    public private(set) var registry: ClassifierRegistry
    public private(set) var factors: ClassifierFactors
    public private(set) var aggregator: Aggregator
    public private(set) var classWeights: ClassWeights
    /// Recent labelled instances of each class that the aggregator learns from.
    public private(set) var replay: ReplayBuffer
    /// What the published score follows (learned combination, average, one classifier).
    public private(set) var experts = ExpertSelector()
    /// Increases by one with every mini-batch update.
    public private(set) var version: Int64 = 0
    /// Labelled instances learnt from so far.
    public private(set) var labelled: UInt64 = 0

    private var fold: InstanceFactors
    private var confidences: [Double] = []
    private var rhat: [Double] = []
    private var zeroA: [Double] = []
    private var zeroG: [Double] = []
    private var zeroW: [Double] = []
    private var scoredSinceSolve = 0

    public init(config: ModelConfiguration) {
        self.config = config
        registry = ClassifierRegistry(capacity: config.maxClassifiers)
        factors = ClassifierFactors(dim: config.latentDim)
        aggregator = Aggregator(stepRule: config.stepRule)
        classWeights = ClassWeights(halfLife: config.classCountHalfLife)
        replay = ReplayBuffer(positives: config.replayPositives, negatives: config.replayNegatives)
        fold = InstanceFactors(dim: config.latentDim)
        confidences.reserveCapacity(config.maxClassifiers)
        rhat.reserveCapacity(config.maxClassifiers)
    }

    public var classifierCount: Int { registry.count }

    // MARK: Classifiers

    /// The index of `name`, registering it when new and there is room.
    /// Returns nil when it is new and `model.max_classifiers` are already registered.
    public func classifier(named name: String, register: Bool = true) -> Int? {
        if let u = registry.lookup(name) { return u }
        guard register, registry.hasRoom(for: 1) else { return nil }
        let u = registry.register(name)
        factors.append()
        aggregator.append(learnt: version > 0, scale: config.initialScale)
        experts.append()
        return u
    }

    /// Registers, in order, the classifiers of `names` this model does not know yet, each
    /// with its initial factors and weight, so that a model taken earlier (the last
    /// healthy one, for a rollback or the `last_healthy` fallback) covers every classifier
    /// registered since and can score any instance the live model can. Its own names must
    /// be the first of `names`: a classifier's index never changes.
    public func cover(_ names: [String]) throws(SnapshotError) {
        let known = registry.names
        guard names.count >= known.count, names.prefix(known.count).elementsEqual(known) else {
            throw SnapshotError("the model's classifiers \(known) are not the first of \(names)")
        }
        guard names.count <= config.maxClassifiers else {
            throw SnapshotError("\(names.count) classifiers exceed model.max_classifiers \(config.maxClassifiers)")
        }
        for name in names.dropFirst(known.count) { _ = classifier(named: name) }
    }

    /// Whether `newNames` more classifiers can still be registered.
    public func hasRoom(for newNames: Int) -> Bool { registry.hasRoom(for: newNames) }

    // MARK: Scoring (the hot path)

    /// Folds the instance in, reconstructs every known classifier and scores it.
    public func score(_ entries: [Entry], learnUnlabelled: Bool = true) -> ScoredInstance {
        entries.withUnsafeBufferPointer { score($0, learnUnlabelled: learnUnlabelled) }
    }

    /// Learns from an instance scored elsewhere (by a scorer process) what `score` would
    /// have learnt from it here: the classifier-factor statistics, when unlabelled factor
    /// learning is on.
    public func observe(_ entries: [Entry]) {
        guard config.unlabelledFactors, !entries.isEmpty else { return }
        entries.withUnsafeBufferPointer { e in
            aggregatorRow(e, into: &rhat, alwaysFold: true)
            learnFactors(e)
        }
    }

    /// `learnUnlabelled: false` leaves the model untouched (a scorer process, whose model
    /// is the learner's; the learner `observe`s the instance instead).
    public func score(_ entries: UnsafeBufferPointer<Entry>, learnUnlabelled: Bool = true) -> ScoredInstance {
        precondition(!entries.isEmpty)
        let average = Self.reportedMean(entries)
        // Unlabelled factor learning needs this instance's fold-in even when every
        // classifier reported.
        let learn = learnUnlabelled && config.unlabelledFactors
        aggregatorRow(entries, into: &rhat, alwaysFold: learn)
        if learn { learnFactors(entries) }
        var z = rhat.withUnsafeBufferPointer { aggregator.logit($0.baseAddress!) } + priorShift
        if config.scoreOutput == .normalized {
            let total = aggregator.w.reduce(0, +)
            if !experts.followsLearned {
                z = config.initialScale * (selectedValue(wDotV: z - aggregator.b - priorShift, weightSum: total, average: average) - 0.5)
            } else if total > 1e-9 {
                z = config.initialScale * ((z - aggregator.b - priorShift) / total - 0.5)
            }
        }
        return ScoredInstance(score: Aggregator.sigmoid(z), average: average)
    }

    /// The experts' combination for the instance whose aggregator row is in `rhat`: the
    /// learned weighted average (the simple average while the weights sum to <= 0), the
    /// simple average of what was reported, and each classifier's value.
    private func selectedValue(wDotV: Double, weightSum: Double, average: Double) -> Double {
        let pi = experts.weights
        var value = pi[ExpertSelector.learned] * (weightSum > 1e-9 ? wDotV / weightSum : average)
            + pi[ExpertSelector.average] * average
        rhat.withUnsafeBufferPointer { v in
            for u in 0..<min(v.count, pi.count - ExpertSelector.firstClassifier) {
                value += pi[ExpertSelector.firstClassifier + u] * v[u]
            }
        }
        return value
    }

    /// The learned combination's value for an instance: w . v / sum(w) over its aggregator
    /// row (the simple average of what was reported while the weights sum to <= 0).
    private func learnedValue(_ entries: [Entry]) -> Double {
        entries.withUnsafeBufferPointer { aggregatorRow($0, into: &rhat, alwaysFold: false) }
        let total = aggregator.w.reduce(0, +)
        guard total > 1e-9 else { return entries.withUnsafeBufferPointer(Self.reportedMean) }
        var dot = 0.0
        for u in 0..<rhat.count { dot += aggregator.w[u] * rhat[u] }
        return dot / total
    }

    /// What the aggregator reads for an instance, one value per known classifier, into `v`:
    /// the reconstruction x_u . y, reported values as they are with observed input, missing
    /// ones filled as configured (`model.missing_fill`). Afterwards `fold` and `confidences`
    /// hold the instance's fold-in, unless `alwaysFold` is false and it was not needed
    /// (observed input, and every classifier reported or missing ones filled with the
    /// reported mean).
    private func aggregatorRow(_ entries: UnsafeBufferPointer<Entry>, into v: inout [Double], alwaysFold: Bool) {
        let m = registry.count
        if v.count != m { v = [Double](repeating: 0, count: m) }
        let complete = entries.count == m
        if rowsFromEntriesAlone || (config.aggregatorInput == .observed && complete) {
            // Nothing here reads the reconstruction: fold in only when asked to.
            Self.observedRow(entries, into: &v)
            if alwaysFold { foldIn(entries) }
            return
        }
        foldIn(entries)
        fold.y.withUnsafeBufferPointer { yb in
            for u in 0..<m { v[u] = factors.reconstruct(u, yb.baseAddress!) }
        }
        if config.aggregatorInput == .observed {
            for e in entries { v[Int(e.classifier)] = Double(e.value) }
        }
        if !complete {
            switch config.missingFill {
            case .mean: fillMissingWithMean(&v, entries)
            case .average: fillMissing(&v, entries, with: Self.reportedMean(entries))
            case .reconstruction: break
            }
        }
    }

    /// Sets every classifier not in `entries` to `fill`.
    private func fillMissing(_ v: inout [Double], _ entries: UnsafeBufferPointer<Entry>, with fill: Double) {
        for u in v.indices where !entries.contains(where: { Int($0.classifier) == u }) { v[u] = fill }
    }

    /// Folds the instance into latent space: `fold` and `confidences` hold its fold-in.
    private func foldIn(_ entries: UnsafeBufferPointer<Entry>) {
        confidences.removeAll(keepingCapacity: true)
        for e in entries { confidences.append(Confidence.base(Double(e.value), alpha: config.confidenceAlpha)) }
        confidences.withUnsafeBufferPointer {
            fold.fold(entries, confidences: $0, factors: factors, lambda: config.lambda)
        }
    }

    /// Sets every classifier not in `entries` to the aggregator-weighted mean of the
    /// reported probabilities (plain mean when those weights do not sum to a positive).
    private func fillMissingWithMean(_ v: inout [Double], _ entries: UnsafeBufferPointer<Entry>) {
        var num = 0.0, den = 0.0, plain = 0.0
        aggregator.w.withUnsafeBufferPointer { w in
            for e in entries {
                let u = Int(e.classifier)
                num += w[u] * Double(e.value); den += w[u]; plain += Double(e.value)
            }
        }
        fillMissing(&v, entries, with: den > 1e-12 ? num / den : plain / Double(entries.count))
    }

    /// Added to the published logit: logit(pi) - logit(rho), where pi is the running positive
    /// rate and rho the prior the aggregator was fitted under (1/2 with class weights).
    /// Zero until an update has seen both classes, or when calibration is off.
    public private(set) var priorShift = 0.0

    /// What the aggregator read for the last scored instance: per known classifier, the
    /// reconstruction (or, with `aggregatorInput == .observed`, the reported value).
    public var lastReconstruction: [Double] { rhat }

    // MARK: Learning

    /// Adds the just-scored instance to the classifier-factor statistics and, every
    /// `factorRefreshInterval` instances, forgets and re-solves X.
    private func learnFactors(_ entries: UnsafeBufferPointer<Entry>) {
        fold.y.withUnsafeBufferPointer { yb in
            for (k, e) in entries.enumerated() {
                factors.accumulate(Int(e.classifier), y: yb.baseAddress!, r: Double(e.value), c: confidences[k])
            }
        }
        scoredSinceSolve += 1
        guard scoredSinceSolve >= config.factorRefreshInterval else { return }
        scoredSinceSolve = 0
        let m = registry.count, d = config.latentDim
        if zeroW.count != m {
            zeroA = [Double](repeating: 0, count: m * d * d)
            zeroG = [Double](repeating: 0, count: m * d)
            zeroW = [Double](repeating: 0, count: m)
        }
        factors.forget(config.forgetting)
        factors.solve(lambda: config.lambda, extraA: zeroA, extraG: zeroG, extraWeight: zeroW)
    }

    /// One mini-batch update from labelled instances (docs/algorithm.md). Returns nil for an empty batch.
    @discardableResult
    public func update(_ batch: [LabelledInstance], measureLoss: Bool = false) -> UpdateReport? {
        guard let begun = beginUpdate(batch, measureLoss: measureLoss) else { return nil }
        guard let job = begun.aggregator else { return begun.report }
        return finishUpdate(job.run())
    }

    /// An update begun: its report so far and the aggregator's part still to run.
    public struct BegunUpdate: Sendable {
        public var report: UpdateReport
        /// Nil when the replay buffer does not hold both classes yet (nothing to solve).
        public var aggregator: AggregatorUpdate?
    }

    /// Everything of an update but the aggregator's steps and the expert selector's
    /// decision, which it returns to be run (anywhere) and handed to `finishUpdate`.
    /// Until then the model scores with the weights and version it had; no other update
    /// may begin. The version and the labelled count advance when the weights apply.
    public func beginUpdate(_ batch: [LabelledInstance], measureLoss: Bool = false) -> BegunUpdate? {
        precondition(pendingUpdate == nil, "an update began before the previous one finished")
        var batch = batch.filter { !$0.entries.isEmpty }
        guard !batch.isEmpty else { return nil }
        // 0. The learned expert's out-of-sample score of each, before learning from them.
        if selectsExperts {
            for i in batch.indices { batch[i].learned = Float(learnedValue(batch[i].entries)) }
            experts.observe(labels: batch.count, positives: batch.reduce(0) { $0 + Int($1.label) })
        }
        let d = config.latentDim
        let m = registry.count
        let n = batch.count

        // 1. Running class counts.
        for item in batch { classWeights.observe(item.label) }

        // 2. Label-aware confidences, flattened: instance i's start at offsets[i].
        var offsets = [Int](repeating: 0, count: n + 1)
        for (i, item) in batch.enumerated() { offsets[i + 1] = offsets[i] + item.entries.count }
        var conf = [Double](repeating: 0, count: offsets[n])
        for (i, item) in batch.enumerated() {
            for (k, e) in item.entries.enumerated() {
                conf[offsets[i] + k] = Confidence.labelled(Double(e.value), label: item.label, alpha: config.confidenceAlpha,
                                                           strength: config.labelConfidence)
            }
        }

        // 3. Classifier factors: forget, then ALS sweeps over (history + batch).
        factors.forget(config.forgetting)
        var y = [Double](repeating: 0, count: n * d)
        foldBatch(batch, conf: conf, offsets: offsets, into: &y)
        var extraA = [Double](repeating: 0, count: m * d * d)
        var extraG = [Double](repeating: 0, count: m * d)
        var extraW = [Double](repeating: 0, count: m)
        for _ in 0..<config.innerSweeps {
            contributions(batch, conf: conf, offsets: offsets, y: y, a: &extraA, g: &extraG, w: &extraW)
            factors.solve(lambda: config.lambda, extraA: extraA, extraG: extraG, extraWeight: extraW)
            foldBatch(batch, conf: conf, offsets: offsets, into: &y)
        }
        y.withUnsafeBufferPointer { yb in
            for (i, item) in batch.enumerated() {
                for (k, e) in item.entries.enumerated() {
                    factors.accumulate(Int(e.classifier), y: yb.baseAddress! + i * d, r: Double(e.value), c: conf[offsets[i] + k])
                }
            }
        }

        // 4. Aggregator: class-weighted (focal) gradient steps on the reconstruction of
        //    the replay buffer (recent positives and negatives), toward a prior at the
        //    start; then which expert the published score follows (AggregatorUpdate).
        for item in batch { replay.add(item) }
        var job: AggregatorUpdate?
        if replay.hasBothClasses {
            // Rows that depend on their entries alone are built with the aggregator's
            // steps (off the scoring thread when those run elsewhere).
            let rows: AggregatorUpdate.Rows = rowsFromEntriesAlone
                ? .observed(replay, width: m) : .built(replayRows())
            let (labels, omega) = replayWeights()
            // The prior toward equal weights weakens as evidence grows: its strength is
            // l2 / n_eff, with n_eff the effective size of the balanced sample.
            let p = Double(replay.positives.count), q = Double(replay.negatives.count)
            let strength = config.l2 / (2 * p * q / (p + q))
            if config.calibratePrior && config.classWeights {
                let pi = classWeights.positives / (classWeights.positives + classWeights.negatives)
                priorShift = log(pi / (1 - pi))
            }
            job = AggregatorUpdate(aggregator: aggregator, experts: experts, rows: rows, labels: labels, omega: omega,
                                   strength: strength, config: config, measureLoss: measureLoss,
                                   decision: selectsExperts ? expertEvidence() : nil)
            pendingUpdate = registry.count
        }

        // 5. New model version: when the weights it names apply.
        let report = UpdateReport(version: version + 1, size: n, positives: batch.reduce(0) { $0 + Int($1.label) },
                                  lossBefore: .nan, lossAfter: .nan)
        if job != nil {
            pendingReport = report
        } else {
            version += 1
            labelled += UInt64(n)
        }
        return BegunUpdate(report: report, aggregator: job)
    }
    /// Continues the version sequence above `v`: a learner that takes over a cluster's
    /// leadership publishes versions above every one reserved before it.
    public func continueVersions(above v: Int64) {
        if version <= v { version = v + 1 }
    }

    /// Whether an update began and its aggregator part has not been taken in yet.
    public var updateInProgress: Bool { pendingUpdate != nil }
    /// The classifier count when the pending update began (one registered meanwhile is
    /// added to its result as registration would have added it).
    private var pendingUpdate: Int?
    private var pendingReport: UpdateReport?

    /// Takes in the result of the begun update's aggregator part; returns the update's report.
    @discardableResult
    public func finishUpdate(_ result: AggregatorUpdate.Result) -> UpdateReport {
        guard let begunWith = pendingUpdate, var report = pendingReport else {
            preconditionFailure("finishUpdate without a begun update")
        }
        var learnt = result.aggregator
        var selector = result.experts
        for _ in begunWith..<registry.count {
            learnt.append(learnt: true, scale: config.initialScale)
            selector.append()
        }
        aggregator = learnt
        experts = selector
        // One past the version it began from, or past a jump made meanwhile (continueVersions).
        version = max(report.version, version + 1)
        report.version = version
        labelled += UInt64(report.size)
        pendingUpdate = nil
        pendingReport = nil
        report.lossBefore = result.lossBefore
        report.lossAfter = result.lossAfter
        return report
    }

    /// The replay buffer as an aggregator problem: reconstructions under the current X,
    /// labels, and per-instance weights. With class weights each class carries half the
    /// loss (the inverse-frequency weighting n / (2 n_c)); without, each class carries its
    /// share of the running counts, i.e. the plain unweighted loss of the stream.
    func replayProblem() -> (rows: [Double], labels: [Int8], omega: [Double]) {
        let (labels, omega) = replayWeights()
        return (replayRows(), labels, omega)
    }

    /// The replay buffer's rows under the current model (positives, then negatives).
    private func replayRows() -> [Double] {
        Self.rows(of: replay, width: registry.count) { entries, row in aggregatorRow(entries, into: &row, alwaysFold: false) }
    }

    private func foldBatch(_ batch: [LabelledInstance], conf: [Double], offsets: [Int], into y: inout [Double]) {
        let d = config.latentDim
        for (i, item) in batch.enumerated() {
            item.entries.withUnsafeBufferPointer { eb in
                conf.withUnsafeBufferPointer { all in
                    let cb = UnsafeBufferPointer(rebasing: all[offsets[i]..<offsets[i + 1]])
                    fold.fold(eb, confidences: cb, factors: factors, lambda: config.lambda)
                }
            }
            y.withUnsafeMutableBufferPointer { fold.copy(to: $0.baseAddress! + i * d) }
        }
    }

    private func contributions(_ batch: [LabelledInstance], conf: [Double], offsets: [Int], y: [Double],
                               a: inout [Double], g: inout [Double], w: inout [Double]) {
        let d = config.latentDim
        for i in a.indices { a[i] = 0 }
        for i in g.indices { g[i] = 0 }
        for i in w.indices { w[i] = 0 }
        for (i, item) in batch.enumerated() {
            for (k, e) in item.entries.enumerated() {
                let u = Int(e.classifier), c = conf[offsets[i] + k], r = Double(e.value)
                for p in 0..<d {
                    let cy = c * y[i * d + p]
                    for q in 0..<d { a[u * d * d + p * d + q] += cy * y[i * d + q] }
                    g[u * d + p] += cy * r
                }
                w[u] += c
            }
        }
    }

    // MARK: State

    /// The whole learnt state, for checkpoints. Not while an update is in progress (its
    /// version and buffer are the update's, its weights not yet).
    public func snapshot() -> ModelSnapshot {
        precondition(pendingUpdate == nil, "a snapshot of a model whose update has not finished")
        return ModelSnapshot(latentDim: config.latentDim, classifiers: registry.names, factors: factors,
                      aggregator: aggregator, classWeights: classWeights, replay: replay, priorShift: priorShift,
                      version: version, labelled: labelled, scoredSinceSolve: scoredSinceSolve, experts: experts)
    }

    /// What a scorer needs to score as this model does: the snapshot without the replay
    /// buffer (learner-only state, and most of the bytes).
    public func scoringSnapshot() -> ModelSnapshot {
        var s = snapshot()
        s.replay = ReplayBuffer(positives: replay.capacityPositive, negatives: replay.capacityNegative)
        return s
    }

    /// Restores `s` but continues the version sequence at `version` (a rollback is a model
    /// change, so versions never go back).
    public convenience init(config: ModelConfiguration, restoring s: ModelSnapshot, version: Int64) throws(SnapshotError) {
        try self.init(config: config, restoring: s)
        self.version = version
    }

    /// Restores a checkpoint under the current configuration; the latent dimension and
    /// classifier cap must admit it.
    public convenience init(config: ModelConfiguration, restoring s: ModelSnapshot) throws(SnapshotError) {
        guard s.latentDim == config.latentDim else {
            throw SnapshotError("checkpoint has model.latent_dim \(s.latentDim) but the configuration says \(config.latentDim)")
        }
        guard s.classifiers.count <= config.maxClassifiers else {
            throw SnapshotError("checkpoint has \(s.classifiers.count) classifiers, more than model.max_classifiers \(config.maxClassifiers)")
        }
        let m = s.classifiers.count, d = s.latentDim
        guard s.factors.dim == d, s.factors.x.count == m * d, s.factors.a.count == m * d * d,
              s.factors.g.count == m * d, s.factors.weight.count == m, s.aggregator.w.count == m else {
            throw SnapshotError("checkpoint model arrays do not match its \(m) classifiers and dimension \(d)")
        }
        self.init(config: config)
        for name in s.classifiers { _ = registry.register(name) }
        factors = s.factors
        aggregator = s.aggregator
        classWeights = s.classWeights
        replay = s.replay
        priorShift = s.priorShift
        version = s.version
        labelled = s.labelled
        scoredSinceSolve = s.scoredSinceSolve ?? 0
        if let e = s.experts, e.weights.isEmpty || e.weights.count == m + ExpertSelector.firstClassifier { experts = e }
    }
}
