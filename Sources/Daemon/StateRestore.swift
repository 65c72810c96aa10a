import Foundation
import Logging
import Online
import Wire

/// Brings back the state a previous run left in `state.dir`: the newest intact
/// checkpoint generation, the journal written since (after a crash), and for a learner
/// its version lease. A fresh directory starts a fresh model.
struct StateRestore {
    let config: DaemonConfiguration
    let logger: Logger
    let clock: DaemonClock

    struct Result {
        var state: RestoredState
        /// The checkpoint store of `state.dir`.
        var store: CheckpointStore
        /// The journal file the restored checkpoint started (files before it can go once
        /// the next checkpoint is durable); nil without a journal or a checkpoint.
        var journalOfCheckpoint: UInt64?
        /// The journal to append to from now on (nil: off, or a scorer).
        var journal: Journal?
        /// Learner: the version lease.
        var lease: VersionLease?
        /// The journal replay stopped at a gap (torn or damaged record, missing file):
        /// the state must be checkpointed before anything is journalled after the gap,
        /// or a second crash would replay up to the gap again and lose what came since.
        var checkpointBeforeServing = false
    }

    func restore() throws(StartupError) -> Result {
        let role = config.role
        let store = CheckpointStore(directory: config.stateDir, generations: config.checkpointGenerations)
        do { try store.prepare() } catch { throw StartupError(error.description) }

        // The newest intact generation; if checkpoints exist but none is intact, refuse to
        // start rather than silently start from nothing.
        var restored: Checkpoint?
        var restoredPath: String?
        do {
            // A scorer keeps no state: its model comes from the learner.
            if role != .scorer, let found = try store.readNewestGood() {
                restored = found.checkpoint
                restoredPath = found.path
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
        var state = RestoredState(model: CFEnsemble(config: config.model),
                                  pending: PendingStore(capacity: role == .scorer ? 1 : config.maxPending, ttl: config.pendingTTLSeconds),
                                  quality: RollingQuality(window: config.healthWindow),
                                  calibrator: ScoreCalibrator(configuration: config.calibration))
        if let cp = restored, let found = restoredPath {
            try apply(cp, to: &state, path: found)
            let bytes = ((try? FileManager.default.attributesOfItem(atPath: found))?[.size] as? Int) ?? 0
            state.checkpoint = .init(at: cp.head.writtenAt, bytes: bytes, model_version: cp.head.model.version,
                                     pending: cp.pending.count, ms: 0, background: false, restored: true)
        }

        // Drift windows of the configured sizes, which the journal's pending records extend.
        if state.health.drift?.windows != config.driftWindows { state.health.drift = DriftWatch(windows: config.driftWindows) }
        var result = Result(state: state, store: store)
        if role != .scorer && config.journal {
            // A crash: what came after the checkpoint (all of it if there was none yet).
            let from = restored?.head.journal ?? (restored == nil ? 0 : UInt64.max)
            let replay = Journal.replay(directory: config.stateDir, from: from, afterCheckpoint: restored != nil, now: clock.steady(),
                                        into: &result.state)
            for problem in replay.problems { logger.warning("journal: \(problem)") }
            result.checkpointBeforeServing = replay.stopped
            // A clean stop leaves an empty journal file (its final checkpoint started it):
            // records mean changes after the last checkpoint, i.e. an unclean stop.
            if replay.records > 0 {
                logger.notice("replayed the journal (the daemon had not stopped cleanly)", metadata: [
                    "files": "\(replay.files)", "records": "\(replay.records)", "labels_learnt": "\(replay.labelsLearnt)",
                    "updates": "\(replay.updates)", "model_version": "\(result.state.model.version)",
                    "pending": "\(result.state.pending.count)", "batch": "\(result.state.batch.count)",
                    "classifiers": "\(result.state.model.classifierCount)",
                ])
            }
            do { result.journal = try Journal(directory: config.stateDir, syncInterval: config.journalFsyncMs / 1000) } catch {
                throw StartupError(error.description)
            }
            result.journalOfCheckpoint = restored?.head.journal
        }
        if role == .learner {
            var lease = try VersionLease(directory: config.stateDir)
            if restored == nil {
                do { try lease.startLineage() } catch { throw StartupError("\(error)") }
            } else {
                let resume = lease.resumeVersion(after: result.state.model.version)
                if resume > result.state.model.version {
                    // Versions up to the reservation may have been published before a crash.
                    logger.warning("continuing model versions after the reserved ones (the learner did not stop cleanly)",
                                   metadata: ["checkpoint_version": "\(result.state.model.version)", "model_version": "\(resume)"])
                    do {
                        result.state.model = try CFEnsemble(config: config.model, restoring: result.state.model.snapshot(), version: resume)
                    } catch {
                        throw StartupError("cannot restore \(store.path): \(error.description)")
                    }
                }
            }
            result.lease = lease
        }
        return result
    }

    /// The checkpoint's model, pending instances, partial mini-batch, counters and
    /// quality window.
    private func apply(_ cp: Checkpoint, to state: inout RestoredState, path: String) throws(StartupError) {
        do { state.model = try CFEnsemble(config: config.model, restoring: cp.head.model) } catch {
            throw StartupError("cannot restore \(path): \(error.description)")
        }
        // The model covers every classifier an instance can name; a checkpoint that breaks
        // this (damaged, or written by a build with that defect) loses them loudly.
        let known = state.model.classifierCount
        var unusable = 0
        let now = clock.steady()
        for record in cp.pending {
            guard record.instance.entries.allSatisfy({ Int($0.classifier) < known }) else { unusable += 1; continue }
            // The wall clock may have gone back since: no arrival after now.
            var instance = record.instance
            instance.arrival = min(instance.arrival, now)
            state.pending.insert(id: record.id, instance)
        }
        state.pending.restoreCounters(evicted: cp.head.evicted, expired: cp.head.expired)
        // The partial mini-batch of a checkpoint taken while running (then a crash).
        let partial = cp.head.batch ?? []
        state.batch = partial.filter { $0.entries.allSatisfy { Int($0.classifier) < known } }
        unusable += partial.count - state.batch.count
        if unusable > 0 {
            logger.error("checkpoint: dropped instances naming classifiers its model does not have",
                         metadata: ["dropped": "\(unusable)", "classifiers": "\(known)"])
        }
        state.counters = cp.head.counters
        if let health = cp.head.health { state.health = health }
        if cp.head.quality.window == config.healthWindow { state.quality = cp.head.quality }
        // A changed calibration configuration starts the calibrator afresh.
        if let calibrator = cp.head.calibrator, calibrator.configuration == config.calibration { state.calibrator = calibrator }
        logger.info("restored checkpoint", metadata: [
            "model_version": "\(state.model.version)", "pending": "\(state.pending.count)", "batch": "\(state.batch.count)",
            "classifiers": "\(state.model.classifierCount)",
        ])
    }
}
