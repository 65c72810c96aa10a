import Foundation
import Logging
import Synchronization

/// A learner's campaign for leadership through etcd (docs/scale-out.md): holds a lease,
/// registers the learner under `<prefix>/members/<name>`, creates `<prefix>/leader` under
/// the lease when it is absent (the create revision is the leadership's epoch), renews
/// the lease every TTL/3, reserves model versions for the cluster in `<prefix>/version`
/// with writes fenced by the epoch, and steps down when the key is no longer its own.
///
/// `step` does what is due and returns when to call it again; the `ElectionThread` calls
/// it in a loop, tests call it with a virtual clock against an in-memory etcd.
final class Elector: @unchecked Sendable {
    struct Settings: Sendable {
        var name: String
        var prefix: String
        var ttl: Int
        /// How often a standby looks at the leader key (and the members).
        var poll: Double
        /// Versions reserved at a time.
        var block: Int64 = 1000
    }

    let settings: Settings
    private let api: EtcdAPI
    private let address: [UInt8]
    private let clock: @Sendable () -> Double
    private let logger: Logger
    /// What the event loop reads.
    let shared = Mutex(Leadership())
    /// Written by the event loop: its model's version (a new leader continues after it).
    let modelVersion = Atomic<Int64>(0)
    /// Written by the event loop: the version it needs reserved before publishing it.
    let wanted = Atomic<Int64>(0)
    /// Set at a clean stop: resign (delete the leader key if ours, revoke the lease).
    let resigning = Atomic<Bool>(false)

    private var state = Leadership()
    private var lease: Int64 = 0
    /// When the lease (as last renewed) can expire at the earliest, by our clock.
    private var leaseValidUntil = -Double.infinity
    private var nextRenewal = -Double.infinity
    private var nextPoll = -Double.infinity

    var leaderKey: String { settings.prefix + "/leader" }
    var memberKey: String { settings.prefix + "/members/" + settings.name }
    var versionKey: String { settings.prefix + "/version" }
    /// Margin kept between the end of publishing and the lease's earliest expiry.
    var margin: Double { max(0.1, Double(settings.ttl) / 10) }

    init(settings: Settings, api: EtcdAPI, address: LearnerAddress, clock: @escaping @Sendable () -> Double, logger: Logger) {
        self.settings = settings
        self.api = api
        self.address = (try? Array(JSONEncoder().encode(address))) ?? []
        self.clock = clock
        self.logger = logger
    }

    /// Does what is due; returns the clock time of the next step.
    func step() -> Double {
        do {
            try ensureLease()
            let now = clock()
            if now >= nextRenewal { try renew() }
            if state.role == .leader {
                try holdLeadership()
            } else if clock() >= nextPoll {
                try campaignOrFollow()
                nextPoll = clock() + settings.poll
            }
            if state.etcdError != nil {
                logger.notice("etcd answers again")
                state.etcdError = nil
            }
        } catch {
            if state.etcdError == nil {
                logger.error("etcd: \(error.description)", metadata: ["role": "\(state.role.rawValue)"])
            }
            state.etcdError = error.description
            publish()
            return clock() + min(0.25, settings.poll)
        }
        publish()
        let next = state.role == .leader ? nextRenewal : min(nextRenewal, nextPoll)
        return max(clock(), min(next, clock() + settings.poll))
    }

    private func publish() {
        let s = state
        shared.withLock { $0 = s }
    }

    private func ensureLease() throws(EtcdError) {
        guard lease == 0 else { return }
        let sent = clock()
        lease = try api.grant(ttl: settings.ttl)
        leaseValidUntil = sent + Double(settings.ttl)
        nextRenewal = sent + Double(settings.ttl) / 3
        _ = try api.put(memberKey, value: address, lease: lease, ifCreated: nil, at: 0)
    }

    private func renew() throws(EtcdError) {
        let sent = clock()
        let granted: Int
        do { granted = try api.keepAlive(lease) } catch {
            nextRenewal = clock() + 0.2
            throw error
        }
        guard granted > 0 else {
            // The lease expired (we were paused, or etcd was unreachable too long): what it
            // held is gone. A new one on the next step; a leader is one no longer.
            lease = 0
            if state.role == .leader { stepDown("its lease expired") }
            nextPoll = -Double.infinity
            throw EtcdError("the lease expired; taking a new one")
        }
        leaseValidUntil = sent + Double(granted)
        nextRenewal = sent + Double(settings.ttl) / 3
        if state.role == .leader { state.deadline = leaseValidUntil - margin }
    }

    /// Leader: checks the key is still ours and extends the version reservation when asked.
    private func holdLeadership() throws(EtcdError) {
        if clock() >= nextPoll {
            let kv = try api.get(leaderKey)
            guard kv?.createRevision == state.epoch else {
                stepDown(kv == nil ? "the leader key is gone" : "another learner holds the leader key")
                return
            }
            try refreshMembers()
            nextPoll = clock() + settings.poll
        }
        let want = wanted.load(ordering: .acquiring)
        if want > state.reserved - settings.block / 2, let lineage = state.lineage {
            let reserved = max(want, state.reserved) + settings.block
            if try writeReservation(VersionReservation(lineage: lineage, reserved: reserved)) {
                state.reserved = reserved
            } else {
                stepDown("another learner holds the leader key")
            }
        }
    }

    private func campaignOrFollow() throws(EtcdError) {
        switch try api.create(leaderKey, value: address, lease: lease) {
        case let .won(revision):
            try takeOffice(epoch: revision)
        case let .held(kv) where kv.lease == lease:
            // Our own key: an earlier attempt won and its answer was lost.
            try takeOffice(epoch: kv.createRevision)
        case let .held(kv):
            if state.role != .standby || state.leaderEpoch != kv.createRevision {
                let name = (try? JSONDecoder().decode(LearnerAddress.self, from: Data(kv.value)))?.name ?? "?"
                logger.notice("standby: following the leader", metadata: ["leader": "\(name)", "epoch": "\(kv.createRevision)"])
                state.leaderName = name
            }
            state.role = .standby
            state.leaderEpoch = kv.createRevision
            try refreshMembers()
        }
    }

    /// Won the key: reads the cluster's reservation, continues after it, reserves a block.
    private func takeOffice(epoch: Int64) throws(EtcdError) {
        let current = try api.get(versionKey).flatMap { try? JSONDecoder().decode(VersionReservation.self, from: Data($0.value)) }
        let lineage = current?.lineage ?? VersionLease.newLineage()
        let base = max(current?.reserved ?? 0, modelVersion.load(ordering: .acquiring))
        let reserved = base + settings.block
        state.epoch = epoch
        guard try writeReservation(VersionReservation(lineage: lineage, reserved: reserved)) else {
            state.epoch = 0
            return
        }
        state.role = .leader
        state.lineage = lineage
        state.base = base
        state.reserved = reserved
        state.leaderName = settings.name
        state.leaderEpoch = epoch
        state.deadline = leaseValidUntil - margin
        logger.notice("elected leader", metadata: ["epoch": "\(epoch)", "continuing_after_version": "\(base)", "lineage": "\(lineage)"])
        try refreshMembers()
    }

    private func writeReservation(_ r: VersionReservation) throws(EtcdError) -> Bool {
        let value = (try? Array(JSONEncoder().encode(r))) ?? []
        return try api.put(versionKey, value: value, lease: 0, ifCreated: leaderKey, at: state.epoch)
    }

    private func stepDown(_ why: String) {
        logger.warning("no longer the leader: \(why); standby", metadata: ["epoch": "\(state.epoch)"])
        state.role = .standby
        state.epoch = 0
        state.deadline = -Double.infinity
        state.leaderName = nil
        state.leaderEpoch = 0
        nextPoll = -Double.infinity
    }

    private func refreshMembers() throws(EtcdError) {
        let names = try api.list(prefix: settings.prefix + "/members/").compactMap {
            try? JSONDecoder().decode(LearnerAddress.self, from: Data($0.value)).name
        }
        state.members = names.filter { $0 != settings.name }.sorted()
    }

    /// At a clean stop: hands the leadership over at once rather than after the TTL.
    func resign() {
        shared.withLock { $0.role = .standby; $0.deadline = -Double.infinity }
        if state.role == .leader { try? api.delete(leaderKey, ifCreatedAt: state.epoch) }
        if lease != 0 { try? api.revoke(lease) }
        state.role = .standby
        lease = 0
    }
}
