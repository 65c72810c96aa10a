import Testing
@testable import Daemon

/// The scorer's side of the Clone pattern: which model states it applies, and when it
/// notices that it missed one.
struct ModelFollowerTests {
    @Test func appliesNewerStatesAndCountsGaps() {
        var f = ModelFollower()
        #expect(!f.hasModel)
        #expect(f.isBehind(lineage: "a", version: 0))
        var d = f.offer(lineage: "a", version: 3); #expect(d == .apply)          // first state, whatever its version
        d = f.offer(lineage: "a", version: 3); #expect(d == .same)
        d = f.offer(lineage: "a", version: 2); #expect(d == .ignore)         // late or duplicate update
        d = f.offer(lineage: "a", version: 4); #expect(d == .apply)
        #expect(f.missedVersions == 0)
        d = f.offer(lineage: "a", version: 7); #expect(d == .apply)          // 5 and 6 never arrived
        #expect(f.missedVersions == 2)
        #expect(!f.isBehind(lineage: "a", version: 7))
        #expect(f.isBehind(lineage: "a", version: 8))                  // a heartbeat ahead: lost update
        #expect(f.isBehind(lineage: "b", version: 1))                  // a new lineage, even if lower
        d = f.offer(lineage: "b", version: 1); #expect(d == .apply)
        #expect(f.lineageChanges == 1 && f.version == 1)
    }

    /// With an election: a state from an older leadership than the newest seen (in a
    /// state, or shown by etcd) is refused, whatever its version; a newer leadership's
    /// first state is applied.
    @Test func statesOfOlderEpochsAreFenced() {
        var f = ModelFollower()
        var d = f.offer(lineage: "c", version: 40, epoch: 3); #expect(d == .apply)
        d = f.offer(lineage: "c", version: 1001, epoch: 7); #expect(d == .apply)    // the new leader
        d = f.offer(lineage: "c", version: 41, epoch: 3); #expect(d == .fenced)     // the old one, resumed
        d = f.offer(lineage: "c", version: 5000, epoch: 3); #expect(d == .fenced)   // even with a higher version
        #expect(f.fencedStates == 2 && f.version == 1001 && f.epoch == 7)
        #expect(!f.isBehind(lineage: "c", version: 5000, epoch: 3))              // its heartbeats too
        #expect(f.isBehind(lineage: "c", version: 1001, epoch: 9))
        // etcd shows epoch 9 before its first state arrives: epoch 7 is refused from now on.
        f.raise(epoch: 9)
        d = f.offer(lineage: "c", version: 1002, epoch: 7); #expect(d == .fenced)
        d = f.offer(lineage: "c", version: 2001, epoch: 9); #expect(d == .apply)
        #expect(f.epoch == 9 && f.fencedStates == 3)
        // The jumps at a change of leader are no missed versions; a gap within one is.
        #expect(f.missedVersions == 0)
        d = f.offer(lineage: "c", version: 2004, epoch: 9); #expect(d == .apply)
        #expect(f.missedVersions == 2)
    }

    @Test func snapshotRequestsAreRateLimited() {
        var f = ModelFollower()
        var r = f.shouldRequest(now: 10, interval: 1); #expect(r)
        r = f.shouldRequest(now: 10.5, interval: 1); #expect(!r)
        r = f.shouldRequest(now: 11, interval: 1); #expect(r)
        #expect(f.requestsSent == 2)
    }
}
