import Logging
import Online

/// Everything the daemon can be configured with. Every key is in `ConfigSchema`
/// and documented in `config/cfensembled.yaml`.
struct DaemonConfiguration: Sendable, Equatable {
    enum InputType: String, Sendable, CaseIterable { case sub, pull }
    /// What is published while a critical health condition fires.
    enum Fallback: String, Sendable, CaseIterable {
        /// The simple average of the reported probabilities.
        case average
        /// The model as it was at the last healthy check.
        case last_healthy
        /// Keep publishing the live model (alerts only).
        case none
    }

    var inputEndpoints = ["@tcp://127.0.0.1:5555"]
    var inputType = InputType.sub
    var inputReceiveHWM = 100_000
    /// Connections one bound input endpoint holds; each one beyond is closed at once.
    var inputMaxConnections = 4096
    var maxMessageBytes = 65_536
    /// Entries one `pred_batch` or `label_batch` message may carry (the rest are rejected).
    var maxBatchEntries = 1024
    /// Largest batch body accepted.
    var maxBatchBytes = 1 << 20
    var joinWindowMs = 0
    var maxJoining = 100_000

    var outputEndpoint = "@tcp://127.0.0.1:5556"
    var outputSendHWM = 100_000
    /// Subscribers the bound output holds; each one beyond is closed at once.
    var outputMaxSubscribers = 64
    var errorRatePerSecond = 10.0

    var controlEndpoint = "@ipc://$STATE_DIR/control.sock"

    var stateDir = "./state"
    var pendingTTLSeconds = 2_592_000.0
    var maxPending = 1_000_000
    var checkpointIntervalSeconds = 300.0
    var checkpointGenerations = 3
    /// Journal what changes between checkpoints, replayed after a crash.
    var journal = true
    var journalFlushMs = 10.0
    /// fdatasync of the journal in the background (0: never).
    var journalFsyncMs = 1000.0
    /// A checkpoint is taken early once the journal holds this much.
    var journalMaxMB = 256

    var model = ModelConfiguration()
    var batchSize = 64
    var maxBatchDelaySeconds = 10.0
    /// Run the aggregator's part of each update on a thread of its own while scoring goes on.
    var updateThread = true

    var healthIntervalSeconds = 10.0
    var healthWindow = 2000
    var health = HealthConfiguration()
    /// The calibrated probability (docs/algorithm.md).
    var calibration = ScoreCalibrator.Configuration()
    /// Operating points: alert budgets (shares of traffic) whose score thresholds are
    /// reported, a precision to report the threshold of (0: none), and how many recent
    /// published scores the thresholds come from.
    var alertRates: [Double] = [0.001, 0.01]
    /// `output.explain`: each score says which expert published and each classifier's share.
    var explain = false
    var precisionTarget = 0.0
    var scoreWindow = 20_000
    /// The label-free drift windows (monitoring.drift_*): recent and reference sizes, and
    /// scored instances between checks.
    var driftWindows = DriftWindows()
    var fallback = Fallback.average

    var logLevel = "info"
    /// HOST:PORT of the Prometheus endpoint, or "off".
    var metricsListen = "127.0.0.1:9464"
    /// The classifier names that may be registered (empty: any name, up to
    /// model.max_classifiers). A registered classifier is never forgotten: where producers
    /// are not all trusted, this keeps made-up names out of the registry.
    var allowedClassifiers: [String] = []
    /// The same as the resolver takes it: nil for any name.
    var allowedClassifierSet: Set<String>? { allowedClassifiers.isEmpty ? nil : Set(allowedClassifiers) }
    /// Metrics connections served at once (more wait in the kernel's backlog), closed
    /// when idle this long, and closed this long after they opened whatever they do.
    var metricsMaxConnections = 16
    var metricsIdleSeconds = 10.0
    var metricsConnectionDeadlineSeconds = 30.0

    /// The daemon's CURVE secret key (from `cfe keygen`); empty: CURVE off.
    var curveSecretKeyFile = ""
    /// Client public keys admitted by the ZAP handler: a file (one key per line) or a
    /// directory of `*.pub` files.
    var allowedClients = ""
    /// The public key of the server at endpoints the daemon connects to ('>').
    var serverPublicKeyFile = ""

    /// Which part of the pipeline this process runs (docs/scale-out.md).
    var role = Role.all
    /// Learner: PUB of versioned model states; scorer: SUB to it.
    var modelEndpoint = "tcp://127.0.0.1:5557"
    /// Learner: ROUTER answering snapshot requests; scorer: DEALER asking it.
    var snapshotEndpoint = "tcp://127.0.0.1:5558"
    /// Learner: PULL of scored instances and labels; scorer: PUSH to it.
    var forwardEndpoint = "tcp://127.0.0.1:5559"
    /// How often the learner announces its model version (scorers detect gaps by it).
    var heartbeatIntervalSeconds = 1.0
    /// How long a starting scorer waits for the learner's model before scoring with a fresh one.
    var snapshotWaitSeconds = 5.0
    /// Learner: how long a label that arrived before its instance waits for it.
    var labelWaitSeconds = 5.0
    /// Scorer: messages queued towards the learner before forwarding drops (0: no limit).
    var forwardSendHWM = 1_000_000
    /// Scorer: every learner's forward endpoint (one PUSH each: every learner, active or
    /// standby, gets every scored instance and label); empty: `forwardEndpoint` alone.
    var forwardEndpoints: [String] = []
    /// etcd members (http:// or https:// URLs); empty: one learner, no election.
    var etcdEndpoints: [String] = []
    var etcdPrefix = "/cfensembled"
    /// The learners' lease: a leader that cannot renew it stops publishing within this.
    var etcdTTLSeconds = 5
    /// How often standbys and scorers look at the leader key.
    var etcdPollSeconds = 0.5
    var etcdUsername = ""
    var etcdPasswordFile = ""
    /// etcd's TLS (https:// endpoints): the CA that signed its certificate, and a client
    /// certificate and key when etcd asks for one.
    var etcdCAFile = ""
    var etcdCertFile = ""
    var etcdKeyFile = ""
    /// This learner's name in etcd (unique in the cluster); empty: host name and state directory.
    var clusterName = ""
    /// The host scorers reach this learner at, for tcp:// endpoints bound to a wildcard.
    var advertiseHost = ""

    var electionEnabled: Bool { !etcdEndpoints.isEmpty }

    /// Endpoints of the `cluster` keys as this role attaches them: the learner binds, a scorer connects.
    var clusterEndpointMode: Endpoint.Mode { role == .scorer ? .connect : .bind }

    var curveEnabled: Bool { !curveSecretKeyFile.isEmpty }

    var metricsEnabled: Bool { !metricsListen.isEmpty && metricsListen != "off" }

    /// `log.level` as a swift-log level: case-insensitive, `warn` and `err` accepted.
    var logLevelValue: Logger.Level? {
        let l = logLevel.lowercased()
        switch l {
        case "warn": return .warning
        case "err": return .error
        default: return Logger.Level(rawValue: l)
        }
    }

    /// The control endpoint with `$STATE_DIR` substituted.
    /// The largest input body of any kind (single or batch): what one received message
    /// can make the daemon hold.
    var maxInputBodyBytes: Int { max(maxMessageBytes, maxBatchBytes) }

    /// Bodies up to the limits are received and rejected with a reason when too large;
    /// libzmq itself disconnects a peer that sends more than this in one message.
    var zmqMaxMessageBytes: Int64 { max(Int64(maxMessageBytes) * 16, Int64(maxBatchBytes) * 4) }

    var resolvedControlEndpoint: String {
        controlEndpoint.replacingOccurrences(of: "$STATE_DIR", with: stateDir)
    }

    /// Cross-key checks that single-key parsing cannot make.
    func validate() throws(ConfigError) {
        if let why = model.validationError() { throw ConfigError(why) }
        if let why = health.validationError() { throw ConfigError(why) }
        if allowedClassifiers.count > model.maxClassifiers {
            throw ConfigError("model.allowed_classifiers lists \(allowedClassifiers.count) names, more than model.max_classifiers (\(model.maxClassifiers))")
        }
        if inputEndpoints.isEmpty { throw ConfigError("input.endpoints: at least one endpoint is required") }
        if maxMessageBytes < 256 || maxMessageBytes > 64 << 20 { throw ConfigError("input.max_message_bytes must be in 256...67108864") }
        if maxBatchEntries < 1 || maxBatchEntries > 65_536 { throw ConfigError("input.max_batch must be in 1...65536") }
        if maxBatchBytes < 256 || maxBatchBytes > 64 << 20 { throw ConfigError("input.max_batch_bytes must be in 256...67108864") }
        if joinWindowMs < 0 { throw ConfigError("input.join_window_ms must be >= 0") }
        if maxJoining < 1 { throw ConfigError("input.max_joining must be >= 1") }
        if inputReceiveHWM < 0 { throw ConfigError("input.rcvhwm must be >= 0 (0: no limit)") }
        if inputMaxConnections < 1 { throw ConfigError("input.max_connections must be >= 1") }
        if outputMaxSubscribers < 1 { throw ConfigError("output.max_subscribers must be >= 1") }
        if outputSendHWM < 0 { throw ConfigError("output.sndhwm must be >= 0 (0: no limit)") }
        if !(errorRatePerSecond >= 0) { throw ConfigError("output.error_rate_per_s must be >= 0") }
        if !(1...1024).contains(metricsMaxConnections) { throw ConfigError("metrics.max_connections must be in [1, 1024]") }
        if !(metricsIdleSeconds > 0 && metricsIdleSeconds <= 3600) { throw ConfigError("metrics.idle_timeout_s must be in (0, 3600]") }
        if !(metricsConnectionDeadlineSeconds > 0 && metricsConnectionDeadlineSeconds <= 3600) {
            throw ConfigError("metrics.connection_deadline_s must be in (0, 3600]")
        }
        if stateDir.isEmpty { throw ConfigError("state.dir must not be empty") }
        if !(pendingTTLSeconds > 0) { throw ConfigError("state.pending_ttl_s must be > 0") }
        if maxPending < 1 { throw ConfigError("state.max_pending must be >= 1") }
        if !(checkpointIntervalSeconds >= 0) { throw ConfigError("state.checkpoint_interval_s must be >= 0 (0: only at shutdown and on request)") }
        if checkpointGenerations < 1 || checkpointGenerations > 100 { throw ConfigError("state.checkpoint_generations must be in 1...100") }
        if !(journalFlushMs > 0 && journalFlushMs <= 10_000) { throw ConfigError("state.journal_flush_ms must be in (0, 10000]") }
        if journalMaxMB < 1 { throw ConfigError("state.journal_max_mb must be >= 1") }
        if !(journalFsyncMs >= 0) { throw ConfigError("state.journal_fsync_ms must be >= 0 (0: never)") }
        if batchSize < 1 || batchSize > 1_000_000 { throw ConfigError("learning.batch_size must be in 1...1000000") }
        if !(maxBatchDelaySeconds >= 0) { throw ConfigError("learning.max_batch_delay_s must be >= 0 (0: only full batches)") }
        if logLevelValue == nil {
            throw ConfigError("log.level: expected one of trace, debug, info, notice, warning, error, critical, got \"\(logLevel)\"")
        }
        if !(healthIntervalSeconds > 0) { throw ConfigError("health.interval_s must be > 0") }
        if healthWindow < 10 { throw ConfigError("health.window must be >= 10") }
        if calibration.positives < 1 || calibration.negatives < 1 {
            throw ConfigError("calibration.positives and calibration.negatives must be >= 1")
        }
        if let r = alertRates.first(where: { !($0 > 0 && $0 < 1) }) {
            throw ConfigError("monitoring.alert_rates: \(r) is not a share of traffic in (0, 1)")
        }
        if alertRates.count > 16 { throw ConfigError("monitoring.alert_rates: at most 16 rates") }
        if !(precisionTarget >= 0 && precisionTarget < 1) { throw ConfigError("monitoring.precision_target must be in [0, 1) (0: none)") }
        if scoreWindow < 100 || scoreWindow > 10_000_000 { throw ConfigError("monitoring.score_window must be in [100, 10000000]") }
        if driftWindows.recent < 100 || driftWindows.recent > 1_000_000 { throw ConfigError("monitoring.drift_window must be in [100, 1000000]") }
        if driftWindows.reference < 100 || driftWindows.reference > 1_000_000 { throw ConfigError("monitoring.drift_reference must be in [100, 1000000]") }
        if driftWindows.checkEvery < 1 || driftWindows.checkEvery > driftWindows.recent {
            throw ConfigError("monitoring.drift_check_every must be in [1, monitoring.drift_window]")
        }
        if driftWindows.estimate < 100 || driftWindows.estimate > 1_000_000 { throw ConfigError("monitoring.estimate_window must be in [100, 1000000]") }
        if calibration.minimumPerClass < 1 { throw ConfigError("calibration.min_per_class must be >= 1") }
        if !(calibration.priorLabels >= 0) || !(calibration.ridge > 0) || !(calibration.rateHalfLife >= 0)
            || !(calibration.evidenceHalfLife >= 0) || calibration.mixUntil < 0 {
            throw ConfigError("calibration.prior_labels, calibration.rate_half_life, calibration.evidence_half_life and calibration.mix_until must be >= 0 and calibration.ridge > 0")
        }
        for e in inputEndpoints { try checkEndpoint(e, key: "input.endpoints") }
        try checkEndpoint(outputEndpoint, key: "output.endpoint")
        try checkEndpoint(resolvedControlEndpoint, key: "control.endpoint")
        if !(heartbeatIntervalSeconds > 0) { throw ConfigError("cluster.heartbeat_interval_s must be > 0") }
        if !(snapshotWaitSeconds >= 0) { throw ConfigError("cluster.snapshot_wait_s must be >= 0") }
        if !(labelWaitSeconds >= 0) { throw ConfigError("cluster.label_wait_s must be >= 0") }
        if forwardSendHWM < 0 { throw ConfigError("cluster.forward_sndhwm must be >= 0 (0: no limit)") }
        if electionEnabled {
            if role == .all { throw ConfigError("cluster.etcd_endpoints: an election needs --role learner or --role scorer") }
            if etcdTTLSeconds < 2 { throw ConfigError("cluster.etcd_ttl_s must be >= 2") }
            if !(etcdPollSeconds > 0) || etcdPollSeconds > Double(etcdTTLSeconds) {
                throw ConfigError("cluster.etcd_poll_s must be > 0 and <= cluster.etcd_ttl_s")
            }
            if !etcdPrefix.hasPrefix("/") || etcdPrefix.hasSuffix("/") { throw ConfigError("cluster.etcd_prefix must start with '/' and not end with one") }
            for e in etcdEndpoints where !(e.hasPrefix("http://") || e.hasPrefix("https://")) {
                throw ConfigError("cluster.etcd_endpoints: expected http:// or https:// URLs, got '\(e)'")
            }
            if role == .learner {
                do { _ = try ElectionSetup.address(self) } catch { throw ConfigError(error.description) }
            }
            if etcdCertFile.isEmpty != etcdKeyFile.isEmpty { throw ConfigError("cluster.etcd_cert_file and cluster.etcd_key_file go together") }
            if etcdUsername.isEmpty != etcdPasswordFile.isEmpty {
                throw ConfigError("cluster.etcd_username and cluster.etcd_password_file go together")
            }
        }
        for e in forwardEndpoints {
            do { _ = try Endpoint(parsing: e, defaultMode: .connect) } catch { throw ConfigError("cluster.forward_endpoints: \(error)") }
        }
        if role != .all {
            for (key, e) in clusterEndpoints {
                do { _ = try Endpoint(parsing: e, defaultMode: clusterEndpointMode) } catch { throw ConfigError("\(key): \(error)") }
            }
        }
        if role == .scorer && joinWindowMs > 0 {
            throw ConfigError("input.join_window_ms: joining partial preds is not available with --role scorer (route all of an instance's preds to one process, or join upstream)")
        }
        try checkSecurity()
    }

    /// The `cluster` endpoints by key.
    var clusterEndpoints: [(String, String)] {
        var e = [("cluster.model_endpoint", modelEndpoint), ("cluster.snapshot_endpoint", snapshotEndpoint),
                 ("cluster.forward_endpoint", forwardEndpoint)]
        if role == .scorer { e += forwardEndpoints.map { ("cluster.forward_endpoints", $0) } }
        return e
    }

    /// CURVE needs an allow-list (encryption without authentication would admit anyone),
    /// a server key wherever the daemon connects, and guards a TCP control socket.
    private func checkSecurity() throws(ConfigError) {
        let all = inputEndpoints + [outputEndpoint, resolvedControlEndpoint]
        var endpoints = all.compactMap { try? Endpoint(parsing: $0, defaultMode: .bind) }
        if role != .all {
            endpoints += clusterEndpoints.compactMap { try? Endpoint(parsing: $0.1, defaultMode: clusterEndpointMode) }
        }
        if !curveEnabled {
            if !allowedClients.isEmpty || !serverPublicKeyFile.isEmpty {
                throw ConfigError("security.allowed_clients and security.server_public_key_file need security.curve_secret_key_file")
            }
            if let control = try? Endpoint(parsing: resolvedControlEndpoint, defaultMode: .bind), control.ipcPath == nil,
               !control.address.hasPrefix("inproc://") {
                throw ConfigError("control.endpoint \(resolvedControlEndpoint) is on the network: it accepts commands (rollback, checkpoint), so it requires CURVE (security.curve_secret_key_file and security.allowed_clients); or use ipc:// inside the state directory")
            }
            // Linux's abstract namespace (ipc://@name) has no file, so no permission keeps
            // another local user from sending `rollback`.
            if let control = try? Endpoint(parsing: resolvedControlEndpoint, defaultMode: .bind), let path = control.ipcPath,
               path.hasPrefix("@") {
                throw ConfigError("control.endpoint \(resolvedControlEndpoint) is in the abstract socket namespace, which file permissions cannot protect: any local user could send commands (rollback, checkpoint); use an ipc:// path inside the state directory, or CURVE")
            }
            return
        }
        if allowedClients.isEmpty {
            throw ConfigError("security.allowed_clients: required with CURVE (a file of client public keys, one per line, or a directory of .pub files)")
        }
        if serverPublicKeyFile.isEmpty, let e = endpoints.first(where: { $0.mode == .connect }) {
            throw ConfigError("security.server_public_key_file: required with CURVE because the daemon connects to \(e.address)")
        }
    }

    private func checkEndpoint(_ text: String, key: String) throws(ConfigError) {
        do {
            _ = try Endpoint(parsing: text, defaultMode: .bind)
        } catch {
            throw ConfigError("\(key): \(error)")
        }
    }
}

import Transport

/// The part of the pipeline one process runs.
enum Role: String, Sendable, CaseIterable {
    /// Learner and scorer in one process.
    case all
    /// Learns from labels joined to forwarded instances; publishes model states.
    case learner
    /// Scores preds with the learner's model; forwards instances and labels to it.
    case scorer
}

/// A configuration problem, phrased for one line on stderr.
struct ConfigError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
