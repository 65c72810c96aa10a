import Foundation
import Logging
import Online
import Transport

/// `cfensembled --cost-floor N`: the daemon's whole per-instance path without sockets,
/// on this thread: the bytes a receive would hold are copied into the input reader's
/// buffer, then read as the daemon reads them (decode, resolve, score, pending insert,
/// journal append, encode of the `score` or `score_batch`; nothing is sent). With the
/// same configuration as a running daemon, the rate it prints is what the sockets can at
/// most approach: end-to-end instances/s ÷ this rate says what they still cost.
///
/// Runs in a temporary state directory (removed afterwards), never the configured one.
struct CostFloor {
    var config: DaemonConfiguration
    let logger: Logger

    struct Result: Codable {
        var name = "floor"
        var batch: Int
        var classifiers: Int
        /// Labels sent per instance (for instances 1,000 earlier).
        var labels: Double
        var labels_learnt: UInt64
        var model_updates: UInt64
        var instances: Int
        var seconds: Double
        var instances_per_s: Double
        var ns_per_instance: Double
    }

    /// `count` instances (after 20,000 not timed), `batch` to a message (1: `pred` messages),
    /// and `labels` labels per instance for instances 1,000 earlier (model updates run on
    /// this thread: the one-core figure).
    func run(count: Int, batch: Int, classifiers: Int, labels: Double = 0) throws -> Result {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfensembled-floor-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let warm = 20_000
        var config = self.config
        config.stateDir = dir
        config.role = .all
        config.maxPending = max(config.maxPending, count + warm)
        config.maxBatchEntries = max(config.maxBatchEntries, batch)
        config.maxBatchBytes = max(config.maxBatchBytes, batch * (32 + 20 * classifiers) + 64)
        let clock = SystemClock()
        let restored = try StateRestore(config: config, logger: logger, clock: clock).restore()
        restored.journal?.writer.start()
        defer { restored.journal?.close() }
        let core = DaemonCore(config: config, role: .all, state: restored.state, journal: restored.journal, clock: clock,
                              logger: logger, metrics: DaemonMetrics(), sink: PublisherSink(socket: nil, logger: logger))
        var reader = InputReader(config: config, logger: logger)
        var bodies = BodyTemplates(classifiers: classifiers, runTag: UInt8(ascii: "f"))
        var buffer: [UInt8] = []
        buffer.reserveCapacity(config.maxBatchBytes)
        let topic = Array((batch > 1 ? "pred_batch" : "pred").utf8)
        let labelTopic = Array((batch > 1 ? "label_batch" : "label").utf8)
        let lag = 1000
        var labelDebt = 0.0, nextLabel = 0
        let flushEvery = Int64(config.journalFlushMs * 1e6)
        var lastFlush = Clock.nanoseconds()

        /// The preds (or labels) of the instances in `range` as one message: a batch, or
        /// with `batch` 1 a single message.
        func send(_ range: Range<Int>, labels: Bool) {
            (labels ? labelTopic : topic).withUnsafeBytes { t in
                if batch > 1 {
                    bodies.batch(range, labels: labels, into: &buffer)
                    buffer.withUnsafeBytes { reader.process(topic: t, body: $0, core: core) }
                } else if labels {
                    bodies.label(range.lowerBound) { reader.process(topic: t, body: $0, core: core) }
                } else {
                    bodies.pred(range.lowerBound) { reader.process(topic: t, body: $0, core: core) }
                }
            }
        }

        func feed(_ range: Range<Int>) {
            var i = range.lowerBound
            while i < range.upperBound {
                let n = min(batch, range.upperBound - i)
                send(i..<(i + n), labels: false)
                i += n
                if labels > 0 {
                    labelDebt += labels * Double(n)
                    while labelDebt >= Double(n), nextLabel + n <= i - lag {
                        send(nextLabel..<(nextLabel + n), labels: true)
                        nextLabel += n
                        labelDebt -= Double(n)
                    }
                }
                // The event loop flushes the journal on a timer.
                let now = Clock.nanoseconds()
                if now - lastFlush >= flushEvery {
                    core.flushJournal()
                    lastFlush = now
                }
            }
        }
        feed(0..<warm)
        let started = Clock.nanoseconds()
        feed(warm..<(warm + count))
        let seconds = Double(Clock.nanoseconds() - started) / 1e9
        core.flushJournal()
        guard core.counters.scored == UInt64(warm + count) else {
            throw CostFloorError("scored \(core.counters.scored) of \(warm + count) instances (rejected: \(core.counters.rejected))")
        }
        return Result(batch: batch, classifiers: classifiers, labels: labels, labels_learnt: core.counters.labelled,
                      model_updates: core.counters.updates, instances: count, seconds: seconds,
                      instances_per_s: Double(count) / seconds, ns_per_instance: seconds * 1e9 / Double(count))
    }
}

struct CostFloorError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
