import Foundation
import Logging
import Online
import Transport
import Wire

/// A learner's side of the cluster: publishes the model state after every change and a
/// heartbeat in between, serves snapshot requests, and reserves model versions so that
/// they never go back across crashes.
final class LearnerLink {
    private let modelOut: ZMQSocket
    private let snapshotServer: ZMQSocket
    private var lease: VersionLease
    private let config: DaemonConfiguration
    private let logger: Logger
    private let metrics: DaemonMetrics
    /// The encoded full state last published, served to snapshot requests.
    private var lastState: [UInt8] = []
    private(set) var nextHeartbeat = Double.infinity
    private var statesPublished: UInt64 = 0
    private var snapshotsServed: UInt64 = 0
    private var malformedRequests: UInt64 = 0
    private var publishSeconds = 0.0
    /// With an election: the campaign, and what it showed at this turn of the loop.
    private let election: Elector?
    private(set) var leadership = Leadership()
    private var leaderChanges: UInt64 = 0
    private var heldBack = false

    init(modelOut: ZMQSocket, snapshotServer: ZMQSocket, lease: VersionLease, config: DaemonConfiguration,
         logger: Logger, metrics: DaemonMetrics, election: Elector? = nil) {
        self.election = election
        self.modelOut = modelOut
        self.snapshotServer = snapshotServer
        self.lease = lease
        self.config = config
        self.logger = logger
        self.metrics = metrics
    }

    var lineage: String { leadership.lineage ?? lease.lineage }

    /// May states, heartbeats and snapshot replies go out now (always, without an election)?
    private var active: Bool { election == nil || leadership.isActive(now: Clock.monotonic()) }

    /// A leader whose lease may have lapsed: no checkpoint either until it knows.
    var inDoubt: Bool { election != nil && leadership.inDoubt(now: Clock.monotonic()) }

    /// Each turn of the loop, with an election: takes in what the campaign decided. On
    /// winning, continues the versions above the cluster's reservation and publishes.
    func follow<S>(core: DaemonCore<S>) {
        guard let election else { return }
        election.modelVersion.store(core.model.version, ordering: .releasing)
        let now = election.shared.withLock { $0 }
        let before = leadership
        leadership = now
        guard now != before else { return }
        metrics.clusterIsLeader.record(now.role == .leader ? 1 : 0)
        metrics.clusterLeaderPresent.record(now.leaderEpoch > 0 ? 1 : 0)
        metrics.clusterEpoch.record(Double(now.leaderEpoch))
        if now.role == .leader && now.epoch != before.epoch {
            leaderChanges &+= 1
            metrics.clusterLeaderChanges.increment()
            core.model.continueVersions(above: now.base)
            logger.notice("active learner: publishing", metadata: ["epoch": "\(now.epoch)", "model_version": "\(core.model.version)"])
            // An update in progress publishes when it applies (its model is not whole before).
            if !core.model.updateInProgress { publish(core) }
            nextHeartbeat = Clock.monotonic() + config.heartbeatIntervalSeconds
        } else if before.role == .leader && now.role != .leader {
            leaderChanges &+= 1
            metrics.clusterLeaderChanges.increment()
        }
    }

    /// The state now, or a heartbeat (no model).
    private func state<S>(_ core: DaemonCore<S>, full: Bool) -> ModelState {
        let fallback = core.activeFallback?.rawValue ?? "none"
        return ModelState(
            lineage: lineage, version: core.model.version, status: core.health.status, fallback: fallback,
            ts: core.clock.wall(), model: full ? core.model.scoringSnapshot() : nil,
            healthy: full && fallback == "last_healthy" ? core.health.fallbackModel?.scoringSnapshot() : nil,
            calibration: core.calibration, epoch: election == nil ? nil : leadership.epoch)
    }

    /// Publishes the whole scoring model (after every update, rollback or change of
    /// fallback) and keeps it for snapshot requests.
    func publish<S>(_ core: DaemonCore<S>) {
        guard active else { return }
        let t0 = Clock.monotonic()
        defer { publishSeconds += Clock.monotonic() - t0 }
        if let election {
            // Versions the cluster has not reserved in etcd are not published (the next
            // state after the reservation grows carries the newest model anyway).
            let version = core.model.version
            if version > leadership.reserved - election.settings.block / 2 { election.wanted.store(version, ordering: .releasing) }
            guard version <= leadership.reserved else {
                if !heldBack { logger.warning("model state held back until etcd reserves its version", metadata: ["model_version": "\(version)"]) }
                heldBack = true
                return
            }
            heldBack = false
        } else {
            do { try lease.cover(core.model.version) } catch {
                logger.critical("cannot reserve model versions (\(error)); after a crash versions could repeat")
            }
        }
        lastState = state(core, full: true).encoded()
        do { _ = try modelOut.send(frames: [Array(ModelState.topicModel.utf8), lastState], dontWait: true) } catch {
            logger.error("model state not published: \(error)")
        }
        statesPublished &+= 1
        metrics.modelStatesPublished.increment()
    }

    /// A heartbeat when due; returns the next one's time.
    func tick<S>(now: Double, core: DaemonCore<S>) -> Double {
        if now >= nextHeartbeat {
            // A standby (or a lapsed leader) sends none, but its next one is still due later:
            // a past deadline would make the loop poll without a timeout.
            if active {
                _ = try? modelOut.send(frames: [Array(ModelState.topicHeartbeat.utf8), state(core, full: false).encoded()], dontWait: true)
            }
            nextHeartbeat = now + config.heartbeatIntervalSeconds
        }
        return nextHeartbeat
    }

    func start<S>(core: DaemonCore<S>, now: Double) {
        follow(core: core)
        publish(core)
        nextHeartbeat = now + config.heartbeatIntervalSeconds
    }

    /// Answers each `snapshot` request with the last published state.
    func serveSnapshots() {
        for _ in 0..<1000 {
            guard let request = try? snapshotServer.receiveFrames(dontWait: true) else { return }
            guard request.count == 2, request[1].elementsEqual(ModelState.snapshotRequest.utf8) else {
                // The first ones in full, then one line per 1000: a misbehaving peer must not flood the log.
                malformedRequests &+= 1
                let n = malformedRequests
                if n <= 10 || n % 1000 == 0 {
                    logger.warning("ignored a malformed snapshot request", metadata: ["frames": "\(request.count)", "malformed_total": "\(n)"])
                }
                continue
            }
            // Only the active learner answers: a standby's (or a lapsed leader's) state is not the cluster's.
            guard active, !lastState.isEmpty else { continue }
            _ = try? snapshotServer.send(frames: [request[0], Array(ModelState.topicModel.utf8), lastState], dontWait: true)
            snapshotsServed &+= 1
            metrics.modelSnapshotsServed.increment()
        }
    }

    /// After the final checkpoint: everything published is in it, so the next start
    /// continues at this version.
    func settle(at version: Int64) {
        guard election == nil else { return }
        do { try lease.settle(at: version) } catch { logger.error("cannot settle the version lease: \(error)") }
    }

    var clusterBody: HealthBody.Cluster {
        var c = HealthBody.Cluster(role: "learner")
        c.lineage = lease.lineage
        c.states_published = statesPublished
        c.snapshots_served = snapshotsServed
        c.state_bytes = lastState.count
        c.publish_us_mean = statesPublished > 0 ? publishSeconds / Double(statesPublished) * 1e6 : nil
        if election != nil {
            c.election = leadership.role.rawValue
            c.leader = leadership.leaderName
            c.epoch = leadership.leaderEpoch
            c.standbys = leadership.members.filter { $0 != leadership.leaderName }
            c.leader_changes = leaderChanges
            c.etcd_error = leadership.etcdError
        }
        return c
    }
}
