import Foundation
import Logging
import Online
import Synchronization
import Transport
import Wire

/// The daemon's event loop: restores the state, opens the sockets, then polls them on
/// one dedicated thread (a blocking `zmq_poll` must not sit on Swift's cooperative
/// pool) and dispatches: input to the core, control requests to the control server,
/// cluster messages to the links, timers to whoever is due. Confined to that thread
/// once `run` starts.
final class EventLoop: @unchecked Sendable {
    /// The largest control request read (libzmq disconnects a client that sends more).
    static let maxControlRequestBytes = 64 << 10

    /// Keys that take effect without a restart.
    static let reloadableKeys: Set<String> = Set(ConfigSchema.keys.map(\.name).filter {
        ($0.hasPrefix("health.") && $0 != "health.window") || $0 == "log.level" || $0 == "output.error_rate_per_s"
            || $0 == "state.checkpoint_interval_s" || $0 == "learning.max_batch_delay_s" || $0 == "model.allowed_classifiers"
            || $0 == "monitoring.alert_rates" || $0 == "monitoring.precision_target" || $0 == "output.explain"
    })

    private(set) var config: DaemonConfiguration
    /// A configuration handed over by SIGHUP, applied by the loop at its next turn.
    private let pendingReload = Mutex<DaemonConfiguration?>(nil)
    var logger: Logger
    private let metrics: DaemonMetrics
    private let clock: DaemonClock
    private let sockets: DaemonSockets
    private let core: DaemonCore<PublisherSink>
    private let coordinator: CheckpointCoordinator
    private let control: ControlServer
    private var reader: InputReader
    private let learner: LearnerLink?
    private let scorer: ScorerLink?
    /// With an election: the etcd campaign (learner) or watch (scorer), on its own thread.
    private let election: ElectionSetup?
    let threads: BackgroundThreads
    private let notifier = SystemdNotifier()
    private var nextWatchdog = Double.infinity
    /// When freed heap memory is next handed back to the system (glibc keeps what many
    /// small blocks freed, e.g. a burst of queued messages to subscribers that left).
    private var nextTrim = 0.0

    init(config: DaemonConfiguration, logger: Logger, metrics: DaemonMetrics = DaemonMetrics(), clock: DaemonClock = SystemClock())
        throws(StartupError) {
        self.config = config
        self.logger = logger
        self.metrics = metrics
        self.clock = clock
        let restored = try StateRestore(config: config, logger: logger, clock: clock).restore()
        var setup = SocketSetup(config: config, logger: logger, metrics: metrics)
        sockets = try setup.open()
        core = DaemonCore(config: config, role: config.role, state: restored.state, journal: restored.journal, clock: clock,
                          logger: logger, metrics: metrics, sink: PublisherSink(socket: sockets.output, logger: logger))
        let writer = config.role == .scorer ? nil : CheckpointWriter(store: restored.store)
        coordinator = CheckpointCoordinator(store: restored.store, writer: writer, journal: restored.journal, config: config,
                                            journalOfCheckpoint: restored.journalOfCheckpoint, restored: restored.state.checkpoint,
                                            clock: clock, logger: logger,
                                            metrics: metrics)
        control = ControlServer(socket: sockets.control, logger: logger)
        reader = InputReader(config: config, logger: logger)
        election = config.electionEnabled ? try ElectionSetup(config: config, logger: logger) : nil
        election?.elector?.modelVersion.store(core.model.version, ordering: .releasing)
        if let out = sockets.modelOut, let server = sockets.snapshotServer, let lease = restored.lease {
            learner = LearnerLink(modelOut: out, snapshotServer: server, lease: lease, config: config, logger: logger, metrics: metrics,
                                  election: election?.elector)
        } else {
            learner = nil
        }
        if let sub = sockets.modelIn, let dealer = sockets.snapshotClient, !sockets.forwardOuts.isEmpty {
            scorer = ScorerLink(modelIn: sub, snapshotClient: dealer, forwardOuts: sockets.forwardOuts, config: config, logger: logger, metrics: metrics)
        } else {
            scorer = nil
        }
        let updater = config.updateThread && config.role != .scorer ? UpdateWorker() : nil
        core.updateWorker = updater
        threads = BackgroundThreads(zap: sockets.zap.map(ZAPThread.init(handler:)), writer: writer, journal: restored.journal,
                                    updater: updater)
        wire()
        if restored.checkpointBeforeServing {
            // The replay stopped at a gap: a checkpoint of what was restored now, so that the
            // journal written from here on follows it (not the gap) after another crash.
            do {
                try coordinator.write(core: core)
                logger.notice("checkpointed the state restored up to the journal's gap, before serving")
            } catch {
                logger.critical("cannot checkpoint the state restored up to the journal's gap: \(error.description); a second crash before the next checkpoint would lose what is journalled until then")
            }
        }
    }

    /// Connects the parts' callbacks.
    private func wire() {
        let config = self.config
        control.summary = {
            var s = ConfigSummary()
            s.inputs = config.inputEndpoints
            s.input_type = config.inputType.rawValue
            s.output = config.outputEndpoint
            s.control = config.resolvedControlEndpoint
            s.state_dir = config.stateDir
            s.latent_dim = config.model.latentDim
            s.max_classifiers = config.model.maxClassifiers
            s.batch_size = config.batchSize
            s.class_weights = config.model.classWeights
            s.join_window_ms = config.joinWindowMs
            s.version = cfensembledVersion
            s.role = config.role.rawValue
            return s
        }
        if let learner {
            core.onModelChanged = { [unowned self] in learner.publish(core) }
            core.clusterBody = { learner.clusterBody }
        } else if let scorer {
            core.clusterBody = { [unowned self] in scorer.clusterBody(counters: core.counters) }
        }
    }

    /// Called from any thread (the SIGHUP handler); the loop applies it.
    func requestReload(_ new: DaemonConfiguration) {
        pendingReload.withLock { $0 = new }
    }

    /// Runs until `stop` is set, then finishes the batch, checkpoints and closes the sockets.
    func run(until stop: StopFlag) -> Bool {
        threads.start()
        election?.thread.start()
        var poller = ZMQPoller()
        for s in sockets.inputs { poller.add(s) }
        let controlIndex = poller.add(sockets.control)
        let cluster = [sockets.forwardIn, sockets.snapshotServer, sockets.modelIn, sockets.snapshotClient].compactMap { $0 }
        let clusterBase = sockets.inputs.count + 1
        for s in cluster { poller.add(s) }
        let guardBase = clusterBase + cluster.count
        for g in sockets.guards { poller.add(g.monitor.pollable) }
        if let scorer {
            scorer.awaitFirstModel(core: core, stop: stop) { [self] in followLeader() }
        }
        let start = clock.monotonic()
        learner?.start(core: core, now: start)
        // A scorer keeps no state: no checkpoint or journal timers (its loop must not wake for them).
        if core.role != .scorer { coordinator.start(now: start, journal: core.journal != nil) }
        // The restored state's gauges and counters, before the first scrape can ask.
        core.refreshMetrics()
        // Sockets are bound and state restored: tell systemd (Type=notify).
        notifier.notify("READY=1\nSTATUS=serving, model_version \(core.model.version), \(core.pending.count) pending")
        if let interval = notifier.watchdogInterval {
            notifier.notify("WATCHDOG=1")
            nextWatchdog = start + interval
        }
        logger.info("cfensembled running", metadata: [
            "model_version": "\(core.model.version)", "pending": "\(core.pending.count)",
            "libzmq": "\(ZMQContext.libraryVersion)", "nofile": "\(DescriptorLimit.soft)",
        ])
        while !stop.isSet {
            if let reload = pendingReload.withLock({ value -> DaemonConfiguration? in defer { value = nil }; return value }) {
                apply(reload)
            }
            let now = clock.monotonic()
            let wake = min(now + 0.1, nextWatchdog, core.nextDeadline(), coordinator.nextDeadline, learner?.nextHeartbeat ?? .infinity)
            do {
                _ = try poller.poll(timeoutMs: max(0, Int(((wake - now) * 1000).rounded(.up))))
            } catch {
                logger.critical("zmq_poll failed: \(error)")
                break
            }
            for (i, socket) in sockets.inputs.enumerated() where poller.isReadable(i) {
                reader.drain(socket, forward: false, core: core, scorer: scorer)
            }
            // Connections first: one beyond its socket's limit is closed before anything else.
            for (k, g) in sockets.guards.enumerated() where poller.isReadable(guardBase + k) { g.drain() }
            if poller.isReadable(controlIndex) { control.serve(core: core, coordinator: coordinator) }
            for (k, socket) in cluster.enumerated() where poller.isReadable(clusterBase + k) {
                if socket === sockets.forwardIn {
                    reader.drain(socket, forward: true, core: core, scorer: nil)   // scored instances and labels
                } else if socket === sockets.snapshotServer {
                    learner?.serveSnapshots()
                } else {
                    scorer?.drainModel(socket, core: core)
                }
            }
            timers()
        }
        return shutdown()
    }

    private func timers() {
        let now = clock.monotonic()
        if now >= nextWatchdog, let interval = notifier.watchdogInterval {
            // From the event loop itself, so a stuck loop stops the keep-alives.
            notifier.notify("WATCHDOG=1")
            nextWatchdog = now + interval
        }
        if now >= nextTrim {
            #if os(Linux)
            if nextTrim > 0 { _ = glibcMallocTrim(0) }
            #endif
            nextTrim = now + 60
        }
        core.takeFinishedUpdate()   // every turn: a finished update applies as soon as the loop is free
        if let learner {
            learner.follow(core: core)
            _ = learner.tick(now: now, core: core)
        }
        followLeader()
        core.tick(now: now)
        // A leader whose lease may have lapsed writes no checkpoint until it knows.
        if core.role != .scorer { control.send(coordinator.tick(now: now, core: core, mayCheckpoint: !(learner?.inDoubt ?? false))) }
    }

    /// Scorer with an election: follows the leader etcd shows.
    private func followLeader() {
        if let watcher = election?.watcher, let scorer { scorer.follow(watcher.shared.withLock { $0 }, core: core) }
    }

    private func apply(_ new: DaemonConfiguration) {
        var changed: [String] = [], needRestart: [String] = []
        var next = config
        for key in ConfigSchema.keys where key.get(config) != key.get(new) {
            if Self.reloadableKeys.contains(key.name) {
                key.set(&next, key.get(new))
                changed.append(key.name)
            } else {
                needRestart.append(key.name)
            }
        }
        if let zap = sockets.zap {
            // The allow-list file is re-read even if its path is unchanged: adding a key is the usual edit.
            if new.allowedClients != next.allowedClients { needRestart.removeAll { $0 == "security.allowed_clients" } }
            do {
                let keys = try CurveKey.readAllowList(new.allowedClients)
                zap.replaceAllowList(keys)
                next.allowedClients = new.allowedClients
                changed.append("security.allowed_clients (\(keys.count) keys)")
            } catch {
                logger.error("SIGHUP: allow-list not reloaded, keeping the previous one: \(error.description)")
            }
        }
        config = next
        if let level = config.logLevelValue { logger.logLevel = level }
        core.reconfigure(config)
        coordinator.intervalChanged(to: config.checkpointIntervalSeconds, now: clock.monotonic())
        logger.notice("configuration reloaded (SIGHUP)", metadata: [
            "applied": "\(changed.isEmpty ? "none" : changed.joined(separator: ","))",
            "need_restart": "\(needRestart.isEmpty ? "none" : needRestart.joined(separator: ","))",
        ])
    }

    /// Learner at a clean stop: unbinds the forward socket, so that the scorers queue what
    /// they send next until it (or another learner) is back, and reads what had already
    /// arrived (up to 2 s), so that none of it is lost with the socket.
    private func takeArrivedForwards() {
        guard let pull = sockets.forwardIn, let bound = pull.lastEndpoint else { return }
        do { try pull.unbind(bound) } catch {
            logger.warning("cannot unbind the forward socket before stopping: \(error)")
            return
        }
        var poller = ZMQPoller()
        poller.add(pull)
        let deadline = clock.monotonic() + 2
        let before = core.counters.received
        var quiet = 0
        while clock.monotonic() < deadline && quiet < 3 {
            _ = try? poller.poll(timeoutMs: 30)
            if poller.isReadable(0) {
                reader.drain(pull, forward: true, core: core, scorer: nil)
                quiet = 0
            } else {
                quiet += 1
            }
        }
        let read = core.counters.received - before
        if read > 0 { logger.info("read the forwards that had arrived before stopping", metadata: ["messages": "\(read)"]) }
    }

    /// Scores what is still joining, learns the partial batch, checkpoints, closes.
    private func shutdown() -> Bool {
        if core.role == .scorer {
            // No state to save: stop reading, let queued forwards reach the learner, close.
            notifier.notify("STOPPING=1\nSTATUS=passing queued instances to the learner")
            election?.thread.stop()
            threads.stop { sockets.closeAll(forwardLinger: 5000) }
            logger.info("stopped", metadata: ["model_version": "\(core.model.version)", "scored": "\(core.counters.scored)",
                                              "forward_dropped": "\(core.counters.forwardDropped)"])
            return true
        }
        notifier.notify("STOPPING=1\nSTATUS=finishing the batch and writing a checkpoint")
        logger.info("stopping: finishing the batch and writing a checkpoint")
        if core.role == .learner { takeArrivedForwards() }
        core.finish()
        let written = Result { () throws(CheckpointError) in try coordinator.write(core: core) }
        let bytes = try? written.get()
        // Owed `checkpoint` replies: the final checkpoint is newer than the ones asked for.
        var failure: String?
        if case let .failure(error) = written { failure = error.description }
        control.send(coordinator.answerOwed(finalBytes: bytes, error: failure, modelVersion: core.model.version))
        if bytes != nil { learner?.settle(at: core.model.version) }
        // Hands the leadership over now rather than at the lease's expiry.
        election?.thread.stop()
        threads.stop { sockets.closeAll() }
        logger.info("stopped", metadata: ["model_version": "\(core.model.version)", "scored": "\(core.counters.scored)"])
        return bytes != nil
    }
}

let cfensembledVersion = "0.1.0"

#if os(Linux)
/// glibc's `malloc_trim` (declared in <malloc.h>, which the Glibc module does not export).
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
#endif
