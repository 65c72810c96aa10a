import CZeroMQ
import Foundation
import Logging
import Online
import Synchronization
import Transport

/// A failure before the daemon could start serving (bad endpoint, unusable state).
struct StartupError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// The daemon's core: owns the sockets, the model, the pending store and the timers,
/// and runs the event loop on one dedicated thread (blocking `zmq_poll` must not sit
/// on Swift's cooperative pool). Confined to that thread once `run` starts.
final class Engine: @unchecked Sendable {
    private(set) var config: DaemonConfiguration
    /// A configuration handed over by SIGHUP, applied by the loop at its next turn.
    private let pendingReload = Mutex<DaemonConfiguration?>(nil)
    var logger: Logger

    private let context: ZMQContext
    private var inputs: [ZMQSocket] = []
    private let output: ZMQSocket
    private let control: ZMQSocket
    private let checkpoints: CheckpointStore
    /// CURVE: the daemon's keys, the server key for '>' endpoints, and the allow-list's handler.
    private var curveKeys: CurveKeyPair?
    private var curveServerKey: String?
    private var zap: ZAPHandler?
    /// Answers ZAP requests from `run` until every socket is closed.
    private var zapThread: ZAPThread?

    private var model: CFEnsemble
    private var pending: PendingStore
    private var joins: JoinBuffer
    private var quality: RollingQuality
    private(set) var counters = Counters()
    private var batch: [LabelledInstance] = []
    private var batchStarted = 0.0

    private var decoder: MessageDecoder
    private var message = InputMessage()
    private var frames: MultipartMessage
    private var entries: [Entry] = []
    private var writer = JSONWriter(capacity: 512)
    private var errorBucket: TokenBucket

    private var monitor: HealthMonitor
    /// Recent scores of the live model (published or not), for score_collapse.
    private var recentScores: [Double] = []
    private var recentScoreNext = 0
    /// Monotonic time each classifier last reported, by index.
    private var lastSeen: [Double] = []
    /// The last message's classifier names by position, with their model indices.
    private var nameCache: [(name: String, index: Int)] = []
    private var negativesInARow = 0
    /// The model at the last healthy check after an update, for rollback and last_healthy.
    private var lastHealthy: ModelSnapshot?
    private var fallbackModel: CFEnsemble?
    private static let topicAlert: StaticString = "alert"

    private let notifier = SystemdNotifier()
    private let metrics = DaemonMetrics()
    private var messageStarted: Int64 = 0
    private var nextWatchdog = Double.infinity

    private var nextHealth = 0.0
    // Scale-out (docs/scale-out.md). Learner: model PUB, snapshot ROUTER, forward PULL.
    private let role: Role
    private var modelOut: ZMQSocket?
    private var snapshotServer: ZMQSocket?
    private var forwardIn: ZMQSocket?
    private var lease: VersionLease?
    /// The encoded full state last published, served to snapshot requests.
    private var lastState: [UInt8] = []
    private var publishedFallback = "none"
    private var nextHeartbeat = Double.infinity
    private var statesPublished: UInt64 = 0
    private var snapshotsServed: UInt64 = 0
    private var malformedSnapshotRequests: UInt64 = 0
    private var publishSeconds = 0.0
    // Scorer: model SUB, snapshot DEALER, forward PUSH.
    private var modelIn: ZMQSocket?
    private var snapshotClient: ZMQSocket?
    private var forwardOut: ZMQSocket?
    private var follower = ModelFollower()
    private var earlyLabels: EarlyLabels
    /// The learner's last word on status and fallback (heartbeat or state).
    private var remote: ModelState?
    private var statesApplied: UInt64 = 0
    private var applySeconds = 0.0
    private var trailer = [UInt8](repeating: 0, count: ScoredTrailer.size)
    private var lastHealthPublished = -1e9
    private var nextCheckpoint = Double.infinity
    /// When the state was last frozen for a checkpoint (or the loop started).
    private var lastCheckpointStarted = 0.0
    /// Periodic checkpoints are written on this thread; nil until `run` starts it.
    private var checkpointWriter: CheckpointWriter?
    private var checkpointInFlight = false
    /// Clients of `checkpoint` commands, answered once their background write is done:
    /// those whose write is in flight, and those whose write waits for the writer.
    private var owedWriting: [[UInt8]] = []
    private var owedWaiting: [[UInt8]] = []
    /// The last background write's outcome (for the owed reply).
    private var lastBackgroundOutcome: CheckpointWriter.Outcome?
    /// Changes since the last checkpoint (nil when `state.journal` is off, and on scorers).
    private var journal: Journal?
    private var nextJournalFlush = Double.infinity
    /// The journal file of the last durable checkpoint: files before it can go once the
    /// next one is durable (one generation is kept for a fallback restore).
    private var journalOfLastCheckpoint: UInt64?
    private var journalFailureLogged = false
    /// The counters last appended to the journal.
    private var journalledCounters: (counters: Counters, evicted: UInt64, expired: UInt64) = (Counters(), 0, 0)
    /// Labelled instances recorded in `quality`, and its PR-AUCs as last computed.
    private var qualityRecorded: UInt64 = 0
    private var qualityCache: (recorded: UInt64, at: Double, score: Double?, baseline: Double?) = (0, -1e9, nil, nil)
    /// For the `status` reply.
    private var persistence = StatusReply.Persistence(checkpoints_written: 0, checkpoints_failed: 0, checkpoint_in_progress: false)
    private var nextExpiry = 0.0

    private static let topicScore: StaticString = "score"
    private static let topicHealth: StaticString = "health"
    private static let topicError: StaticString = "error"

    init(config: DaemonConfiguration, logger: Logger) throws(StartupError) {
        self.config = config
        self.logger = logger
        role = config.role
        checkpoints = CheckpointStore(directory: config.stateDir, generations: config.checkpointGenerations)
        do { try checkpoints.prepare() } catch { throw StartupError(error.description) }

        // Restore before binding: the newest intact generation; if checkpoints exist but
        // none is intact, refuse to start rather than silently start from nothing.
        var restored: Checkpoint?
        do {
            // A scorer keeps no state: its model comes from the learner.
            if role != .scorer, let found = try checkpoints.readNewestGood() {
                restored = found.checkpoint
                for why in found.rejected {
                    logger.error("skipped a damaged checkpoint generation", metadata: ["reason": "\(why)"])
                }
                if !found.rejected.isEmpty {
                    logger.warning("restored an older checkpoint generation", metadata: ["path": "\(found.path)"])
                }
            }
        } catch {
            throw StartupError("\(error.description); move the files aside to start from a fresh model")
        }
        pending = PendingStore(capacity: role == .scorer ? 1 : config.maxPending, ttl: config.pendingTTLSeconds)
        joins = JoinBuffer(windowMs: config.joinWindowMs, capacity: config.maxJoining)
        earlyLabels = EarlyLabels(wait: config.role == .learner ? config.labelWaitSeconds : 0, capacity: 100_000)
        quality = RollingQuality(window: config.healthWindow)
        if let cp = restored {
            do { model = try CFEnsemble(config: config.model, restoring: cp.head.model) } catch {
                throw StartupError("cannot restore \(checkpoints.path): \(error.description)")
            }
            // The model covers every classifier an instance can name; a checkpoint that
            // breaks this (damaged, or written by a build with that defect) loses them loudly.
            let known = model.classifierCount
            var unusable = 0
            let now = Clock.steady()
            for record in cp.pending {
                guard record.instance.entries.allSatisfy({ Int($0.classifier) < known }) else { unusable += 1; continue }
                // The wall clock may have gone back since: no arrival after now.
                var instance = record.instance
                instance.arrival = min(instance.arrival, now)
                pending.insert(id: record.id, instance)
            }
            pending.restoreCounters(evicted: cp.head.evicted, expired: cp.head.expired)
            // The partial mini-batch of a checkpoint taken while running (then a crash).
            let partial = cp.head.batch ?? []
            batch = partial.filter { $0.entries.allSatisfy { Int($0.classifier) < known } }
            unusable += partial.count - batch.count
            if unusable > 0 {
                logger.error("checkpoint: dropped instances naming classifiers its model does not have",
                             metadata: ["dropped": "\(unusable)", "classifiers": "\(known)"])
            }
            if !batch.isEmpty { batchStarted = Clock.monotonic() }
            counters = cp.head.counters
            if cp.head.quality.window == config.healthWindow { quality = cp.head.quality }
            logger.info("restored checkpoint", metadata: [
                "model_version": "\(model.version)", "pending": "\(pending.count)", "batch": "\(batch.count)",
                "classifiers": "\(model.classifierCount)",
            ])
        } else {
            model = CFEnsemble(config: config.model)
        }
        if role != .scorer && config.journal {
            // A crash: what came after the checkpoint (all of it if there was none yet).
            let from = restored?.head.journal ?? (restored == nil ? 0 : UInt64.max)
            let replay = Journal.replay(directory: config.stateDir, from: from, afterCheckpoint: restored != nil, now: Clock.steady(),
                                        pending: &pending, batch: &batch, model: model, counters: &counters)
            for problem in replay.problems { logger.warning("journal: \(problem)") }
            if !batch.isEmpty { batchStarted = Clock.monotonic() }
            // A clean stop leaves an empty journal file (its final checkpoint started it):
            // records mean changes after the last checkpoint, i.e. an unclean stop.
            if replay.records > 0 {
                logger.notice("replayed the journal (the daemon had not stopped cleanly)", metadata: [
                    "files": "\(replay.files)", "records": "\(replay.records)", "labels_learnt": "\(replay.labelsLearnt)",
                    "updates": "\(replay.updates)", "model_version": "\(model.version)", "pending": "\(pending.count)",
                    "batch": "\(batch.count)", "classifiers": "\(model.classifierCount)",
                ])
            }
            do { journal = try Journal(directory: config.stateDir, syncInterval: config.journalFsyncMs / 1000) } catch {
                throw StartupError(error.description)
            }
            journalOfLastCheckpoint = restored?.head.journal
        }
        if role == .learner {
            var lease = try VersionLease(directory: config.stateDir)
            if restored == nil {
                do { try lease.startLineage() } catch { throw StartupError("\(error)") }
            } else {
                let resume = lease.resumeVersion(after: model.version)
                if resume > model.version {
                    // Versions up to the reservation may have been published before a crash.
                    logger.warning("continuing model versions after the reserved ones (the learner did not stop cleanly)",
                                   metadata: ["checkpoint_version": "\(model.version)", "model_version": "\(resume)"])
                    do { model = try CFEnsemble(config: config.model, restoring: model.snapshot(), version: resume) } catch {
                        throw StartupError("cannot restore \(checkpoints.path): \(error.description)")
                    }
                }
            }
            self.lease = lease
        }

        monitor = HealthMonitor(config: config.health)
        decoder = MessageDecoder(limits: InputLimits(maxIdBytes: 256, maxPreds: config.model.maxClassifiers, maxDepth: 16))
        // The third buffer holds a scorer's `scored` trailer (learner's forward input).
        frames = MultipartMessage(capacities: [64, config.maxMessageBytes, ScoredTrailer.size + 8])
        entries.reserveCapacity(config.model.maxClassifiers)
        errorBucket = TokenBucket(rate: config.errorRatePerSecond, burst: max(1, config.errorRatePerSecond), now: Clock.monotonic())

        do {
            context = try ZMQContext()
            output = try ZMQSocket(context: context, kind: .pub)
            // ROUTER (REQ clients as with REP): a `checkpoint` command is answered when its
            // background write ends, and other commands are served meanwhile.
            control = try ZMQSocket(context: context, kind: .router)
        } catch {
            throw StartupError("libzmq: \(error)")
        }
        if config.curveEnabled { try startCurve() }
        try attach(output, config.outputEndpoint, role: "output") { s throws(ZMQError) in
            try s.setSendHighWaterMark(Int32(clamping: config.outputSendHWM))
        }
        if role != .all { try attachCluster() }
        if role == .scorer && config.inputType == .sub {
            logger.warning("scorer with a SUB input: every scorer subscribed to the same producer scores every pred (use --input-type pull to load-balance, or give each scorer its own producers)")
        }
        for text in config.inputEndpoints {
            let socket: ZMQSocket
            do { socket = try ZMQSocket(context: context, kind: config.inputType == .sub ? .sub : .pull) } catch {
                throw StartupError("libzmq: \(error)")
            }
            try attach(socket, text, role: "input") { s throws(ZMQError) in
                try s.setReceiveHighWaterMark(Int32(clamping: config.inputReceiveHWM))
                // Bodies up to max_message_bytes are received and rejected with a reason if
                // too large; libzmq itself drops peers that send far larger ones.
                try s.setMaxMessageSize(Int64(config.maxMessageBytes) * 16)
                if s.kind == .sub { try s.subscribe("") }
            }
            inputs.append(socket)
        }
        let controlText = config.resolvedControlEndpoint
        if let path = try? Endpoint(parsing: controlText, defaultMode: .bind).ipcPath,
           (try? Endpoint(parsing: controlText, defaultMode: .bind).mode) == .bind {
            // A stale socket file from an unclean stop would make bind fail.
            unlink(path)
        }
        // The socket file is created 0600 (umask during bind, no window in which another
        // user could connect) and chmod'ed again in case the path existed.
        let oldMask = umask(0o077)
        let attached = Result { () throws(StartupError) in
            try attach(control, controlText, role: "control") { s throws(ZMQError) in
                try s.setSendTimeout(1000)
                // Requests are small JSON objects; libzmq drops a peer that sends more.
                try s.setMaxMessageSize(Int64(Self.maxControlRequestBytes))
            }
        }
        umask(oldMask)
        try attached.get()
        if let path = try? Endpoint(parsing: controlText, defaultMode: .bind).ipcPath {
            chmod(path, 0o600)
            let dir = (path as NSString).deletingLastPathComponent
            var info = stat()
            if stat(dir, &info) == 0, info.st_mode & 0o077 != 0 {
                logger.warning("the control socket's directory is accessible to other users; state.dir should be mode 0700",
                               metadata: ["dir": "\(dir)", "mode": "\(String(info.st_mode & 0o777, radix: 8))"])
            }
        }
    }

    private func attach(_ socket: ZMQSocket, _ text: String, role: String, defaultMode: Endpoint.Mode = .bind,
                        configure: (ZMQSocket) throws(ZMQError) -> Void) throws(StartupError) {
        let endpoint: Endpoint
        do { endpoint = try Endpoint(parsing: text, defaultMode: defaultMode) } catch {
            throw StartupError("\(role): \(error)")
        }
        do {
            try configure(socket)
            if let keys = curveKeys {
                if endpoint.mode == .bind {
                    try socket.makeCurveServer(secretKey: keys.secretKey)
                } else if let server = curveServerKey {
                    try socket.makeCurveClient(serverKey: server, keys: keys)
                }
            }
            try socket.attach(endpoint)
        } catch {
            throw StartupError("\(role) endpoint \(text): cannot \(endpoint.mode.rawValue): \(error.reason)")
        }
        logger.info("\(role) socket ready", metadata: [
            "endpoint": "\(endpoint)", "bound": "\(socket.lastEndpoint ?? "-")",
            "security": "\(curveKeys == nil ? "none" : endpoint.mode == .bind ? "curve-server" : "curve-client")",
        ])
    }

    /// Loads the keys and binds the ZAP handler before any CURVE socket exists, so no
    /// handshake can slip through unchecked.
    private func startCurve() throws(StartupError) {
        guard CurveKeyPair.isAvailable else { throw StartupError("security: this libzmq was built without CURVE") }
        let allow: [[UInt8]]
        do {
            curveKeys = try CurveKeyPair.load(secretKeyFile: config.curveSecretKeyFile)
            allow = try CurveKey.readAllowList(config.allowedClients)
            if !config.serverPublicKeyFile.isEmpty { curveServerKey = try CurveKey.readOne(config.serverPublicKeyFile) }
        } catch {
            throw StartupError("security: \(error.description)")
        }
        if allow.isEmpty {
            logger.warning("security.allowed_clients lists no keys: no client can connect until keys are added and SIGHUP is sent",
                           metadata: ["path": "\(config.allowedClients)"])
        }
        let log = logger, metrics = metrics, refusedLogged = RefusalLog()
        do {
            zap = try ZAPHandler(context: context, allowList: allow) { d in
                if d.allowed {
                    metrics.authAdmitted.increment()
                    log.debug("CURVE client admitted", metadata: ["key": "\(d.clientKey)", "address": "\(d.address)"])
                } else {
                    metrics.authRefused.increment()
                    // The first refusals in full, then one line per 1000: a scanner must not flood the log.
                    let n = refusedLogged.next()
                    if n <= 20 || n % 1000 == 0 {
                        log.warning("CURVE client refused", metadata: [
                            "key": "\(d.clientKey.isEmpty ? "-" : d.clientKey)", "mechanism": "\(d.mechanism)",
                            "address": "\(d.address)", "refused_total": "\(n)",
                        ])
                    }
                }
            }
        } catch {
            throw StartupError("security: cannot start the ZAP handler: \(error)")
        }
        logger.info("CURVE on", metadata: ["public_key": "\(curveKeys!.publicKey)", "allowed_clients": "\(allow.count)"])
    }

    /// The learner binds (by default) a PUB for model states, a ROUTER for snapshot
    /// requests and a PULL for forwarded instances; a scorer connects the peers.
    private func attachCluster() throws(StartupError) {
        // A bare endpoint takes the role's default: the learner binds, a scorer connects.
        let mode = config.clusterEndpointMode
        func socket(_ kind: ZMQSocket.Kind) throws(StartupError) -> ZMQSocket {
            do { return try ZMQSocket(context: context, kind: kind) } catch { throw StartupError("libzmq: \(error)") }
        }
        let maxBytes = Int64(config.maxMessageBytes) * 16
        if role == .learner {
            let pub = try socket(.pub), router = try socket(.router), pull = try socket(.pull)
            try attach(pub, config.modelEndpoint, role: "model", defaultMode: mode) { s throws(ZMQError) in try s.setSendHighWaterMark(10_000) }
            try attach(router, config.snapshotEndpoint, role: "snapshot", defaultMode: mode) { s throws(ZMQError) in
                try s.setSendHighWaterMark(10_000)
                // A request is one word; libzmq drops a peer that sends more than this.
                try s.setMaxMessageSize(1024)
            }
            try attach(pull, config.forwardEndpoint, role: "forward", defaultMode: mode) { s throws(ZMQError) in
                try s.setReceiveHighWaterMark(Int32(clamping: config.inputReceiveHWM))
                try s.setMaxMessageSize(maxBytes)
            }
            modelOut = pub; snapshotServer = router; forwardIn = pull
        } else {
            let sub = try socket(.sub), dealer = try socket(.dealer), push = try socket(.push)
            try attach(sub, config.modelEndpoint, role: "model", defaultMode: mode) { s throws(ZMQError) in
                try s.subscribe("")
                try s.setMaxMessageSize(64 << 20)
            }
            try attach(dealer, config.snapshotEndpoint, role: "snapshot", defaultMode: mode) { s throws(ZMQError) in
                try s.setMaxMessageSize(64 << 20)
            }
            try attach(push, config.forwardEndpoint, role: "forward", defaultMode: mode) { s throws(ZMQError) in
                try s.setSendHighWaterMark(Int32(clamping: config.forwardSendHWM))
            }
            modelIn = sub; snapshotClient = dealer; forwardOut = push
        }
    }

    // MARK: Loop

    /// Runs until `stop` is set, then finishes the batch, checkpoints and closes the sockets.
    func run(until stop: StopFlag) -> Bool {
        if let zap {
            zapThread = ZAPThread(handler: zap)
            zapThread?.start()
        }
        var poller = ZMQPoller()
        for s in inputs { poller.add(s) }
        let controlIndex = poller.add(control)
        let clusterSockets = [forwardIn, snapshotServer, modelIn, snapshotClient].compactMap { $0 }
        let clusterBase = inputs.count + 1
        for s in clusterSockets { poller.add(s) }
        if role == .scorer { awaitFirstModel(stop: stop) }
        if role == .learner {
            publishModelState()
            nextHeartbeat = Clock.monotonic() + config.heartbeatIntervalSeconds
        }
        let start = Clock.monotonic()
        nextHealth = start + config.healthIntervalSeconds
        lastCheckpointStarted = start
        if config.checkpointIntervalSeconds > 0 { nextCheckpoint = start + config.checkpointIntervalSeconds }
        if role != .scorer { checkpointWriter = CheckpointWriter(store: checkpoints) }
        if journal != nil { nextJournalFlush = start + config.journalFlushMs / 1000 }
        // The restored state's gauges and counters, before the first scrape can ask.
        refreshMetrics()
        // Sockets are bound and state restored: tell systemd (Type=notify).
        notifier.notify("READY=1\nSTATUS=serving, model_version \(model.version), \(pending.count) pending")
        if let interval = notifier.watchdogInterval {
            notifier.notify("WATCHDOG=1")
            nextWatchdog = start + interval
        }
        logger.info("cfensembled running", metadata: [
            "model_version": "\(model.version)", "pending": "\(pending.count)",
            "libzmq": "\(ZMQContext.libraryVersion)",
        ])
        while !stop.isSet {
            if let reload = pendingReload.withLock({ value -> DaemonConfiguration? in defer { value = nil }; return value }) {
                apply(reload)
            }
            let now = Clock.monotonic()
            var wake = min(now + 0.1, nextHealth, nextCheckpoint, nextExpiry, nextWatchdog, nextHeartbeat, nextJournalFlush)
            if let j = joins.nextDeadline() { wake = min(wake, j) }
            if !batch.isEmpty && config.maxBatchDelaySeconds > 0 { wake = min(wake, batchStarted + config.maxBatchDelaySeconds) }
            let timeout = max(0, Int(((wake - now) * 1000).rounded(.up)))
            do {
                _ = try poller.poll(timeoutMs: timeout)
            } catch {
                logger.critical("zmq_poll failed: \(error)")
                break
            }
            for (i, socket) in inputs.enumerated() where poller.isReadable(i) {
                drain(socket)
            }
            if poller.isReadable(controlIndex) { serveControl() }
            for (k, socket) in clusterSockets.enumerated() where poller.isReadable(clusterBase + k) {
                serveCluster(socket)
            }
            timers()
        }
        return shutdown()
    }

    /// Reads up to a bounded number of waiting messages so one busy input cannot starve
    /// the others or the control socket.
    private func drain(_ socket: ZMQSocket) {
        for _ in 0..<4096 {
            do {
                guard try socket.receive(into: &frames, dontWait: true) else { return }
            } catch {
                logger.error("receive failed: \(error)")
                return
            }
            counters.received &+= 1
            messageStarted = Clock.nanoseconds()
            // A learner's forward input also carries scorers' `scored` instances.
            if socket === forwardIn, frames.frameCount == 3, !frames.isTruncated(0),
               frames.withFrame(0, ScoredTrailer.isTopic) {
                handleScored()
            } else {
                handleFrames()
            }
        }
    }

    private func handleFrames() {
        guard frames.frameCount == 2 else {
            metrics.receivedOther.increment()
            reject(DecodeError("expected 2 frames (topic, body), got \(frames.frameCount)", kind: "frames"))
            return
        }
        let topic: InputTopic? = frames.isTruncated(0) ? nil : frames.withFrame(0) { MessageDecoder.topic($0) }
        guard let topic else {
            metrics.receivedOther.increment()
            let shown = frames.withFrame(0) { MessageDecoder.describeTopic($0) }
            reject(DecodeError("unknown topic '\(shown)' (expected pred or label)", kind: "topic"))
            return
        }
        if topic == .pred { metrics.receivedPred.increment() } else { metrics.receivedLabel.increment() }
        if frames.isTruncated(1) {
            reject(DecodeError("body of \(frames.lengths[1]) bytes exceeds input.max_message_bytes (\(config.maxMessageBytes))",
                               kind: "size", topic: topic.rawValue))
            return
        }
        do {
            try frames.withFrame(1) { body in try decoder.decode(topic: topic, body: body, into: &message) }
        } catch let error as DecodeError {
            reject(error)
            return
        } catch {
            reject(DecodeError("\(error)", kind: "json", topic: topic.rawValue))
            return
        }
        switch topic {
        case .pred:
            handlePred()
            metrics.scoringDuration.recordNanoseconds(Clock.nanoseconds() - messageStarted)
        case .label: handleLabel()
        }
    }

    /// Maps the message's classifier names to model indices in `entries`, registering new
    /// names; rejects (registering nothing) when they would exceed `model.max_classifiers`.
    private func resolveEntries() -> Bool {
        entries.removeAll(keepingCapacity: true)
        var newNames = 0
        for (k, r) in message.preds.enumerated() {
            // Producers send the same names in the same order: compare with the last message's
            // name at this position before hashing.
            if k < nameCache.count, nameCache[k].name == r.name {
                entries.append(Entry(classifier: nameCache[k].index, value: r.value))
            } else if let u = model.classifier(named: r.name, register: false) {
                if k < nameCache.count { nameCache[k] = (r.name, u) } else { nameCache.append((r.name, u)) }
                entries.append(Entry(classifier: u, value: r.value))
            } else {
                newNames += 1
                entries.append(Entry(classifier: Self.unregistered, value: r.value))
            }
        }
        if newNames > 0 {
            guard model.hasRoom(for: newNames) else {
                reject(DecodeError("preds: \(newNames) new classifier(s) would exceed model.max_classifiers (\(config.model.maxClassifiers)); known: \(model.classifierCount)",
                                   kind: "limit", topic: message.topic.rawValue, id: message.id))
                return false
            }
            for (k, r) in message.preds.enumerated() where Int(entries[k].classifier) == Self.unregistered {
                let before = model.classifierCount
                entries[k] = Entry(classifier: model.classifier(named: r.name)!, value: r.value)
                if model.classifierCount > before { journal?.append(.classifier(name: r.name)) }
            }
        }
        let now = Clock.monotonic()
        for e in entries {
            let u = Int(e.classifier)
            while lastSeen.count <= u { lastSeen.append(now) }
            lastSeen[u] = now
        }
        return true
    }

    /// A classifier index no model can have (max_classifiers <= 4096).
    private static let unregistered = Int(UInt16.max)

    private func handlePred() {
        if role == .learner && message.label == nil {
            reject(DecodeError("pred sent to a learner (--role learner): send preds to the scorers, which forward them here",
                               kind: "role", topic: "pred", id: message.id))
            return
        }
        guard resolveEntries() else { return }
        counters.predMessages &+= 1
        if role == .learner, let label = message.label {
            // Replayed history sent straight to the learner: learnt at once, nothing published.
            let s = model.score(entries)
            recordQuality(score: s.score, baseline: s.average, label: label)
            learn(entries, label: label, scored: true)
            return
        }
        if role == .scorer {
            let scored = scoreAndPublish(id: message.id, entries: entries, ts: message.ts, label: message.label)
            forwardScored(scored)
            return
        }
        let now = Clock.monotonic()
        if joins.isEnabled && (joins.contains(message.id) || entries.count < model.classifierCount) {
            let joined = joins.add(id: message.id, entries: entries, ts: message.ts, label: message.label, now: now)
            if joined >= model.classifierCount, let j = joins.take(message.id) {
                scoreAndPublish(id: message.id, entries: j.entries, ts: j.ts, label: j.label)
            }
            while let due = joins.popDue(now: now) {
                if due.joining.deadline > now { counters.joinOverflow &+= 1 }
                scoreAndPublish(id: due.id, entries: due.joining.entries, ts: due.joining.ts, label: due.joining.label)
            }
            return
        }
        scoreAndPublish(id: message.id, entries: entries, ts: message.ts, label: message.label)
    }

    /// What is published instead of the live model's score, if anything: decided by the
    /// health monitor here, or by the learner for a scorer.
    private var activeFallback: DaemonConfiguration.Fallback? {
        if role == .scorer {
            guard let r = remote, r.fallback != "none" else { return nil }
            return DaemonConfiguration.Fallback(rawValue: r.fallback) ?? .average
        }
        return monitor.criticalFiring && config.fallback != .none ? config.fallback : nil
    }

    @discardableResult
    private func scoreAndPublish(id: String, entries: [Entry], ts: Double?, label: Int8?) -> ScoredInstance {
        // A scorer's model is the learner's: it learns nothing locally.
        let scored = model.score(entries, learnUnlabelled: role == .all)
        let wall = Clock.wall()
        recordScore(scored.score)
        var published = scored.score
        var fallback = false
        if let mode = activeFallback {
            fallback = true
            if mode == .last_healthy, let healthy = coveringFallbackModel() {
                published = healthy.score(entries, learnUnlabelled: role == .all).score
            } else {
                published = scored.average
            }
        }
        ScoreMessage(id: id, score: published, ts: ts ?? wall, modelVersion: model.version,
                     nPreds: entries.count, fallback: fallback).encode(into: &writer)
        publish(Self.topicScore, writer.bytes)
        counters.scored &+= 1
        if fallback { metrics.scoredFallback.increment() } else { metrics.scored.increment() }
        metrics.publishedScore.increment()
        if role == .scorer {
            // The learner keeps the pending instance and learns (see forwardScored).
            return scored
        } else if let label {
            // Replayed history: learnt from at once, never pending.
            recordQuality(score: scored.score, baseline: scored.average, label: label)
            learn(entries, label: label, scored: true)
        } else {
            // The store copies the entries into its slab (it keeps no reference to this
            // buffer except for instances with more entries than fit inline).
            let instance = PendingInstance(entries: entries, arrival: Clock.steady(), score: scored.score, average: scored.average)
            pending.insert(id: id, instance)
            journal?.append(.pending(id: id, instance))
        }
        return scored
    }

    /// The `last_healthy` model, extended to every classifier the live model knows (a
    /// classifier registered after it was kept starts from its initial factors and
    /// weight); nil when there is none or it cannot be extended (scored as the average).
    private func coveringFallbackModel() -> CFEnsemble? {
        guard let healthy = fallbackModel else { return nil }
        if healthy.classifierCount != model.classifierCount {
            do { try healthy.cover(model.registry.names) } catch {
                logger.error("last_healthy fallback dropped, scoring the average: \(error.description)")
                fallbackModel = nil
                return nil
            }
        }
        return healthy
    }

    private func handleLabel() {
        guard let label = message.label else { return }
        if role == .scorer {
            forwardLabel()
            return
        }
        if joins.contains(message.id), let j = joins.take(message.id) {
            scoreAndPublish(id: message.id, entries: j.entries, ts: j.ts, label: j.label)
        }
        if let instance = pending.take(message.id) {
            journal?.append(.taken(id: message.id))
            counters.labelMessages &+= 1
            recordQuality(score: Double(instance.score), baseline: Double(instance.average), label: label)
            learn(instance.entries, label: label, scored: false)
        } else if !message.preds.isEmpty {
            guard resolveEntries() else { return }
            counters.labelMessages &+= 1
            learn(entries, label: label, scored: false)
        } else if role == .learner && earlyLabels.add(id: message.id, label: label, now: Clock.monotonic()) {
            // Its instance may still be on its way from another scorer.
        } else {
            counters.unmatchedLabels &+= 1
            metrics.labelsUnmatched.increment()
            logger.debug("unmatched label", metadata: ["id": "\(message.id)"])
        }
    }

    private func recordQuality(score: Double, baseline: Double, label: Int8) {
        quality.record(score: score, baseline: baseline, label: label)
        qualityRecorded &+= 1
    }

    /// PR-AUC of the published scores and of the simple average over the quality window.
    /// Sorting the window (2,000 by default) twice after every update was 6% of the
    /// daemon's time when learning 100k labels/s, so the pair is recomputed only once
    /// half a second has passed (or the whole window is new).
    private func qualityAUCs() -> (score: Double?, baseline: Double?) {
        let now = Clock.monotonic()
        let fresh = qualityRecorded &- qualityCache.recorded
        if qualityCache.at < 0 || (fresh > 0 && (fresh >= UInt64(quality.window) || now - qualityCache.at >= 0.5)) {
            qualityCache = (qualityRecorded, now, quality.prAUC, quality.baselinePrAUC)
        }
        return (qualityCache.score, qualityCache.baseline)
    }

    private func recordScore(_ score: Double) {
        if recentScores.count < 1000 { recentScores.append(score) } else { recentScores[recentScoreNext] = score }
        recentScoreNext = (recentScoreNext + 1) % 1000
    }

    /// `scored`: the instance was scored or observed just now (the journal replays that).
    private func learn(_ entries: [Entry], label: Int8, scored: Bool) {
        negativesInARow = label == 1 ? 0 : negativesInARow + 1
        if batch.isEmpty { batchStarted = Clock.monotonic() }
        let labelled = LabelledInstance(entries: entries, label: label)
        batch.append(labelled)
        journal?.append(.learnt(labelled, scored: scored))
        counters.labelled &+= 1
        metrics.labelsLearnt.increment()
        if batch.count >= config.batchSize { update() }
    }

    private func update() {
        guard !batch.isEmpty else { return }
        let t0 = Clock.monotonic()
        if model.version == 0 { monitor.noteHealthy(weightSum: model.aggregator.w.reduce(0, +)) }
        // The losses are only for the debug log line: two extra passes over the buffer.
        let report = model.update(batch, measureLoss: logger.logLevel <= .debug)
        batch.removeAll(keepingCapacity: true)
        journal?.append(.update)
        counters.updates &+= 1
        if let report {
            logger.debug("model updated", metadata: [
                "model_version": "\(report.version)", "batch": "\(report.size)", "positives": "\(report.positives)",
                "loss_before": "\(report.lossBefore)", "loss_after": "\(report.lossAfter)",
                "ms": "\(Int((Clock.monotonic() - t0) * 1000))",
            ])
        }
        metrics.updateDuration.recordNanoseconds(Int64((Clock.monotonic() - t0) * 1e9))
        checkHealth(afterUpdate: true)
        if role == .learner { publishModelState() }
        refreshMetrics()
        // After each update, rate-limited to one health message per second.
        if Clock.monotonic() - lastHealthPublished >= 1 { publishHealth() }
    }

    // MARK: Scale-out

    /// Scorer: passes the instance on to the learner, which keeps it pending and learns
    /// from it when its label arrives. The body goes as received; the trailer adds what
    /// was computed here.
    private func forwardScored(_ scored: ScoredInstance) {
        guard let out = forwardOut else { return }
        ScoredTrailer.write(score: scored.score, average: scored.average, arrival: Clock.steady(), into: &trailer)
        let sent = forward(out, topic: ScoredTrailer.topic, last: false) && (try? trailer.withUnsafeBytes { try out.send($0) }) == true
        if sent {
            metrics.forwardedScored.increment()
        } else {
            forwardDropped(kind: "scored instance")
        }
    }

    /// Scorer: a label goes to the learner, which holds its instance.
    private func forwardLabel() {
        guard let out = forwardOut else { return }
        if forward(out, topic: "label", last: true) {
            counters.labelsForwarded &+= 1
            metrics.forwardedLabel.increment()
        } else {
            forwardDropped(kind: "label")
            reject(DecodeError("label not passed on: the learner's queue is full (cluster.forward_sndhwm); is the learner running?",
                               kind: "forward", topic: "label", id: message.id))
        }
    }

    /// Sends the topic and the received body frame; false when the queue is full. Once the
    /// first frame is accepted the rest of the message is too (ZeroMQ multipart is atomic).
    private func forward(_ out: ZMQSocket, topic: StaticString, last: Bool) -> Bool {
        do {
            let first = topic.withUTF8Buffer { t in
                Result { () throws(ZMQError) -> Bool in try out.send(UnsafeRawBufferPointer(t), more: true, dontWait: true) }
            }
            guard try first.get() else { return false }
            _ = try frames.withFrame(1) { body in try out.send(body, more: !last) }
            return true
        } catch {
            logger.error("forward to the learner failed: \(error)")
            return false
        }
    }

    private func forwardDropped(kind: String) {
        counters.forwardDropped &+= 1
        metrics.forwardDropped.increment()
        let n = counters.forwardDropped
        if n <= 10 || n % 10_000 == 0 {
            logger.warning("\(kind) not forwarded to the learner: its queue is full (learner down or slow)",
                           metadata: ["forward_dropped_total": "\(n)"])
        }
    }

    private func serveCluster(_ socket: ZMQSocket) {
        if socket === forwardIn {
            drain(socket)     // scored instances and labels from the scorers
        } else if socket === snapshotServer {
            serveSnapshots()
        } else {
            drainModel(socket)
        }
    }

    /// Learner: an instance a scorer scored. Kept pending (or learnt at once if it carries
    /// its label), and learnt from unlabelled as if scored here.
    private func handleScored() {
        metrics.receivedPred.increment()
        guard !frames.isTruncated(1), !frames.isTruncated(2), let t = frames.withFrame(2, { ScoredTrailer.read($0) }) else {
            reject(DecodeError("scored: malformed message from a scorer (expected topic, pred body, 24-byte trailer)",
                               kind: "frames", topic: "scored"))
            return
        }
        do {
            try frames.withFrame(1) { body in try decoder.decode(topic: .pred, body: body, into: &message) }
        } catch let error as DecodeError {
            reject(error)
            return
        } catch {
            reject(DecodeError("\(error)", kind: "json", topic: "scored"))
            return
        }
        guard resolveEntries() else { return }
        counters.predMessages &+= 1
        model.observe(entries)
        recordScore(t.score)
        if message.label == nil, let early = earlyLabels.take(message.id) {
            // Its label overtook it (sent through another scorer).
            counters.labelMessages &+= 1
            recordQuality(score: t.score, baseline: t.average, label: early)
            learn(entries, label: early, scored: true)
        } else if let label = message.label {
            recordQuality(score: t.score, baseline: t.average, label: label)
            learn(entries, label: label, scored: true)
        } else {
            // The scorer's clock is not ours: an arrival in the future would hold up the
            // expiry of every instance behind it (the store expires in arrival order).
            let now = Clock.steady()
            let arrival = t.arrival.isFinite ? min(now, max(now - config.pendingTTLSeconds, t.arrival)) : now
            let instance = PendingInstance(entries: entries, arrival: arrival, score: t.score, average: t.average)
            pending.insert(id: message.id, instance)
            journal?.append(.pending(id: message.id, instance))
        }
    }

    /// Learner: the full state now, or a heartbeat (no model).
    private func currentState(full: Bool) -> ModelState {
        let fallback = activeFallback?.rawValue ?? "none"
        return ModelState(
            lineage: lease?.lineage ?? "", version: model.version, status: monitor.status, fallback: fallback,
            ts: Clock.wall(), model: full ? model.scoringSnapshot() : nil,
            healthy: full && fallback == "last_healthy" ? fallbackModel?.scoringSnapshot() : nil)
    }

    /// Learner: publishes the whole scoring model (after every update, rollback or change
    /// of fallback) and keeps it for snapshot requests.
    private func publishModelState() {
        guard let out = modelOut else { return }
        let t0 = Clock.monotonic()
        defer { publishSeconds += Clock.monotonic() - t0 }
        do { try lease?.cover(model.version) } catch {
            logger.critical("cannot reserve model versions (\(error)); after a crash versions could repeat")
        }
        let state = currentState(full: true)
        lastState = state.encoded()
        publishedFallback = state.fallback
        do { _ = try out.send(frames: [Array(ModelState.topicModel.utf8), lastState], dontWait: true) } catch {
            logger.error("model state not published: \(error)")
        }
        statesPublished &+= 1
        metrics.modelStatesPublished.increment()
    }

    private func heartbeat() {
        guard let out = modelOut else { return }
        _ = try? out.send(frames: [Array(ModelState.topicHeartbeat.utf8), currentState(full: false).encoded()], dontWait: true)
    }

    /// Learner: answers each `snapshot` request with the last published state.
    private func serveSnapshots() {
        guard let router = snapshotServer else { return }
        for _ in 0..<1000 {
            guard let request = try? router.receiveFrames(dontWait: true) else { return }
            guard request.count == 2, request[1].elementsEqual(ModelState.snapshotRequest.utf8) else {
                // The first ones in full, then one line per 1000: a misbehaving peer must not flood the log.
                malformedSnapshotRequests &+= 1
                let n = malformedSnapshotRequests
                if n <= 10 || n % 1000 == 0 {
                    logger.warning("ignored a malformed snapshot request", metadata: ["frames": "\(request.count)", "malformed_total": "\(n)"])
                }
                continue
            }
            _ = try? router.send(frames: [request[0], Array(ModelState.topicModel.utf8), lastState], dontWait: true)
            snapshotsServed &+= 1
            metrics.modelSnapshotsServed.increment()
        }
    }

    /// Scorer: model states (PUB updates, snapshot replies) and heartbeats.
    private func drainModel(_ socket: ZMQSocket) {
        for _ in 0..<1000 {
            let received: [[UInt8]]?
            do { received = try socket.receiveFrames(dontWait: true) } catch {
                logger.error("model receive failed: \(error)")
                return
            }
            guard let f = received else { return }
            let t0 = Clock.monotonic()
            defer { applySeconds += Clock.monotonic() - t0 }
            guard f.count == 2, let state = try? ModelState.decode(f[1]) else {
                logger.error("ignored a malformed model message from the learner", metadata: ["frames": "\(f.count)"])
                continue
            }
            if f[0].elementsEqual(ModelState.topicModel.utf8) {
                apply(state)
            } else if f[0].elementsEqual(ModelState.topicHeartbeat.utf8) {
                heard(state)
            }
        }
    }

    private func apply(_ state: ModelState) {
        guard let snapshot = state.model else { return }
        let missedBefore = follower.missedVersions, lineageBefore = follower.lineage
        switch follower.offer(lineage: state.lineage, version: state.version) {
        case .ignore:
            return
        case .same:
            // Same model: only the learner's status or fallback may have changed.
            remote = state.heartbeat
            if state.fallback == "last_healthy", fallbackModel == nil, let h = state.healthy {
                fallbackModel = try? CFEnsemble(config: config.model, restoring: h)
            }
            return
        case .apply:
            break
        }
        do {
            model = try CFEnsemble(config: config.model, restoring: snapshot)
        } catch {
            logger.error("cannot use the learner's model: \(error.description) (learner and scorers must share model.*)")
            return
        }
        nameCache.removeAll()
        fallbackModel = state.healthy.flatMap { try? CFEnsemble(config: config.model, restoring: $0) }
        remote = state.heartbeat
        statesApplied &+= 1
        metrics.modelStatesApplied.increment()
        metrics.modelVersion.record(Double(model.version))
        let missed = follower.missedVersions - missedBefore
        if missed > 0 {
            metrics.modelVersionsMissed.increment(by: missed)
            logger.info("model versions missed, repaired by a newer state", metadata: ["missed": "\(missed)", "model_version": "\(model.version)"])
        }
        if let before = lineageBefore, before != state.lineage {
            logger.warning("the learner started a new model lineage (fresh model); following it",
                           metadata: ["lineage": "\(state.lineage)", "model_version": "\(state.version)"])
        }
        logger.debug("model state applied", metadata: ["model_version": "\(model.version)", "fallback": "\(state.fallback)"])
    }

    private func heard(_ heartbeat: ModelState) {
        if follower.isBehind(lineage: heartbeat.lineage, version: heartbeat.version) {
            requestSnapshot()
        } else if heartbeat.version == follower.version {
            remote = heartbeat
            if heartbeat.fallback == "last_healthy" && fallbackModel == nil { requestSnapshot() }
        }
    }

    /// Scorer: asks the learner for its current state (at most once per second).
    private func requestSnapshot() {
        guard let client = snapshotClient,
              follower.shouldRequest(now: Clock.monotonic(), interval: min(1, config.heartbeatIntervalSeconds)) else { return }
        _ = try? client.send(frames: [Array(ModelState.snapshotRequest.utf8)], dontWait: true)
        metrics.modelSnapshotRequests.increment()
    }

    /// Scorer: before reading preds, waits up to `cluster.snapshot_wait_s` for the
    /// learner's model, so a scorer that joins late scores with the current model at once.
    private func awaitFirstModel(stop: StopFlag) {
        guard let sub = modelIn, let client = snapshotClient else { return }
        let t0 = Clock.monotonic()
        var poller = ZMQPoller()
        poller.add(sub)
        poller.add(client)
        while !follower.hasModel && !stop.isSet && Clock.monotonic() - t0 < config.snapshotWaitSeconds {
            requestSnapshot()
            _ = try? poller.poll(timeoutMs: 50)
            if poller.isReadable(0) { drainModel(sub) }
            if poller.isReadable(1) { drainModel(client) }
        }
        if follower.hasModel {
            logger.info("model received from the learner", metadata: [
                "model_version": "\(model.version)", "lineage": "\(follower.lineage ?? "-")",
                "ms": "\(Int((Clock.monotonic() - t0) * 1000))"])
        } else if !stop.isSet {
            logger.warning("no model from the learner yet: scoring with a fresh model (the simple average) until it arrives",
                           metadata: ["waited_s": "\(config.snapshotWaitSeconds)"])
        }
    }

    private func clusterBody() -> HealthBody.Cluster? {
        switch role {
        case .all: return nil
        case .learner:
            return .init(role: "learner", lineage: lease?.lineage, states_published: statesPublished, snapshots_served: snapshotsServed,
                         state_bytes: lastState.count,
                         publish_us_mean: statesPublished > 0 ? publishSeconds / Double(statesPublished) * 1e6 : nil)
        case .scorer:
            return .init(role: "scorer", lineage: follower.lineage, states_applied: statesApplied,
                         versions_missed: follower.missedVersions, snapshot_requests: follower.requestsSent,
                         labels_forwarded: counters.labelsForwarded, forward_dropped: counters.forwardDropped,
                         apply_us_mean: statesApplied > 0 ? applySeconds / Double(statesApplied) * 1e6 : nil)
        }
    }

    /// Scorer: stops reading, lets queued forwards reach the learner, closes. No state to save.
    private func shutdownScorer() -> Bool {
        notifier.notify("STOPPING=1\nSTATUS=passing queued instances to the learner")
        for s in inputs { s.close() }
        forwardOut?.close(linger: 5000)
        for s in [modelIn, snapshotClient].compactMap({ $0 }) { s.close() }
        control.close()
        output.close()
        // Last: the sockets it authenticates for are closed.
        zapThread?.stop()
        if let path = try? Endpoint(parsing: config.resolvedControlEndpoint, defaultMode: .bind).ipcPath { unlink(path) }
        logger.info("stopped", metadata: ["model_version": "\(model.version)", "scored": "\(counters.scored)",
                                          "forward_dropped": "\(counters.forwardDropped)"])
        return true
    }

    // MARK: Output

    private func publish(_ topic: StaticString, _ body: [UInt8]) {
        do {
            let sentTopic = topic.withUTF8Buffer { t in
                Result { () throws(ZMQError) -> Bool in try output.send(UnsafeRawBufferPointer(t), more: true, dontWait: true) }
            }
            guard try sentTopic.get() else { return }
            _ = try body.withUnsafeBytes { try output.send($0, dontWait: true) }
        } catch {
            logger.error("publish failed: \(error)")
        }
    }

    private func reject(_ error: DecodeError) {
        counters.rejected[error.kind, default: 0] &+= 1
        metrics.rejected(reason: error.kind)
        logger.debug("rejected input", metadata: ["reason": "\(error.reason)", "id": "\(error.id ?? "-")"])
        guard errorBucket.take(now: Clock.monotonic()) else {
            counters.errorsSuppressed &+= 1
            metrics.errorsSuppressed.increment()
            return
        }
        metrics.publishedError.increment()
        publish(Self.topicError, JSON.encode(ErrorBody(ts: Clock.wall(), topic: error.topic, id: error.id, reason: error.reason)))
    }

    func healthBody() -> HealthBody {
        let names = model.registry.names
        var weights: [String: Double] = [:]
        for (u, name) in names.enumerated() { weights[name] = model.aggregator.w[u] }
        let cw = model.classWeights
        let auc = qualityAUCs()
        return HealthBody(
            ts: Clock.wall(), model_version: model.version,
            status: role == .scorer ? (remote?.status ?? "waiting_for_model") : monitor.status, weights: weights,
            bias: model.aggregator.b,
            class_counts: .init(pos: cw.positives, neg: cw.negatives),
            class_weights: .init(pos: cw.weight(for: 1), neg: cw.weight(for: 0)),
            pending: pending.count, joining: joins.count, scored: counters.scored, labelled: counters.labelled,
            unmatched_labels: counters.unmatchedLabels, rejected: counters.rejectedTotal,
            rejected_by_reason: counters.rejected, received: counters.received,
            evicted: pending.evicted, expired: pending.expired, errors_suppressed: counters.errorsSuppressed,
            pr_auc: auc.score, baseline_pr_auc: auc.baseline, quality_window: quality.count,
            alerts_firing: monitor.firing.map { f in f.classifier.map { "\(f.name.rawValue):\($0)" } ?? f.name.rawValue },
            fallback_active: activeFallback != nil,
            accounting: .init(received: counters.received, preds: counters.predMessages, labels_learnt: counters.labelMessages,
                              labels_forwarded: counters.labelsForwarded, labels_waiting: earlyLabels.count,
                              labels_unmatched: counters.unmatchedLabels, rejected: counters.rejectedTotal,
                              balanced: counters.balanced(waiting: earlyLabels.count)),
            cluster: clusterBody())
    }

    /// Runs the weight-health monitor, publishes every alert state change, and keeps the
    /// last healthy model for rollback and the `last_healthy` fallback.
    private func checkHealth(afterUpdate: Bool) {
        let now = Clock.monotonic()
        let names = model.registry.names
        var mean = 0.0, sq = 0.0
        for v in recentScores { mean += v }
        mean /= Double(max(1, recentScores.count))
        for v in recentScores { sq += (v - mean) * (v - mean) }
        let std = recentScores.isEmpty ? 0 : (sq / Double(recentScores.count)).squareRoot()
        let cw = model.classWeights
        let total = cw.positives + cw.negatives
        let auc = qualityAUCs()
        let observation = HealthObservation(
            weights: model.aggregator.w, classifiers: names, scoreStd: std, scoreCount: recentScores.count,
            prAUC: auc.score, baselinePrAUC: auc.baseline, qualityCount: quality.count,
            qualityPositives: quality.positives, silentSeconds: names.indices.map { $0 < lastSeen.count ? now - lastSeen[$0] : 0 },
            negativesInARow: negativesInARow, positiveRate: total > 0 ? cw.positives / total : 0,
            afterUpdate: afterUpdate, now: Clock.monotonic())
        let wasCritical = monitor.criticalFiring
        for alert in monitor.check(observation) {
            let action = alert.severity == "critical" && config.fallback != .none ? "fallback" : "none"
            let body = AlertBody(alert: alert.name.rawValue, state: alert.state, severity: alert.severity, ts: Clock.wall(),
                                 model_version: model.version, reason: alert.reason, metrics: alert.metrics,
                                 action: action, classifier: alert.classifier)
            publish(Self.topicAlert, JSON.encode(body))
            metrics.publishedAlert.increment()
            let meta: Logger.Metadata = ["alert": "\(alert.name.rawValue)", "state": "\(alert.state)", "action": "\(action)"]
            if alert.severity == "critical" && alert.state == "firing" {
                logger.critical("\(alert.reason)", metadata: meta)
            } else {
                logger.warning("\(alert.reason)", metadata: meta)
            }
        }
        if monitor.criticalFiring {
            if !wasCritical, config.fallback == .last_healthy, let healthy = lastHealthy {
                fallbackModel = try? CFEnsemble(config: config.model, restoring: healthy)
            }
        } else {
            fallbackModel = nil
            if afterUpdate && model.version > 0 { lastHealthy = model.snapshot() }
        }
    }

    private func refreshMetrics() {
        let names = model.registry.names
        metrics.refresh(weights: names.indices.map { (names[$0], model.aggregator.w[$0]) }, bias: model.aggregator.b,
                        version: model.version, pendingCount: pending.count, evicted: pending.evicted,
                        expired: pending.expired, positives: model.classWeights.positives,
                        negatives: model.classWeights.negatives, firing: Set(monitor.firing.map(\.name.rawValue)))
    }

    private func publishHealth() {
        lastHealthPublished = Clock.monotonic()
        publish(Self.topicHealth, JSON.encode(healthBody()))
        metrics.publishedHealth.increment()
    }

    // MARK: Timers

    private func timers() {
        let now = Clock.monotonic()
        if now >= nextWatchdog, let interval = notifier.watchdogInterval {
            // From the event loop itself, so a stuck loop stops the keep-alives.
            notifier.notify("WATCHDOG=1")
            nextWatchdog = now + interval
        }
        if role == .scorer {
            if now >= nextHealth {
                refreshMetrics()
                publishHealth()
                nextHealth = now + config.healthIntervalSeconds
            }
            return
        }
        if role == .learner {
            let n = earlyLabels.expire(now: now)
            if n > 0 {
                counters.unmatchedLabels &+= UInt64(n)
                metrics.labelsUnmatched.increment(by: Int64(n))
            }
        }
        if role == .learner && now >= nextHeartbeat {
            heartbeat()
            nextHeartbeat = now + config.heartbeatIntervalSeconds
        }
        while let due = joins.popDue(now: now) {
            scoreAndPublish(id: due.id, entries: due.joining.entries, ts: due.joining.ts, label: due.joining.label)
        }
        if !batch.isEmpty && config.maxBatchDelaySeconds > 0 && now - batchStarted >= config.maxBatchDelaySeconds {
            update()
        }
        if now >= nextExpiry {
            let at = Clock.steady()
            let n = pending.expire(now: at)
            if n > 0 {
                journal?.append(.expire(now: at))
                logger.info("expired pending instances without a label", metadata: ["count": "\(n)"])
            }
            nextExpiry = now + 1
        }
        if now >= nextHealth {
            checkHealth(afterUpdate: false)
            // A fallback that starts or ends between updates reaches the scorers at once.
            if role == .learner && (activeFallback?.rawValue ?? "none") != publishedFallback { publishModelState() }
            refreshMetrics()
            publishHealth()
            nextHealth = now + config.healthIntervalSeconds
        }
        if checkpointInFlight { collectCheckpointOutcomes() }
        if !owedWriting.isEmpty || !owedWaiting.isEmpty { advanceOwedCheckpoints() }
        if let journal, now >= nextJournalFlush {
            journalCounters()
            journal.flush()
            nextJournalFlush = now + config.journalFlushMs / 1000
            if let failure = journal.failure, !journalFailureLogged {
                logger.error("journal: \(failure); changes are no longer journalled until the next checkpoint starts a new file")
                journalFailureLogged = true
            }
            // Bound the journal's size (and the replay after a crash): checkpoint early.
            if journal.bytes >= config.journalMaxMB << 20 && !checkpointInFlight { nextCheckpoint = now }
        }
        if now >= nextCheckpoint {
            // A write still in progress (a large pending table, a slow disk): try again soon.
            // (Interval 0: no periodic checkpoints, only those the journal's size asks for.)
            let interval = config.checkpointIntervalSeconds
            if startBackgroundCheckpoint() {
                nextCheckpoint = interval > 0 ? now + interval : .infinity
            } else {
                nextCheckpoint = now + (interval > 0 ? min(1, interval) : 1)
            }
        }
    }

    // MARK: Reload

    /// The largest control request read (libzmq disconnects a client that sends more).
    static let maxControlRequestBytes = 64 << 10

    /// Keys that take effect without a restart.
    static let reloadableKeys: Set<String> = Set(ConfigSchema.keys.map(\.name).filter {
        ($0.hasPrefix("health.") && $0 != "health.window") || $0 == "log.level" || $0 == "output.error_rate_per_s"
            || $0 == "state.checkpoint_interval_s" || $0 == "learning.max_batch_delay_s"
    })

    /// Called from any thread (the SIGHUP handler); the loop applies it.
    func requestReload(_ new: DaemonConfiguration) {
        pendingReload.withLock { $0 = new }
    }

    private func apply(_ new: DaemonConfiguration) {
        let previousInterval = config.checkpointIntervalSeconds
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
        config = next
        if let zap {
            // The allow-list file is re-read even if its path is unchanged: adding a key is the usual edit.
            if new.allowedClients != config.allowedClients { needRestart.removeAll { $0 == "security.allowed_clients" } }
            do {
                let keys = try CurveKey.readAllowList(new.allowedClients)
                zap.replaceAllowList(keys)
                config.allowedClients = new.allowedClients
                changed.append("security.allowed_clients (\(keys.count) keys)")
            } catch {
                logger.error("SIGHUP: allow-list not reloaded, keeping the previous one: \(error.description)")
            }
        }
        monitor.config = config.health
        if let level = config.logLevelValue { logger.logLevel = level }
        errorBucket = TokenBucket(rate: config.errorRatePerSecond, burst: max(1, config.errorRatePerSecond), now: Clock.monotonic())
        let now = Clock.monotonic()
        nextHealth = min(nextHealth, now + config.healthIntervalSeconds)
        // Only a changed interval moves the next checkpoint, counted from the last one: a
        // reload more often than the interval must not postpone checkpoints for ever.
        if config.checkpointIntervalSeconds != previousInterval {
            let interval = config.checkpointIntervalSeconds
            nextCheckpoint = interval > 0 ? max(now, lastCheckpointStarted + interval) : .infinity
        }
        logger.notice("configuration reloaded (SIGHUP)", metadata: [
            "applied": "\(changed.isEmpty ? "none" : changed.joined(separator: ","))",
            "need_restart": "\(needRestart.isEmpty ? "none" : needRestart.joined(separator: ","))",
        ])
    }

    // MARK: Control

    /// Serves the waiting requests (a bounded number per wake). Frames from the ROUTER:
    /// the client's identity, the empty delimiter of a REQ envelope, the request.
    private func serveControl() {
        for _ in 0..<16 {
            guard let frames = try? control.receiveFrames(dontWait: true), let client = frames.first else { return }
            let body = frames.count >= 2 && frames[1].isEmpty ? Array(frames.dropFirst(2)) : Array(frames.dropFirst())
            if let reply = handleControl(body, from: client) { sendControl(reply, to: client) }
        }
    }

    private func sendControl(_ reply: [UInt8], to client: [UInt8]) {
        do { _ = try control.send(frames: [client, [], reply], dontWait: true) } catch {
            logger.error("control reply failed: \(error)")
        }
    }

    /// Moves owed `checkpoint` replies along: answers those whose write has finished,
    /// and starts the write of those waiting once the writer is free.
    private func advanceOwedCheckpoints() {
        guard let writer = checkpointWriter else { return }
        if !owedWriting.isEmpty, !checkpointInFlight, let o = lastBackgroundOutcome {
            let reply = checkpointReply(bytes: o.bytes, modelVersion: o.modelVersion, error: o.error)
            for client in owedWriting { sendControl(reply, to: client) }
            owedWriting.removeAll()
        }
        guard owedWriting.isEmpty, !owedWaiting.isEmpty, !writer.isBusy else { return }
        collectCheckpointOutcomes()
        lastBackgroundOutcome = nil
        if startBackgroundCheckpoint() {
            swap(&owedWriting, &owedWaiting)
            let interval = config.checkpointIntervalSeconds
            nextCheckpoint = interval > 0 ? Clock.monotonic() + interval : .infinity
        }
    }

    /// The `checkpoint` command's reply: where, how large and which model version, or why not.
    private func checkpointReply(bytes: Int?, modelVersion: Int64, error: String?) -> [UInt8] {
        guard let bytes else { return JSON.encode(ControlReply(ok: false, error: error ?? "checkpoint failed")) }
        return JSON.encode(ControlReply(ok: true, path: checkpoints.path, bytes: bytes, model_version: modelVersion))
    }

    /// The reply, or nil when it is owed until later (`checkpoint`, see `advanceOwedCheckpoints`).
    private func handleControl(_ request: [[UInt8]], from client: [UInt8]) -> [UInt8]? {
        func fail(_ why: String) -> [UInt8] { JSON.encode(ControlReply(ok: false, error: why)) }
        guard request.count == 1 else { return fail("expected one frame holding a JSON object, got \(request.count) frames") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(request[0])) as? [String: Any] else {
            return fail("request is not a JSON object")
        }
        guard let cmd = object["cmd"] as? String else { return fail("missing \"cmd\" (status, checkpoint, rollback)") }
        if role == .scorer && (cmd == "checkpoint" || cmd == "rollback") {
            return fail("a scorer keeps no model state of its own (--role scorer): send '\(cmd)' to the learner")
        }
        switch cmd {
        case "status":
            return JSON.encode(StatusReply(health: healthBody(), config: configSummary(), persistence: persistenceNow))
        case "checkpoint":
            // Written by the writer thread like a periodic one, so scoring goes on; the
            // reply waits for it.
            if checkpointWriter != nil {
                owedWaiting.append(client)
                advanceOwedCheckpoints()
                return nil
            }
            do {
                return checkpointReply(bytes: try writeCheckpoint(), modelVersion: model.version, error: nil)
            } catch {
                return checkpointReply(bytes: nil, modelVersion: model.version, error: error.description)
            }
        case "rollback":
            guard let healthy = lastHealthy else { return fail("no healthy model snapshot yet (one is kept after each healthy update)") }
            let restored: CFEnsemble
            do {
                restored = try CFEnsemble(config: config.model, restoring: healthy, version: model.version + 1)
                // Classifiers registered since keep their indices (pending instances carry them).
                try restored.cover(model.registry.names)
            } catch {
                return fail("rollback failed: \(error.description)")
            }
            let previous = model
            model = restored
            // Durable before it is answered: after a crash the journal replays onto the last
            // checkpoint's model, so that checkpoint must hold the rolled-back one.
            do { try writeCheckpoint() } catch {
                model = previous
                return fail("rollback refused, the model is unchanged: its checkpoint could not be written (\(error.description))")
            }
            logger.warning("rolled back to the last healthy model", metadata: [
                "from_version": "\(previous.version)", "healthy_version": "\(healthy.version)", "model_version": "\(restored.version)"])
            if role == .learner { publishModelState() }
            return JSON.encode(ControlReply(ok: true, model_version: model.version))
        default:
            return fail("unknown command '\(cmd)' (status, checkpoint, rollback)")
        }
    }

    private func configSummary() -> ConfigSummary {
        ConfigSummary(inputs: config.inputEndpoints, input_type: config.inputType.rawValue, output: config.outputEndpoint,
                      control: config.resolvedControlEndpoint, state_dir: config.stateDir,
                      latent_dim: config.model.latentDim, max_classifiers: config.model.maxClassifiers,
                      batch_size: config.batchSize, class_weights: config.model.classWeights,
                      join_window_ms: config.joinWindowMs, classifiers: model.registry.names, version: cfensembledVersion,
                      role: role.rawValue)
    }

    // MARK: State

    /// Labels still waiting for their instance are not checkpointed: a restart finds
    /// them counted unmatched, so the restored accounting balances.
    private var checkpointCounters: Counters {
        var c = counters
        c.unmatchedLabels &+= UInt64(earlyLabels.count)
        return c
    }

    /// The state as of now, but for the pending instances: the model, counters, quality
    /// and the labels not learnt yet (counted as learnt, so they must survive a crash).
    private func checkpointHead() -> Checkpoint.Head {
        lastCheckpointStarted = Clock.monotonic()
        return Checkpoint.Head(writtenAt: Clock.wall(), model: model.snapshot(), evicted: pending.evicted,
                        expired: pending.expired, counters: checkpointCounters, quality: quality,
                        batch: batch.isEmpty ? nil : batch, journal: rotateJournal())
    }

    /// Appends the counters to the journal when they changed since it last had them, so
    /// that what is flushed carries the counters that go with it.
    private func journalCounters() {
        guard let journal else { return }
        let c = checkpointCounters
        guard c != journalledCounters.counters || pending.evicted != journalledCounters.evicted
                || pending.expired != journalledCounters.expired else { return }
        journal.append(.counters(c, evicted: pending.evicted, expired: pending.expired))
        journalledCounters = (c, pending.evicted, pending.expired)
    }

    /// Starts a new journal file at the moment the state is frozen for a checkpoint;
    /// its number goes into the checkpoint (nil: no journal, or it could not go on).
    private func rotateJournal() -> UInt64? {
        guard let j = journal else { return nil }
        do {
            let n = try j.rotate()
            journalFailureLogged = false
            return n
        } catch {
            logger.error("journal: \(error.description); changes are not journalled until the next checkpoint")
            journalFailureLogged = true
            return nil
        }
    }

    /// Records a finished checkpoint, written or failed: metrics, the `status` view,
    /// the journal files it makes redundant, and the log line.
    private func checkpointFinished(bytes: Int?, error: String?, modelVersion: Int64, pending count: Int,
                                    seconds: Double, journal n: UInt64?, background: Bool) {
        metrics.recordCheckpoint(seconds: seconds, bytes: bytes)
        guard let bytes else {
            persistence.checkpoints_failed &+= 1
            logger.error("checkpoint failed: \(error ?? "unknown error")")
            return
        }
        persistence.checkpoints_written &+= 1
        persistence.last_checkpoint = .init(at: Clock.wall(), bytes: bytes, model_version: modelVersion, pending: count,
                                            ms: Int(seconds * 1000), background: background)
        checkpointDurable(journal: n)
        var meta: Logger.Metadata = [
            "path": "\(checkpoints.path)", "bytes": "\(bytes)", "model_version": "\(modelVersion)",
            "pending": "\(count)", "ms": "\(Int(seconds * 1000))",
        ]
        if background { meta["background"] = "true" }
        logger.info("checkpoint written", metadata: meta)
    }

    /// The `status` reply's view of checkpoints and the journal, as of now.
    private var persistenceNow: StatusReply.Persistence {
        var p = persistence
        p.checkpoint_in_progress = checkpointInFlight
        p.journal_file = journal?.number
        p.journal_bytes = journal?.bytes
        p.journal_error = journal?.failure
        return p
    }

    /// A checkpoint starting journal file `n` is durable: the files before the previous
    /// durable checkpoint's are no longer needed (that one stays restorable in full).
    private func checkpointDurable(journal n: UInt64?) {
        guard let j = journal, let n else { return }
        if let previous = journalOfLastCheckpoint { j.removeFiles(before: previous) }
        journalOfLastCheckpoint = n
    }

    /// Hands a frozen copy of the state to the writer thread; false if it is still busy.
    /// Freezing the pending store is O(1); while the write runs, each slab page the loop
    /// changes is copied once (see `PagedColumn`), so scoring never waits for the write.
    private func startBackgroundCheckpoint() -> Bool {
        guard let writer = checkpointWriter else { return (try? writeCheckpoint()) != nil }
        guard !writer.isBusy else {
            logger.debug("checkpoint: the previous write is still in progress, retrying")
            return false
        }
        let head = checkpointHead()
        let frozen = pending.frozen()
        // Only this thread submits, and the writer was idle: this cannot be refused.
        guard writer.submit({ Checkpoint(head: head, pending: frozen.snapshot().map { .init(id: $0.id, instance: $0.instance) }) })
        else { return false }
        checkpointInFlight = true
        return true
    }

    private func collectCheckpointOutcomes() {
        guard let writer = checkpointWriter else { return }
        for o in writer.takeOutcomes() {
            checkpointInFlight = false
            lastBackgroundOutcome = o
            checkpointFinished(bytes: o.bytes, error: o.error, modelVersion: o.modelVersion, pending: o.pending,
                               seconds: o.seconds, journal: o.journal, background: true)
        }
    }

    /// Writes a checkpoint on the engine thread, after any background write has finished
    /// (the control command and shutdown need it durable before they answer).
    @discardableResult
    private func writeCheckpoint() throws(CheckpointError) -> Int {
        if let writer = checkpointWriter {
            writer.waitIdle()
            collectCheckpointOutcomes()
        }
        let t0 = Clock.monotonic()
        let cp = Checkpoint(head: checkpointHead(),
                            pending: pending.snapshot().map { .init(id: $0.id, instance: $0.instance) })
        do {
            let bytes = try checkpoints.write(cp)
            checkpointFinished(bytes: bytes, error: nil, modelVersion: cp.head.model.version, pending: cp.pending.count,
                               seconds: Clock.monotonic() - t0, journal: cp.head.journal, background: false)
            return bytes
        } catch {
            checkpointFinished(bytes: nil, error: error.description, modelVersion: cp.head.model.version, pending: cp.pending.count,
                               seconds: Clock.monotonic() - t0, journal: nil, background: false)
            throw error
        }
    }

    /// Scores what is still joining, learns the partial batch, checkpoints, closes.
    private func shutdown() -> Bool {
        if role == .scorer { return shutdownScorer() }
        notifier.notify("STOPPING=1\nSTATUS=finishing the batch and writing a checkpoint")
        logger.info("stopping: finishing the batch and writing a checkpoint")
        for item in joins.drain() {
            scoreAndPublish(id: item.id, entries: item.joining.entries, ts: item.joining.ts, label: item.joining.label)
        }
        update()
        let written = Result { () throws(CheckpointError) in try writeCheckpoint() }
        let ok = (try? written.get()) != nil
        // Owed `checkpoint` replies: the final checkpoint is newer than the ones asked for.
        let owed = owedWriting + owedWaiting
        if !owed.isEmpty {
            var failure: String?
            if case let .failure(error) = written { failure = error.description }
            let reply = checkpointReply(bytes: try? written.get(), modelVersion: model.version, error: failure)
            for client in owed { sendControl(reply, to: client) }
            owedWriting.removeAll()
            owedWaiting.removeAll()
        }
        checkpointWriter?.stop()
        journal?.close()
        if ok, lease != nil {
            // Everything published is in the checkpoint: the next start continues at this version.
            do { try lease!.settle(at: model.version) } catch { logger.error("cannot settle the version lease: \(error)") }
        }
        for s in [modelOut, snapshotServer, forwardIn].compactMap({ $0 }) { s.close() }
        for s in inputs { s.close() }
        control.close()
        output.close()
        // Last: every socket it authenticates for is closed (until then a stranger's
        // handshake is still checked against the allow-list).
        zapThread?.stop()
        if let path = try? Endpoint(parsing: config.resolvedControlEndpoint, defaultMode: .bind).ipcPath { unlink(path) }
        logger.info("stopped", metadata: ["model_version": "\(model.version)", "scored": "\(counters.scored)"])
        return ok
    }
}

let cfensembledVersion = "0.1.0"

/// Counts refused handshakes across the ZAP thread's callbacks.
private final class RefusalLog: Sendable {
    private let count = Atomic<Int>(0)
    func next() -> Int { count.add(1, ordering: .relaxed).newValue }
}
