import Benchmark
import Online
import Transport

/// The scoring path's stages one by one (decode, fold-in + score, encode), the three
/// together as the engine runs them, and one batch update of 256 labels. Malloc counts
/// are per iteration: the scoring path must show 0 in steady state.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 1000,
        scalingFactor: .kilo,
        maxDuration: .seconds(2)
    )

    let body = Array(#"{"id":"txn-0000012345","ts":1767225600.25,"preds":{"gbm":0.8123,"rf":0.7791,"lr":0.6632,"svm":0.7001,"knn":0.6123,"nb":0.5512,"mlp":0.8421,"ada":0.7312,"et":0.7788,"xgb":0.8011}}"#.utf8)
    let names = ["gbm", "rf", "lr", "svm", "knn", "nb", "mlp", "ada", "et", "xgb"]

    func trainedModel(_ config: ModelConfiguration = ModelConfiguration()) -> CFEnsemble {
        let model = CFEnsemble(config: config)
        for n in names { _ = model.classifier(named: n) }
        var batch: [LabelledInstance] = []
        var state: UInt64 = 7
        for i in 0..<2048 {
            let y: Int8 = i % 10 == 0 ? 1 : 0
            let entries = (0..<10).map { u -> Entry in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                let noise = Double(state >> 11) / Double(1 << 53) - 0.5
                return Entry(classifier: u, value: min(0.999, max(0.001, (y == 1 ? 0.65 : 0.35) + noise * 0.5)))
            }
            batch.append(LabelledInstance(entries: entries, label: y))
            if batch.count == 256 { _ = model.update(batch); batch.removeAll() }
        }
        return model
    }

    Benchmark("decode pred (10 classifiers)") { benchmark in
        var decoder = MessageDecoder(limits: InputLimits())
        var message = InputMessage()
        benchmark.startMeasurement()   // setup above is not measured
        for _ in benchmark.scaledIterations {
            body.withUnsafeBytes { try? decoder.decode(topic: .pred, body: $0, into: &message) }
            blackHole(message.preds.count)
        }
    }

    Benchmark("fold-in + score") { benchmark in
        let model = trainedModel()
        let entries = (0..<10).map { Entry(classifier: $0, value: 0.3 + 0.05 * Double($0)) }
        benchmark.startMeasurement()   // setup above is not measured
        for _ in benchmark.scaledIterations {
            blackHole(entries.withUnsafeBufferPointer { model.score($0).score })
        }
    }

    Benchmark("fold-in + score (3 of 10 missing)") { benchmark in
        let model = trainedModel()
        let entries = (0..<10).filter { $0 % 3 != 1 }.map { Entry(classifier: $0, value: 0.3 + 0.05 * Double($0)) }
        benchmark.startMeasurement()   // setup above is not measured
        for _ in benchmark.scaledIterations {
            blackHole(entries.withUnsafeBufferPointer { model.score($0).score })
        }
    }

    Benchmark("map names (ClassifierResolver)") { benchmark in
        let model = trainedModel()
        var decoder = MessageDecoder(limits: InputLimits())
        var message = InputMessage()
        body.withUnsafeBytes { try? decoder.decode(topic: .pred, body: $0, into: &message) }
        var entries: [Entry] = []
        entries.reserveCapacity(64)
        var resolver = ClassifierResolver()
        var now = 0.0
        benchmark.startMeasurement()   // setup above is not measured
        for _ in benchmark.scaledIterations {
            now += 1e-6
            _ = resolver.resolve(message.preds, name: { $0.name }, value: { $0.value }, model: model, into: &entries,
                                 now: now) { _ in }
            blackHole(entries.count)
        }
    }

    Benchmark("encode score") { benchmark in
        var writer = JSONWriter(capacity: 512)
        let id = "txn-0000012345"
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            ScoreMessage(id: id, score: 0.8734512, probability: 0.0123456, ts: 1767225600.25, modelVersion: Int64(i), nPreds: 10, fallback: false)
                .encode(into: &writer)
            blackHole(writer.bytes.count)
        }
    }

    Benchmark("decode + map names + score + encode") { benchmark in
        var path = ScoringPath(model: trainedModel())
        // The same 7,000 messages as the drift variant's setup, so that both measure the
        // model in the same state (unlabelled factor learning moves it).
        for _ in 0..<7000 { _ = path.decodeAndScore(body) }
        benchmark.startMeasurement()   // setup above is not measured
        for _ in benchmark.scaledIterations {
            let scored = path.decodeAndScore(body)
            blackHole(path.encode(scored))
        }
    }

    Benchmark("decode + map names + score + drift + encode") { benchmark in
        var path = ScoringPath(model: trainedModel())
        var drift = DriftChecks()
        // The warm-up records the probabilities the measurement will (a different rate
        // would engage score_drift and measure a firing alert's checks instead).
        for _ in 0..<7000 { drift.record(path, path.decodeAndScore(body)) }
        benchmark.startMeasurement()   // setup above (windows filled, first checks run) is not measured
        for _ in benchmark.scaledIterations {
            let scored = path.decodeAndScore(body)
            drift.record(path, scored)
            blackHole(path.encode(scored))
        }
    }

    Benchmark("decode + map names + score + drift (firing) + encode") { benchmark in
        var path = ScoringPath(model: trainedModel())
        var drift = DriftChecks()
        // As above, with score_drift firing: the warm-up records a predicted rate an eighth
        // of the measured one, then 2,000 instances at the measured rate (the alert fires
        // and stays engaged), so every check evaluates the conditions (hysteresis) instead
        // of skipping them. Alerts' texts are built on a transition only.
        for i in 0..<9000 {
            let scored = path.decodeAndScore(body)
            drift.record(path, scored, recorded: i < 7000 ? scored.probability / 8 : scored.probability)
        }
        precondition(drift.monitor.driftEngaged, "score_drift engaged")
        benchmark.startMeasurement()   // setup above is not measured
        for _ in benchmark.scaledIterations {
            let scored = path.decodeAndScore(body)
            drift.record(path, scored)
            blackHole(path.encode(scored))
        }
        precondition(drift.monitor.driftEngaged, "score_drift engaged")
    }

    Benchmark("decode + map names + score + explain + encode") { benchmark in
        var path = ScoringPath(model: trainedModel())
        benchmark.startMeasurement()   // setup above is not measured
        for _ in benchmark.scaledIterations {
            let scored = path.decodeAndScore(body)
            // output.explain: true (allocates: the explanation's arrays).
            let e = path.model.explain(path.entries)
            blackHole(path.encode(scored, explain: ScoreExplanation(expert: e.expert, names: e.names, shares: e.shares, filled: e.filled)))
        }
    }

    Benchmark("pending insert + take (100k pending)", configuration: .init(warmupIterations: 1, scalingFactor: .mega, maxDuration: .seconds(5))) { benchmark in
        // Steady state: each iteration stores a new instance and takes one stored 100,000
        // earlier (its label arriving), as the engine does for every pred and label.
        var store = PendingStore(capacity: 1 << 20, ttl: 1e9)
        let entries = (0..<10).map { Entry(classifier: $0, value: 0.3 + 0.05 * Double($0)) }
        let ids = (0..<200_000).map { "txn-\($0)" }
        for i in 0..<100_000 { store.insert(id: ids[i], PendingInstance(entries: entries, arrival: 0, score: 0.5, average: 0.5)) }
        var next = 100_000
        benchmark.startMeasurement()   // setup above is not measured
        for _ in benchmark.scaledIterations {
            let slot = next % 200_000
            store.insert(id: ids[slot], PendingInstance(entries: entries, arrival: 0, score: 0.5, average: 0.5))
            blackHole(store.take(ids[(next - 100_000) % 200_000]))
            next += 1
        }
        benchmark.stopMeasurement()   // freeing the store is not measured either
    }

    // One batch update; the same with the aggregator loss measured before and after (what
    // the daemon does only at log level debug); and without expert selection.
    for (measureLoss, experts) in [(false, true), (true, true), (false, false)] {
        let name = measureLoss ? "batch update (256 labels, loss measured)"
            : experts ? "batch update (256 labels)" : "batch update (256 labels, expert selection off)"
        Benchmark(name, configuration: .init(scalingFactor: .one, maxDuration: .seconds(3))) { benchmark in
            var config = ModelConfiguration()
            config.expertSelection = experts
            let model = trainedModel(config)
            var batch: [LabelledInstance] = []
            for i in 0..<256 {
                let y: Int8 = i % 10 == 0 ? 1 : 0
                batch.append(LabelledInstance(entries: (0..<10).map { Entry(classifier: $0, value: y == 1 ? 0.6 + 0.01 * Double($0) : 0.4 - 0.01 * Double($0)) }, label: y))
            }
            benchmark.startMeasurement()   // setup above is not measured
            for _ in benchmark.scaledIterations {
                blackHole(model.update(batch, measureLoss: measureLoss))
            }
        }
    }
}

/// The label-free drift windows and their check every 250 instances, as the daemon runs
/// them beside the scoring path.
struct DriftChecks {
    var watch = DriftWatch(windows: DriftWindows())
    var monitor = HealthMonitor(config: HealthConfiguration())

    /// Records one scored instance (with `recorded` as its probability, if given) and
    /// runs the drift check when it is due.
    mutating func record(_ path: ScoringPath, _ scored: (score: Double, probability: Double), recorded: Double? = nil) {
        if watch.record(path.entries, score: scored.score, probability: recorded ?? scored.probability) {
            blackHole(monitor.checkDrift(watch, names: path.model.registry.names, now: path.now, wall: 0).count)
        }
    }
}

/// The daemon's scoring path as the scoring benchmarks run it: decode a `pred`, map its
/// names (the daemon's own resolver, with its position cache and last-seen times),
/// score, calibrate, encode the `score`. Built once per benchmark, outside the measurement.
struct ScoringPath {
    let model: CFEnsemble
    var decoder = MessageDecoder(limits: InputLimits())
    var message = InputMessage()
    var writer = JSONWriter(capacity: 512)
    var entries: [Entry] = []
    var resolver = ClassifierResolver()
    var now = 0.0
    let calibration = Calibration(fitted: true, slope: 0.9, intercept: -3.2, averageIntercept: -2.1)

    init(model: CFEnsemble) {
        self.model = model
        entries.reserveCapacity(64)
    }

    mutating func decodeAndScore(_ body: [UInt8]) -> (score: Double, probability: Double) {
        body.withUnsafeBytes { try? decoder.decode(topic: .pred, body: $0, into: &message) }
        now += 1e-6
        _ = resolver.resolve(message.preds, name: { $0.name }, value: { $0.value }, model: model, into: &entries,
                             now: now) { _ in }
        let scored = entries.withUnsafeBufferPointer { model.score($0) }
        return (scored.score, calibration.probability(score: scored.score, average: scored.average))
    }

    /// Encodes the `score` message; returns its length.
    mutating func encode(_ scored: (score: Double, probability: Double), explain: ScoreExplanation? = nil) -> Int {
        ScoreMessage(id: message.id, score: scored.score, probability: scored.probability, ts: message.ts ?? 0,
                     modelVersion: model.version, nPreds: entries.count, fallback: false, explain: explain).encode(into: &writer)
        return writer.bytes.count
    }
}
