import Foundation
import Testing
import Transport

/// CURVE with an election: the scorers' connections to whichever learner leads (made
/// when etcd names it, not at start) are CURVE connections like the others; a scorer
/// without the cluster's keys gets no model from either learner.
@Suite(.serialized) struct ElectionSecurityTests {
    @Test func scorersFollowTheLeaderOverCurveAndStrangersGetNothing() throws {
        guard CurveKeyPair.isAvailable else { return }
        let keys = FileManager.default.temporaryDirectory.appendingPathComponent("cfe-keys-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: keys + "/allowed", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: keys) }
        for name in ["learners", "scorer"] {
            let (status, out) = try DaemonProcess.runToExit(["keygen", "\(keys)/\(name)"], executable: SecurityTests.cfe)
            #expect(status == 0, "\(out)")
        }
        // The learners share one key pair (the scorers' server key); the scorer's key (also
        // the tests' client key) is the one allowed.
        try FileManager.default.copyItem(atPath: keys + "/scorer.pub", toPath: keys + "/allowed/scorer.pub")
        let learnerKey = try CurveKey.readOne(keys + "/learners.pub")
        let scorerPair = try CurveKeyPair(secretKey: try CurveKey.readOne(keys + "/scorer.key"))
        let allowed = ["--set", "security.allowed_clients=\(keys)/allowed"]
        let c = try ElectionTests.Cluster(
            scorers: 1,
            learnerExtra: ["--set", "security.curve_secret_key_file=\(keys)/learners.key"] + allowed,
            scorerExtra: ["--set", "security.curve_secret_key_file=\(keys)/scorer.key",
                          "--set", "security.server_public_key_file=\(keys)/learners.pub"] + allowed,
            learnerCurve: (learnerKey, scorerPair), scorerCurve: (scorerPair.publicKey, scorerPair))
        #expect(waitUntil(20) { c.applied(c.scorers[0]).contains { $0.epoch > 0 } }, "\(c.electionLog)")
        let first = try #require(try c.leader())
        let epoch = c.epoch(c.learners[first])
        c.learners[first].kill9()
        #expect(try waitUntil(20) { try c.leader() == 1 - first })
        #expect(waitUntil(20) { c.applied(c.scorers[0]).contains { $0.epoch > epoch } }, "\(c.electionLog)")

        // A scorer without keys: it finds the leader in etcd, but CURVE refuses its plaintext connections.
        let stranger = try DaemonProcess()
        try stranger.start(["--role", "scorer", "--set", "cluster.forward_endpoints=\(c.endpoint(0, "forward"))"] + c.common + c.etcdArgs)
        #expect(stranger.waitForLog("following the leader", timeout: 10))
        Thread.sleep(forTimeInterval: 2)
        #expect(c.applied(stranger).isEmpty, "a plaintext scorer applied a state")
        #expect(c.learners[1 - first].log.contains("security=curve-server"))
    }
}
