import Foundation
import Logging
import Synchronization
import Transport

/// A failure before the daemon could start serving (bad endpoint, unusable state).
struct StartupError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Every socket the daemon uses, bound or connected as configured.
struct DaemonSockets {
    let context: ZMQContext
    var inputs: [ZMQSocket] = []
    let output: ZMQSocket
    let control: ZMQSocket
    /// The ZAP handler, when CURVE is on (its thread is started by `BackgroundThreads`).
    var zap: ZAPHandler?
    /// Learner: model PUB, snapshot ROUTER, forward PULL.
    var modelOut: ZMQSocket?, snapshotServer: ZMQSocket?, forwardIn: ZMQSocket?
    /// Scorer: model SUB, snapshot DEALER, a forward PUSH per learner.
    var modelIn: ZMQSocket?, snapshotClient: ZMQSocket?, forwardOuts: [ZMQSocket] = []

    /// The socket files of the ipc:// endpoints this process bound (removed at a clean stop).
    var ipcPaths: [String] = []
    /// One per bound input and output socket: the connection limits.
    var guards: [ConnectionGuard] = []

    /// How long replies already sent on the control socket (a `checkpoint` answered by
    /// the final checkpoint) may take to reach their clients when it closes.
    static let controlLingerMs: Int32 = 1000

    /// Closes every socket; `forwardLinger` lets a scorer's queued forwards reach the learner.
    func closeAll(forwardLinger: Int32 = 0) {
        for g in guards { g.monitor.stop() }
        for s in inputs { s.close() }
        for s in forwardOuts { s.close(linger: forwardLinger) }
        for s in [modelOut, snapshotServer, forwardIn, modelIn, snapshotClient].compactMap({ $0 }) { s.close() }
        // With linger 0 a reply queued just before the close could be dropped before the
        // I/O thread wrote it (a client then waits for nothing): a bounded linger.
        control.close(linger: Self.controlLingerMs)
        output.close()
        for path in ipcPaths { unlink(path) }
    }
}

/// Creates, secures and binds or connects the daemon's sockets.
struct SocketSetup {
    let config: DaemonConfiguration
    let logger: Logger
    let metrics: DaemonMetrics
    /// CURVE: the daemon's keys, and the server key for '>' endpoints.
    private var curveKeys: CurveKeyPair?
    private var curveServerKey: String?

    init(config: DaemonConfiguration, logger: Logger, metrics: DaemonMetrics) {
        self.config = config
        self.logger = logger
        self.metrics = metrics
    }

    mutating func open() throws(StartupError) -> DaemonSockets {
        let context: ZMQContext, output: ZMQSocket, control: ZMQSocket
        do {
            context = try ZMQContext()
            output = try ZMQSocket(context: context, kind: .pub)
            // ROUTER (REQ clients as with REP): a `checkpoint` command is answered when its
            // background write ends, and other commands are served meanwhile.
            control = try ZMQSocket(context: context, kind: .router)
        } catch {
            throw StartupError("libzmq: \(error)")
        }
        var sockets = DaemonSockets(context: context, output: output, control: control)
        // The ZAP handler is bound before any CURVE socket exists, so no handshake can slip
        // through unchecked.
        if config.curveEnabled { sockets.zap = try startCurve(context) }
        try attach(output, config.outputEndpoint, role: "output") { s throws(ZMQError) in
            try s.setSendHighWaterMark(Int32(clamping: config.outputSendHWM))
        }
        if config.role != .all { try attachCluster(&sockets) }
        if config.role == .scorer && config.inputType == .sub {
            logger.warning("scorer with a SUB input: every scorer subscribed to the same producer scores every pred (use --input-type pull to load-balance, or give each scorer its own producers)")
        }
        for text in config.inputEndpoints {
            let socket: ZMQSocket
            do { socket = try ZMQSocket(context: context, kind: config.inputType == .sub ? .sub : .pull) } catch {
                throw StartupError("libzmq: \(error)")
            }
            try attach(socket, text, role: "input") { s throws(ZMQError) in
                try s.setReceiveHighWaterMark(Int32(clamping: config.inputReceiveHWM))
                // Bodies up to max_message_bytes (max_batch_bytes for a batch) are received
                // and rejected with a reason if too large; libzmq itself drops peers that
                // send far larger ones.
                try s.setMaxMessageSize(config.zmqMaxMessageBytes)
                if s.kind == .sub { try s.subscribe("") }
            }
            sockets.inputs.append(socket)
        }
        if let path = try attachControl(control) { sockets.ipcPaths.append(path) }
        sockets.ipcPaths += boundIPCFiles()
        try guardConnections(&sockets)
        return sockets
    }

    /// A connection limit on every input and output socket that binds, fitted to the
    /// descriptor limit (see `DescriptorLimit.fit`).
    private func guardConnections(_ sockets: inout DaemonSockets) throws(StartupError) {
        let bound = Self.connectionLimits(config)
        let limit = DescriptorLimit.soft
        let caps = DescriptorLimit.fit(bound.map(\.cap), limit: limit)
        if caps != bound.map(\.cap) {
            logger.warning("the open-file limit is too low for the connection limits; they are lowered to fit (raise LimitNOFILE)",
                           metadata: ["nofile": "\(limit)", "limits": "\(caps.map(String.init).joined(separator: ","))"])
        }
        for (socket, cap) in zip(bound, caps) {
            let role = socket.input == nil ? "output" : "input"
            do {
                sockets.guards.append(try ConnectionGuard(socket: socket.input.map { sockets.inputs[$0] } ?? sockets.output,
                                                          role: role, cap: cap, curve: config.curveEnabled,
                                                          context: sockets.context, logger: logger, metrics: metrics))
            } catch {
                throw StartupError("libzmq: cannot monitor the \(role) socket: \(error)")
            }
        }
    }

    /// The sockets that bind, with their connection limits as configured: each input by
    /// its index, then the output (`input` nil).
    static func connectionLimits(_ config: DaemonConfiguration) -> [(input: Int?, cap: Int)] {
        var out: [(input: Int?, cap: Int)] = config.inputEndpoints.indices.filter { binds(config.inputEndpoints[$0]) }
            .map { ($0, config.inputMaxConnections) }
        if binds(config.outputEndpoint) { out.append((nil, config.outputMaxSubscribers)) }
        return out
    }

    static func binds(_ text: String) -> Bool {
        (try? Endpoint(parsing: text, defaultMode: .bind))?.mode == .bind
    }

    /// The ipc:// files this process binds besides the control socket's (a connecting
    /// endpoint's file is its peer's).
    private func boundIPCFiles() -> [String] {
        var texts = [(config.outputEndpoint, Endpoint.Mode.bind)] + config.inputEndpoints.map { ($0, Endpoint.Mode.bind) }
        if config.role != .all {
            texts += [config.modelEndpoint, config.snapshotEndpoint, config.forwardEndpoint].map { ($0, config.clusterEndpointMode) }
        }
        return texts.compactMap { text, mode in
            guard let e = try? Endpoint(parsing: text, defaultMode: mode), e.mode == .bind else { return nil }
            return e.ipcPath
        }
    }

    /// The control socket: its ipc file created 0600 (umask during bind, no window in which
    /// another user could connect), a stale file from an unclean stop removed first.
    private func attachControl(_ control: ZMQSocket) throws(StartupError) -> String? {
        let text = config.resolvedControlEndpoint
        let endpoint = try? Endpoint(parsing: text, defaultMode: .bind)
        if let path = endpoint?.ipcPath, endpoint?.mode == .bind { unlink(path) }
        let oldMask = umask(0o077)
        let attached = Result { () throws(StartupError) in
            try attach(control, text, role: "control") { s throws(ZMQError) in
                try s.setSendTimeout(1000)
                // Requests are small JSON objects; libzmq drops a peer that sends more.
                try s.setMaxMessageSize(Int64(EventLoop.maxControlRequestBytes))
            }
        }
        umask(oldMask)
        try attached.get()
        guard let path = endpoint?.ipcPath, endpoint?.mode == .bind else { return nil }
        chmod(path, 0o600)
        let dir = (path as NSString).deletingLastPathComponent
        var info = stat()
        if stat(dir, &info) == 0, info.st_mode & 0o077 != 0 {
            logger.warning("the control socket's directory is accessible to other users; state.dir should be mode 0700",
                           metadata: ["dir": "\(dir)", "mode": "\(String(info.st_mode & 0o777, radix: 8))"])
        }
        return path
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

    /// Loads the keys and binds the ZAP handler.
    private mutating func startCurve(_ context: ZMQContext) throws(StartupError) -> ZAPHandler {
        guard CurveKeyPair.isAvailable else { throw StartupError("security: this libzmq was built without CURVE") }
        // As ssh does with its host keys: a secret key other users can read is no secret.
        var info = stat()
        if stat(config.curveSecretKeyFile, &info) == 0, info.st_mode & 0o077 != 0 {
            throw StartupError("security.curve_secret_key_file \(config.curveSecretKeyFile) is accessible to other users (mode \(String(info.st_mode & 0o777, radix: 8))): chmod 600 it (cfe keygen writes it so)")
        }
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
        let zap: ZAPHandler
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
        return zap
    }

    /// The learner binds (by default) a PUB for model states, a ROUTER for snapshot
    /// requests and a PULL for forwarded instances; a scorer connects the peers.
    private func attachCluster(_ sockets: inout DaemonSockets) throws(StartupError) {
        // A bare endpoint takes the role's default: the learner binds, a scorer connects.
        let mode = config.clusterEndpointMode
        let context = sockets.context
        func socket(_ kind: ZMQSocket.Kind) throws(StartupError) -> ZMQSocket {
            do { return try ZMQSocket(context: context, kind: kind) } catch { throw StartupError("libzmq: \(error)") }
        }
        let maxBytes = Int64(config.maxMessageBytes) * 16
        if config.role == .learner {
            let pub = try socket(.pub), router = try socket(.router), pull = try socket(.pull)
            // A scorer needs only the newest state (it asks for a snapshot when it missed
            // one): a few queued per scorer bound what one that never reads can cost.
            try attach(pub, config.modelEndpoint, role: "model", defaultMode: mode) { s throws(ZMQError) in try s.setSendHighWaterMark(16) }
            try attach(router, config.snapshotEndpoint, role: "snapshot", defaultMode: mode) { s throws(ZMQError) in
                // Replies beyond 2 unread ones to a peer are dropped (ROUTER drops, never blocks).
                try s.setSendHighWaterMark(2)
                // A request is one word; libzmq drops a peer that sends more than this.
                try s.setMaxMessageSize(1024)
            }
            try attach(pull, config.forwardEndpoint, role: "forward", defaultMode: mode) { s throws(ZMQError) in
                try s.setReceiveHighWaterMark(Int32(clamping: config.inputReceiveHWM))
                // Batches of scored instances are as large as the batches scorers receive.
                try s.setMaxMessageSize(max(maxBytes, config.zmqMaxMessageBytes))
            }
            sockets.modelOut = pub; sockets.snapshotServer = router; sockets.forwardIn = pull
        } else {
            let sub = try socket(.sub), dealer = try socket(.dealer)
            // With an election, they connect to the leader etcd names (and follow it).
            let fixed = !config.electionEnabled
            try attach(sub, fixed ? config.modelEndpoint : nil, role: "model", defaultMode: mode) { s throws(ZMQError) in
                try s.subscribe("")
                try s.setMaxMessageSize(64 << 20)
            }
            try attach(dealer, fixed ? config.snapshotEndpoint : nil, role: "snapshot", defaultMode: mode) { s throws(ZMQError) in
                try s.setMaxMessageSize(64 << 20)
            }
            // Every learner, leader or standby, gets every forward: one PUSH each.
            for endpoint in config.forwardEndpoints.isEmpty ? [config.forwardEndpoint] : config.forwardEndpoints {
                let push = try socket(.push)
                try attach(push, endpoint, role: "forward", defaultMode: mode) { s throws(ZMQError) in
                    try s.setSendHighWaterMark(Int32(clamping: config.forwardSendHWM))
                }
                sockets.forwardOuts.append(push)
            }
            sockets.modelIn = sub; sockets.snapshotClient = dealer
        }
    }

    /// `attach`, or (endpoint nil) the same options and CURVE client keys without a
    /// connection: the scorer connects it to the leader it learns of.
    private func attach(_ socket: ZMQSocket, _ text: String?, role: String, defaultMode: Endpoint.Mode,
                        configure: (ZMQSocket) throws(ZMQError) -> Void) throws(StartupError) {
        if let text { return try attach(socket, text, role: role, defaultMode: defaultMode, configure: configure) }
        do {
            try configure(socket)
            if let keys = curveKeys, let server = curveServerKey { try socket.makeCurveClient(serverKey: server, keys: keys) }
        } catch {
            throw StartupError("\(role) socket: \(error.reason)")
        }
    }
}

/// Counts refused handshakes across the ZAP thread's callbacks.
private final class RefusalLog: Sendable {
    private let count = Atomic<Int>(0)
    func next() -> Int { count.add(1, ordering: .relaxed).newValue }
}
