/// A labelled instance for learning: its observed entries and its true class.
public struct LabelledInstance: Sendable, Equatable {
    public var entries: [Entry]
    public var label: Int8

    public init(entries: [Entry], label: Int8) {
        self.entries = entries
        self.label = label
    }
}

/// What scoring one instance produced.
public struct ScoredInstance: Sendable, Equatable {
    /// sigmoid(w . rhat + b): the ensembled probability of the positive class.
    public var score: Double
    /// The simple average of the reported probabilities (baseline and fallback).
    public var average: Double
}

/// What one mini-batch update did.
public struct UpdateReport: Sendable, Equatable {
    public var version: Int64
    public var size: Int
    public var positives: Int
    /// Weighted aggregator loss on the batch before and after the update.
    public var lossBefore: Double
    public var lossAfter: Double
}

/// The online CF-Ensemble (ALGORITHM.md): classifiers are users, instances items, their
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
    /// Increases by one with every mini-batch update.
    public private(set) var version: Int64 = 0
    /// Labelled instances learnt from so far.
    public private(set) var labelled: UInt64 = 0

    private var fold: InstanceFactors
    private var confidences: [Double] = []
    private var rhat: [Double] = []
    private var entryScratch: [Entry] = []

    public init(config: ModelConfiguration) {
        self.config = config
        registry = ClassifierRegistry(capacity: config.maxClassifiers)
        factors = ClassifierFactors(dim: config.latentDim)
        aggregator = Aggregator(stepRule: config.stepRule)
        classWeights = ClassWeights(halfLife: config.classCountHalfLife)
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
        aggregator.append(learnt: version > 0)
        return u
    }

    /// Whether `newNames` more classifiers can still be registered.
    public func hasRoom(for newNames: Int) -> Bool { registry.hasRoom(for: newNames) }

    // MARK: Scoring (the hot path)

    /// Folds the instance in, reconstructs every known classifier and scores it.
    public func score(_ entries: [Entry]) -> ScoredInstance {
        entries.withUnsafeBufferPointer { score($0) }
    }

    public func score(_ entries: UnsafeBufferPointer<Entry>) -> ScoredInstance {
        precondition(!entries.isEmpty)
        confidences.removeAll(keepingCapacity: true)
        var sum = 0.0
        for e in entries {
            let r = Double(e.value)
            sum += r
            confidences.append(Confidence.base(r, alpha: config.confidenceAlpha))
        }
        confidences.withUnsafeBufferPointer {
            fold.fold(entries, confidences: $0, factors: factors, lambda: config.lambda)
        }
        let m = registry.count
        rhat.removeAll(keepingCapacity: true)
        let z: Double = fold.y.withUnsafeBufferPointer { yb in
            for u in 0..<m { rhat.append(factors.reconstruct(u, yb.baseAddress!)) }
            return rhat.withUnsafeBufferPointer { aggregator.logit($0.baseAddress!) }
        }
        return ScoredInstance(score: Aggregator.sigmoid(z), average: sum / Double(entries.count))
    }

    /// The reconstruction rhat of every known classifier for the last scored instance.
    public var lastReconstruction: [Double] { rhat }

    // MARK: Learning

    /// One mini-batch update from labelled instances (ALGORITHM.md, "Learning from
    /// delayed labels"). Returns nil for an empty batch.
    @discardableResult
    public func update(_ batch: [LabelledInstance]) -> UpdateReport? {
        let batch = batch.filter { !$0.entries.isEmpty }
        guard !batch.isEmpty else { return nil }
        let d = config.latentDim
        let m = registry.count
        let n = batch.count

        // 1. Running class counts.
        for item in batch { classWeights.observe(item.label) }

        // 2. Label-aware confidences, flattened per instance.
        var conf: [[Double]] = batch.map { item in
            item.entries.map {
                Confidence.labelled(Double($0.value), label: item.label, alpha: config.confidenceAlpha,
                                    strength: config.labelConfidence)
            }
        }

        // 3. Classifier factors: forget, then ALS sweeps over (history + batch).
        factors.forget(config.forgetting)
        var y = [Double](repeating: 0, count: n * d)
        foldBatch(batch, conf: &conf, into: &y)
        var extraA = [Double](repeating: 0, count: m * d * d)
        var extraG = [Double](repeating: 0, count: m * d)
        var extraW = [Double](repeating: 0, count: m)
        for _ in 0..<config.innerSweeps {
            contributions(batch, conf: conf, y: y, a: &extraA, g: &extraG, w: &extraW)
            factors.solve(lambda: config.lambda, extraA: extraA, extraG: extraG, extraWeight: extraW)
            foldBatch(batch, conf: &conf, into: &y)
        }
        y.withUnsafeBufferPointer { yb in
            for (i, item) in batch.enumerated() {
                for (k, e) in item.entries.enumerated() {
                    factors.accumulate(Int(e.classifier), y: yb.baseAddress! + i * d, r: Double(e.value), c: conf[i][k])
                }
            }
        }

        // 4. Aggregator: class-weighted (focal) gradient steps on the reconstruction.
        var rows = [Double](repeating: 0, count: n * m)
        y.withUnsafeBufferPointer { yb in
            for i in 0..<n {
                for u in 0..<m { rows[i * m + u] = factors.reconstruct(u, yb.baseAddress! + i * d) }
            }
        }
        let labels = batch.map(\.label)
        let omega = labels.map { config.classWeights ? classWeights.weight(for: $0) : 1 }
        let before = aggregator.objective(rhat: rows, labels: labels, omega: omega, gamma: config.focalGamma, l2: config.l2)
        var grad = [Double](repeating: 0, count: m + 1)
        for _ in 0..<config.aggregatorSteps {
            aggregator.gradient(rhat: rows, labels: labels, omega: omega, gamma: config.focalGamma, l2: config.l2, into: &grad)
            aggregator.step(grad, learningRate: config.learningRate)
        }
        let after = aggregator.objective(rhat: rows, labels: labels, omega: omega, gamma: config.focalGamma, l2: config.l2)

        // 5. New model version.
        version += 1
        labelled += UInt64(n)
        return UpdateReport(version: version, size: n, positives: labels.reduce(0) { $0 + Int($1) },
                            lossBefore: before, lossAfter: after)
    }

    private func foldBatch(_ batch: [LabelledInstance], conf: inout [[Double]], into y: inout [Double]) {
        let d = config.latentDim
        for (i, item) in batch.enumerated() {
            item.entries.withUnsafeBufferPointer { eb in
                conf[i].withUnsafeBufferPointer { cb in
                    fold.fold(eb, confidences: cb, factors: factors, lambda: config.lambda)
                }
            }
            y.withUnsafeMutableBufferPointer { fold.copy(to: $0.baseAddress! + i * d) }
        }
    }

    private func contributions(_ batch: [LabelledInstance], conf: [[Double]], y: [Double],
                               a: inout [Double], g: inout [Double], w: inout [Double]) {
        let d = config.latentDim
        for i in a.indices { a[i] = 0 }
        for i in g.indices { g[i] = 0 }
        for i in w.indices { w[i] = 0 }
        for (i, item) in batch.enumerated() {
            for (k, e) in item.entries.enumerated() {
                let u = Int(e.classifier), c = conf[i][k], r = Double(e.value)
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

    /// The whole learnt state, for checkpoints.
    public func snapshot() -> ModelSnapshot {
        ModelSnapshot(latentDim: config.latentDim, classifiers: registry.names, factors: factors,
                      aggregator: aggregator, classWeights: classWeights, version: version, labelled: labelled)
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
        version = s.version
        labelled = s.labelled
    }
}

/// A checkpoint that cannot be restored, and why.
public struct SnapshotError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}
