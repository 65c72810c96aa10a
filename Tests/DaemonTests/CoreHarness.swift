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

    mutating func score(_ message: ScoreMessage) { scores.append(message) }
    mutating func publish(_ topic: OutputTopic, _ body: [UInt8]) { events.append((topic, body)) }

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
    let clock = ManualClock()
    let core: DaemonCore<RecordingSink>
    var config: DaemonConfiguration

    init(role: Role = .all, _ configure: (inout DaemonConfiguration) -> Void = { _ in }) {
        var config = DaemonConfiguration()
        config.metricsListen = "off"
        configure(&config)
        self.config = config
        let state = RestoredState(model: CFEnsemble(config: config.model),
                                  pending: PendingStore(capacity: config.maxPending, ttl: config.pendingTTLSeconds),
                                  quality: RollingQuality(window: config.healthWindow))
        core = DaemonCore(config: config, role: role, state: state, journal: nil, clock: clock,
                          logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
                          metrics: DaemonMetrics(), sink: RecordingSink())
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
