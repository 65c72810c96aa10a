import Foundation
import Logging
import Online
import Transport
import Wire
@testable import Daemon

/// What the core published, in order.
struct RecordingSink: OutputSink {
    var scores: [ScoreMessage] = []
    var events: [(topic: OutputTopic, body: [UInt8])] = []
    /// The `score_batch` messages: the scores each held, in order.
    var scoreBatches: [[ScoreMessage]] = []
    private var gathering: [ScoreMessage]?

    mutating func score(_ message: ScoreMessage) {
        scores.append(message)
        gathering?.append(message)
    }
    mutating func publish(_ topic: OutputTopic, _ body: [UInt8]) { events.append((topic, body)) }
    mutating func beginBatch() { gathering = [] }
    mutating func endBatch() {
        if let g = gathering, !g.isEmpty { scoreBatches.append(g) }
        gathering = nil
    }

    var alerts: [AlertBody] {
        events.filter { $0.topic == .alert }.compactMap { try? WireJSON.decode(AlertBody.self, from: $0.body) }
    }
    var errors: [ErrorBody] {
        events.filter { $0.topic == .error }.compactMap { try? WireJSON.decode(ErrorBody.self, from: $0.body) }
    }
    var healths: [HealthBody] {
        events.filter { $0.topic == .health }.compactMap { try? WireJSON.decode(HealthBody.self, from: $0.body) }
    }
}

/// A daemon core on a manual clock, with no sockets and no threads: a test feeds it
/// messages, moves time forward and reads what it published.
final class CoreHarness {
    let clock: ManualClock
    let core: DaemonCore<RecordingSink>
    var config: DaemonConfiguration
    /// With `durable`: what was restored from the state directory at start.
    private(set) var restored: StateRestore.Result?
    private static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// `durable`: the core restores from and journals into `config.stateDir` (set it)
    /// through the daemon's own `StateRestore`, as the daemon does at start.
    init(role: Role = .all, clock: ManualClock = ManualClock(), durable: Bool = false,
         _ configure: (inout DaemonConfiguration) -> Void = { _ in }) {
        var config = DaemonConfiguration()
        config.metricsListen = "off"
        configure(&config)
        self.config = config
        self.clock = clock
        var state = RestoredState(model: CFEnsemble(config: config.model),
                                  pending: PendingStore(capacity: config.maxPending, ttl: config.pendingTTLSeconds),
                                  quality: RollingQuality(window: config.healthWindow),
                                  calibrator: ScoreCalibrator(configuration: config.calibration))
        var journal: Journal?
        if durable {
            let result = try! StateRestore(config: config, logger: Self.quiet, clock: clock).restore()
            state = result.state
            journal = result.journal
            restored = result
        }
        core = DaemonCore(config: config, role: role, state: state, journal: journal, clock: clock,
                          logger: Self.quiet, metrics: DaemonMetrics(), sink: RecordingSink())
    }

    /// A clean stop as the daemon makes it (joins scored, batch learnt, a final
    /// checkpoint starting a new journal file), then a start on the same state directory
    /// `downtime` seconds later.
    func restartCleanly(after downtime: Double) throws -> CoreHarness {
        core.finish()
        let coordinator = CheckpointCoordinator(store: restored!.store, writer: nil, journal: core.journal, config: config,
                                                journalOfCheckpoint: restored!.journalOfCheckpoint, clock: clock,
                                                logger: Self.quiet, metrics: DaemonMetrics())
        try coordinator.write(core: core)
        core.journal?.close()
        clock.advance(by: downtime)
        return CoreHarness(clock: clock, durable: true) { $0 = self.config }
    }

    /// kill -9: what the journal had flushed survives (the daemon flushes every
    /// `state.journal_flush_ms`), the rest is lost; a start `downtime` seconds later.
    func crash(after downtime: Double) -> CoreHarness {
        core.flushJournal()
        core.journal?.close()
        clock.advance(by: downtime)
        return CoreHarness(clock: clock, durable: true) { $0 = self.config }
    }

    var sink: RecordingSink { core.sink }

    func pred(_ id: String, _ preds: [String: Double], label: Int8? = nil) {
        core.received()
        core.pred(InputMessage(topic: .pred, id: id, preds: preds.sorted { $0.key < $1.key }.map { Reading(name: $0.key, value: $0.value) },
                               label: label))
    }

    func label(_ id: String, _ label: Int8) {
        core.received()
        _ = core.label(InputMessage(topic: .label, id: id, label: label))
    }

    /// A `pred_batch` or `label_batch` message, read as the daemon's input reader does.
    func batch(_ topic: BatchTopic, _ body: String) {
        core.received()
        var reader = BatchReader(maxEntries: config.maxBatchEntries, maxBytes: config.maxBatchBytes)
        var decoder = MessageDecoder(limits: InputLimits(maxIdBytes: 256, maxPreds: config.model.maxClassifiers, maxDepth: 16))
        var message = InputMessage()
        let bytes = Array(body.utf8)
        bytes.withUnsafeBytes { raw in
            reader.read(topic, body: raw, length: bytes.count, truncated: false, decoder: &decoder, message: &message, core: core)
        }
    }

    /// Moves the clock and runs what is due (as the event loop does after each poll).
    func advance(_ seconds: Double, step: Double = 0.125) {
        let end = clock.now + seconds
        while clock.now + step <= end + 1e-9 {
            clock.advance(by: step)
            core.tick(now: clock.now)
        }
        if end > clock.now {
            clock.advance(by: end - clock.now)
            core.tick(now: clock.now)
        }
    }
}

/// A new directory under the system's temporary directory (the caller removes it).
func makeTemporaryDirectory(prefix: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}
