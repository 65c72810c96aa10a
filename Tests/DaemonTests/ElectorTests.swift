import Foundation
import Logging
import Testing
@testable import Daemon

/// The election against an in-memory etcd on a virtual clock: one leader at a time, a
/// paused leader stops publishing before its lease can expire (so before anyone else can
/// win), versions are reserved past every one published, and the failure cases.
@Suite struct ElectorTests {
    let clock = VirtualClock()
    let etcd: InMemoryEtcd
    let ttl = 3

    init() { etcd = InMemoryEtcd(clock: clock) }

    func elector(_ name: String) -> Elector {
        let address = LearnerAddress(name: name, model: "ipc://\(name)/m", snapshot: "ipc://\(name)/s", forward: "ipc://\(name)/f")
        return Elector(settings: .init(name: name, prefix: "/t", ttl: ttl, poll: 0.5), api: etcd, address: address,
                       clock: clock.read, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    func state(_ e: Elector) -> Leadership { e.shared.withLock { $0 } }

    /// Runs every elector's due steps while time advances by `seconds` in steps of `dt`,
    /// checking at each instant that at most one of them may publish.
    func run(_ electors: [Elector], for seconds: Double, dt: Double = 0.05, paused: Set<String> = [], checked: Bool = true) {
        var next = electors.map { _ in -Double.infinity }
        var t = 0.0
        while t < seconds {
            for (k, e) in electors.enumerated() where !paused.contains(e.settings.name) && clock.now >= next[k] {
                next[k] = e.step()
            }
            let active = electors.filter { state($0).isActive(now: clock.now) }
            #expect(!checked || active.count <= 1, "two learners may publish at \(clock.now): \(active.map(\.settings.name))")
            clock.advance(dt)
            t += dt
        }
    }

    @Test func theFirstToCampaignLeadsAndTheOtherFollows() {
        let a = elector("a"), b = elector("b")
        run([a], for: 0.1)
        run([a, b], for: 2)
        #expect(state(a).role == .leader && state(a).isActive(now: clock.now))
        #expect(state(b).role == .standby && state(b).leaderName == "a" && state(b).leaderEpoch == state(a).epoch)
        #expect(state(a).members == ["b"])
        // The leader key names a, is a's epoch, and lives under a's lease.
        #expect(etcd.value("/t/leader")?.createRevision == state(a).epoch)
        // Renewals keep it for far longer than the TTL.
        run([a, b], for: Double(ttl) * 5)
        #expect(state(a).role == .leader && state(b).role == .standby)
    }

    /// A leader paused past its lease (SIGSTOP, a long pause): it stops publishing at its
    /// deadline, before etcd can expire the lease; the standby wins only after the
    /// expiry; once resumed, the old leader finds its lease gone and becomes a standby.
    @Test func aPausedLeaderStopsBeforeItsLeaseCanExpire() throws {
        let a = elector("a"), b = elector("b")
        run([a], for: 0.1)
        run([a, b], for: 2)
        let deadline = state(a).deadline, epochA = state(a).epoch
        let expiry = clock.now + Double(ttl)   // at the latest: the last renewal was no later than now
        run([a, b], for: Double(ttl) * 3, paused: ["a"])   // `run` checks: never two may publish
        #expect(!state(a).isActive(now: clock.now))
        #expect(deadline < expiry - a.margin + 1e-9)
        #expect(state(b).role == .leader && state(b).epoch > epochA)
        run([a, b], for: 2)
        #expect(state(a).role == .standby && state(a).leaderName == "b" && state(a).epoch == 0)
        #expect(state(b).isActive(now: clock.now))
    }

    /// Versions: the first leader reserves a block; asked for more it extends; a new
    /// leader continues above the reservation even when its own model is behind.
    @Test func versionsAreReservedAcrossLeaderships() throws {
        let a = elector("a"), b = elector("b")
        a.modelVersion.store(40, ordering: .relaxed)
        run([a], for: 0.1)
        #expect(state(a).base == 40 && state(a).reserved == 1040)
        // Asked for a version past half the block: one more block.
        a.wanted.store(700, ordering: .relaxed)
        run([a], for: 0.1)
        #expect(state(a).reserved == 2040)
        b.modelVersion.store(650, ordering: .relaxed)
        run([a, b], for: Double(ttl) * 3, paused: ["a"])
        #expect(state(b).role == .leader && state(b).base == 2040 && state(b).lineage == state(a).lineage)
        // A new leader whose own model is further along continues above it.
        let c = elector("c")
        c.modelVersion.store(9_000, ordering: .relaxed)
        run([b, c], for: Double(ttl) * 3, paused: ["b"])
        #expect(state(c).role == .leader && state(c).base == 9_000 && state(c).reserved == 10_000)
    }

    /// The campaign's answer lost on the way back: the key is ours (our lease); the next
    /// step takes office rather than following itself.
    @Test func aLostAnswerToTheCampaignStillLeads() {
        let a = elector("a")
        etcd.loseAnswerOf = "create"
        _ = a.step()
        #expect(state(a).role != .leader && etcd.value("/t/leader") != nil)
        run([a], for: 1)
        #expect(state(a).role == .leader && state(a).leaderName == "a")
    }

    /// etcd unreachable: the leader stops at its deadline; when etcd is back after the
    /// lease expired, an election is held again and someone leads.
    @Test func etcdDownStopsPublishingAndLeadershipResumes() {
        let a = elector("a"), b = elector("b")
        run([a], for: 0.1)
        run([a, b], for: 1)
        etcd.down = true
        run([a, b], for: Double(ttl) * 4)
        #expect(!state(a).isActive(now: clock.now) && !state(b).isActive(now: clock.now))
        #expect(state(a).etcdError != nil)
        etcd.down = false
        run([a, b], for: Double(ttl) * 2)
        #expect([a, b].filter { state($0).isActive(now: clock.now) }.count == 1)
        #expect(state(a).etcdError == nil)
    }

    /// Someone removed the leader key (an operator, or etcd restored from a backup): the
    /// leader notices at its next look and steps down; a resigning leader hands over at once.
    @Test func aLeaderStepsDownWithoutItsKeyAndResignsAtAStop() {
        let a = elector("a"), b = elector("b")
        run([a], for: 0.1)
        run([a, b], for: 1)
        // Until the old leader's next look (cluster.etcd_poll_s) both may publish; the
        // scorers' epoch fencing covers that window (ModelFollowerTests).
        etcd.remove("/t/leader")
        run([a, b], for: 1.5, checked: false)
        #expect([a, b].filter { state($0).role == .leader }.count == 1)
        let leader = state(a).role == .leader ? a : b, other = leader === a ? b : a
        leader.resign()
        #expect(etcd.value("/t/leader") == nil)
        run([other], for: 1)
        #expect(state(other).role == .leader)
    }
}
