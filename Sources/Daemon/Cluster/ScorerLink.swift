import Foundation
import Logging
import Online
import Transport
import Wire

/// A scorer's side of the cluster: follows the learner's model (PUB states, snapshot
/// requests, heartbeats) and passes scored instances and labels on to it.
final class ScorerLink {
    private let modelIn: ZMQSocket
    private let snapshotClient: ZMQSocket
    /// One PUSH per learner (with an election, every learner gets every forward).
    private let forwardOuts: [ZMQSocket]
    /// With an election: the leader the model sockets are connected to.
    private(set) var following: LearnerAddress?
    private var leaderChanges: UInt64 = 0
    private var lastView: LeaderWatcher.View?
    /// The `no_active_learner` alert is firing.
    private var vacancyFiring = false
    private let config: DaemonConfiguration
    private let logger: Logger
    private let metrics: DaemonMetrics
    private var follower = ModelFollower()
    private var trailer = [UInt8](repeating: 0, count: ScoredTrailer.size)
    private var statesApplied: UInt64 = 0
    /// Bodies up to this size are forwarded as received; a larger one (padding, unknown
    /// fields, up to input.max_message_bytes) is re-encoded from what was decoded, so a
    /// queued forward costs what the learner uses, not what a producer sent.
    static let rawForwardLimit = 2048
    private var compact = JSONWriter(capacity: 4096)
    private var applySeconds = 0.0
    /// A batch's forwards, gathered while the batch is read (`beginBatch` to `endBatch`):
    /// its scored entries as one `scored_batch`, its labels as one `label_batch`.
    private var scoredBody = JSONWriter(capacity: 64 << 10)
    private var scoredTrailers: [UInt8] = []
    private var scoredCount = 0
    private var labelBody = JSONWriter(capacity: 16 << 10)
    private var labelCount = 0

    init(modelIn: ZMQSocket, snapshotClient: ZMQSocket, forwardOuts: [ZMQSocket], config: DaemonConfiguration,
         logger: Logger, metrics: DaemonMetrics) {
        self.modelIn = modelIn
        self.snapshotClient = snapshotClient
        self.forwardOuts = forwardOuts
        self.config = config
        self.logger = logger
        self.metrics = metrics
    }

    var modelSockets: [ZMQSocket] { [modelIn, snapshotClient] }

    /// Passes the instance on to the learner, which keeps it pending and learns from it
    /// when its label arrives. The body goes as received; the trailer adds what was
    /// computed here.
    /// `body`: the pred's body as received (a single message's, or its entry in a batch).
    func forwardScored<S>(_ scored: ScoredInstance, message: InputMessage, body: UnsafeRawBufferPointer, core: DaemonCore<S>) {
        ScoredTrailer.write(score: scored.score, average: scored.average, arrival: core.clock.steady(), into: &trailer)
        let sent = withForwardBody(message, body) { b in trailer.withUnsafeBytes { t in send(ScoredTrailer.topic, b, trailer: t) } }
        if sent { metrics.forwardedScored.increment() } else { core.forwardDropped(kind: "scored instance") }
    }

    /// A label goes to the learner, which holds its instance.
    func forwardLabel<S>(_ message: InputMessage, body: UnsafeRawBufferPointer, core: DaemonCore<S>) {
        let id = message.id
        if withForwardBody(message, body, { send("label", $0, trailer: nil) }) {
            core.labelForwarded()
        } else {
            core.forwardDropped(kind: "label")
            core.reject(DecodeError("label not passed on: the learner's queue is full (cluster.forward_sndhwm); is the learner running?",
                                    kind: "forward", topic: "label", id: id))
        }
    }

    // MARK: Batches

    /// Starts gathering a batch's forwards (the learner gets one message for its scored
    /// entries and one for its labels, not one per entry).
    func beginBatch() {
        scoredBody.reset()
        scoredBody.raw("{\"items\":[")
        scoredTrailers.removeAll(keepingCapacity: true)
        scoredCount = 0
        labelBody.reset()
        labelBody.raw("{\"items\":[")
        labelCount = 0
    }

    /// An entry the core scored: its body (as received, or compact when long) and trailer.
    func addScored<S>(_ scored: ScoredInstance, message: InputMessage, body: UnsafeRawBufferPointer, core: DaemonCore<S>) {
        if scoredCount > 0 { scoredBody.raw(",") }
        appendEntry(message, body: body, to: &scoredBody)
        ScoredTrailer.append(score: scored.score, average: scored.average, arrival: core.clock.steady(), to: &scoredTrailers)
        scoredCount += 1
    }

    /// A label entry to pass on.
    func addLabel(_ message: InputMessage, body: UnsafeRawBufferPointer) {
        if labelCount > 0 { labelBody.raw(",") }
        appendEntry(message, body: body, to: &labelBody)
        labelCount += 1
    }

    /// Sends what the batch gathered; counts what the learner's queue took or dropped.
    func endBatch<S>(core: DaemonCore<S>) {
        if scoredCount > 0 {
            scoredBody.raw("]}")
            let sent = scoredBody.bytes.withUnsafeBytes { b in
                scoredTrailers.withUnsafeBytes { t in send(ScoredTrailer.batchTopic, b, trailer: t) }
            }
            if sent {
                metrics.forwardedScored.increment(by: Int64(scoredCount))
            } else {
                core.forwardDropped(kind: "scored instances", count: scoredCount)
            }
            scoredCount = 0
        }
        if labelCount > 0 {
            labelBody.raw("]}")
            if labelBody.bytes.withUnsafeBytes({ send("label_batch", $0, trailer: nil) }) {
                core.labelForwarded(count: labelCount)
            } else {
                core.forwardDropped(kind: "labels", count: labelCount)
                core.reject(DecodeError("\(labelCount) labels of a label_batch not passed on: the learner's queue is full (cluster.forward_sndhwm); is the learner running?",
                                        kind: "forward", topic: "label_batch"), count: labelCount)
            }
            labelCount = 0
        }
    }

    private func appendEntry(_ message: InputMessage, body: UnsafeRawBufferPointer, to writer: inout JSONWriter) {
        withForwardBody(message, body) { writer.raw(bytes: $0) }
    }

    /// Calls `use` with what goes to the learner for a body: the body as received up to
    /// `rawForwardLimit` bytes, its compact encoding beyond.
    private func withForwardBody<R>(_ message: InputMessage, _ body: UnsafeRawBufferPointer,
                                    _ use: (UnsafeRawBufferPointer) -> R) -> R {
        if body.count <= Self.rawForwardLimit { return use(body) }
        encodeCompact(message)
        return compact.bytes.withUnsafeBytes(use)
    }

    /// Sends topic, body and (for scored instances) the trailer frame to every learner;
    /// false when no learner's queue took it. Once the first frame is accepted the rest of
    /// the message is too (ZeroMQ multipart is atomic).
    private func send(_ topic: StaticString, _ body: UnsafeRawBufferPointer, trailer: UnsafeRawBufferPointer?) -> Bool {
        var taken = false
        for out in forwardOuts {
            do {
                let first = topic.withUTF8Buffer { t in
                    Result { () throws(ZMQError) -> Bool in try out.send(UnsafeRawBufferPointer(t), more: true, dontWait: true) }
                }
                guard try first.get() else { continue }
                _ = try out.send(body, more: trailer != nil)
                if let trailer { _ = try out.send(trailer) }
                taken = true
            } catch {
                logger.error("forward to a learner failed: \(error)")
            }
        }
        return taken
    }

    // MARK: Following the leader (election)

    /// Fires `no_active_learner` when etcd has shown no leader for longer than a lease
    /// (learners' TTL + 2 s: a failover takes up to the TTL), resolves it when one is back.
    private func checkVacancy<S>(_ view: LeaderWatcher.View, core: DaemonCore<S>) {
        metrics.clusterLeaderPresent.record(view.leader == nil ? 0 : 1)
        metrics.clusterEpoch.record(Double(view.epoch))
        let vacant = view.vacantSince.map { Clock.monotonic() - $0 } ?? 0
        let firing = view.leader == nil && vacant > Double(config.etcdTTLSeconds) + 2
        guard firing != vacancyFiring else { return }
        vacancyFiring = firing
        let reason = firing
            ? "no active learner for \(Int(vacant)) s: scoring goes on with model version \(core.model.version), learning and model updates wait for a leader"
                + (view.etcdError.map { " (etcd: \($0))" } ?? "")
            : "an active learner is back: \(view.leader?.name ?? "?") at epoch \(view.epoch)"
        let body = AlertBody(alert: "no_active_learner", state: firing ? "firing" : "resolved", severity: "critical",
                             ts: core.clock.wall(), model_version: core.model.version, reason: reason,
                             metrics: ["vacant_s": vacant], action: "none")
        core.sink.publish(.alert, WireJSON.encode(body))
        metrics.publishedAlert.increment()
        if firing { logger.critical("\(reason)", metadata: ["alert": "no_active_learner"]) } else { logger.notice("\(reason)") }
    }

    /// What etcd shows: refuses states of older leaderships from now on, and reconnects
    /// the model sockets when the leader changed.
    func follow<S>(_ view: LeaderWatcher.View, core: DaemonCore<S>) {
        // Each turn of the loop: nothing to do while etcd shows the same leader.
        if view.leader != nil && view == lastView { return }
        lastView = view
        checkVacancy(view, core: core)
        follower.raise(epoch: view.epoch)
        guard let leader = view.leader, leader != following else { return }
        if let old = following {
            try? modelIn.disconnect(old.model)
            try? snapshotClient.disconnect(old.snapshot)
        }
        do {
            try modelIn.connect(leader.model)
            try snapshotClient.connect(leader.snapshot)
        } catch {
            logger.error("cannot connect to the leader \(leader.name): \(error)")
            return
        }
        // The first leader a scorer finds is no change (its status and metric agree).
        if following != nil {
            leaderChanges &+= 1
            metrics.clusterLeaderChanges.increment()
        }
        following = leader
        logger.notice("following the leader", metadata: ["leader": "\(leader.name)", "epoch": "\(view.epoch)",
                                                        "model_endpoint": "\(leader.model)"])
        follower.allowRequest()
        requestSnapshot()
    }

    /// The message as the protocol's body with only what the learner reads: id, ts,
    /// preds and label.
    private func encodeCompact(_ m: InputMessage) {
        compact.reset()
        compact.raw("{\"id\":")
        compact.string(m.id)
        if let ts = m.ts {
            compact.raw(",\"ts\":")
            compact.double(ts)
        }
        if !m.preds.isEmpty {
            compact.raw(",\"preds\":{")
            for (k, r) in m.preds.enumerated() {
                if k > 0 { compact.raw(",") }
                compact.string(r.name)
                compact.raw(":")
                compact.double(r.value)
            }
            compact.raw("}")
        }
        if let label = m.label {
            compact.raw(",\"label\":")
            compact.int(Int64(label))
        }
        compact.raw("}")
    }

    /// Model states (PUB updates, snapshot replies) and heartbeats.
    func drainModel<S>(_ socket: ZMQSocket, core: DaemonCore<S>) {
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
                apply(state, core: core)
            } else if f[0].elementsEqual(ModelState.topicHeartbeat.utf8) {
                heard(state, core: core)
            }
        }
    }

    private func apply<S>(_ state: ModelState, core: DaemonCore<S>) {
        guard let snapshot = state.model else { return }
        let missedBefore = follower.missedVersions, lineageBefore = follower.lineage
        switch follower.offer(lineage: state.lineage, version: state.version, epoch: state.epoch ?? 0) {
        case .ignore:
            return
        case .fenced:
            metrics.modelStatesFenced.increment()
            logger.warning("refused a model state from an older leadership", metadata: [
                "epoch": "\(state.epoch ?? 0)", "current_epoch": "\(follower.epoch)", "model_version": "\(state.version)"])
            return
        case .same:
            // Same model: only the learner's status, fallback or calibration may have changed.
            core.remote = state.heartbeat
            if let c = state.calibration { core.remoteCalibration = c }
            if state.fallback == "last_healthy", core.health.fallbackModel == nil, let h = state.healthy {
                core.health.setFallbackModel(try? CFEnsemble(config: config.model, restoring: h))
            }
            return
        case .apply:
            break
        }
        let model: CFEnsemble
        do { model = try CFEnsemble(config: config.model, restoring: snapshot) } catch {
            logger.error("cannot use the learner's model: \(error.description) (learner and scorers must share model.*)")
            return
        }
        core.install(model)
        core.health.setFallbackModel(state.healthy.flatMap { try? CFEnsemble(config: config.model, restoring: $0) })
        core.remote = state.heartbeat
        core.remoteCalibration = state.calibration ?? Calibration()
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
        logger.debug("model state applied", metadata: ["model_version": "\(model.version)", "epoch": "\(state.epoch ?? 0)",
                                                      "fallback": "\(state.fallback)"])
    }

    private func heard<S>(_ heartbeat: ModelState, core: DaemonCore<S>) {
        let epoch = heartbeat.epoch ?? 0
        if epoch < follower.epoch { return }
        if follower.isBehind(lineage: heartbeat.lineage, version: heartbeat.version, epoch: epoch) {
            requestSnapshot()
        } else if heartbeat.version == follower.version {
            core.remote = heartbeat
            if let c = heartbeat.calibration { core.remoteCalibration = c }
            if heartbeat.fallback == "last_healthy" && core.health.fallbackModel == nil { requestSnapshot() }
        }
    }

    /// Asks the learner for its current state (at most once per second).
    private func requestSnapshot() {
        guard follower.shouldRequest(now: Clock.monotonic(), interval: min(1, config.heartbeatIntervalSeconds)) else { return }
        _ = try? snapshotClient.send(frames: [Array(ModelState.snapshotRequest.utf8)], dontWait: true)
        metrics.modelSnapshotRequests.increment()
    }

    /// Before reading preds, waits up to `cluster.snapshot_wait_s` for the learner's
    /// model, so a scorer that joins late scores with the current model at once.
    func awaitFirstModel<S>(core: DaemonCore<S>, stop: StopFlag, each: () -> Void = {}) {
        let t0 = Clock.monotonic()
        var poller = ZMQPoller()
        poller.add(modelIn)
        poller.add(snapshotClient)
        while !follower.hasModel && !stop.isSet && Clock.monotonic() - t0 < config.snapshotWaitSeconds {
            each()
            requestSnapshot()
            _ = try? poller.poll(timeoutMs: 50)
            if poller.isReadable(0) { drainModel(modelIn, core: core) }
            if poller.isReadable(1) { drainModel(snapshotClient, core: core) }
        }
        if follower.hasModel {
            logger.info("model received from the learner", metadata: [
                "model_version": "\(core.model.version)", "lineage": "\(follower.lineage ?? "-")",
                "ms": "\(Int((Clock.monotonic() - t0) * 1000))"])
        } else if !stop.isSet {
            logger.warning("no model from the learner yet: scoring with a fresh model (the simple average) until it arrives",
                           metadata: ["waited_s": "\(config.snapshotWaitSeconds)"])
        }
    }

    func clusterBody(counters: Counters) -> HealthBody.Cluster {
        var c = HealthBody.Cluster(role: "scorer")
        c.lineage = follower.lineage
        c.states_applied = statesApplied
        c.versions_missed = follower.missedVersions
        c.snapshot_requests = follower.requestsSent
        c.labels_forwarded = counters.labelsForwarded
        c.forward_dropped = counters.forwardDropped
        c.apply_us_mean = statesApplied > 0 ? applySeconds / Double(statesApplied) * 1e6 : nil
        if let view = lastView {
            c.leader = view.leader?.name
            c.epoch = follower.epoch
            c.standbys = view.members.filter { $0 != view.leader?.name }
            c.states_fenced = follower.fencedStates
            c.leader_changes = leaderChanges
            c.etcd_error = view.etcdError
        }
        return c
    }
}
