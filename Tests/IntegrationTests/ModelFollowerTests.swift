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

    @Test func snapshotRequestsAreRateLimited() {
        var f = ModelFollower()
        var r = f.shouldRequest(now: 10, interval: 1); #expect(r)
        r = f.shouldRequest(now: 10.5, interval: 1); #expect(!r)
        r = f.shouldRequest(now: 11, interval: 1); #expect(r)
        #expect(f.requestsSent == 2)
    }
}
