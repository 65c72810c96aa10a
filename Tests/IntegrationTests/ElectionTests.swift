import Foundation
import Synchronization
import Testing
import Transport

/// Learner failover through the real binary: etcd on loopback, two learners (one
/// active), two scorers following the leader etcd names, a producer with delayed labels.
/// The timing targets (score gaps, takeover time at 5,000 preds/s) are measured by
/// bench/failover/run.sh with the same code (`CFE_FAILOVER_RATE`, `CFE_FAILOVER_REPORT`);
/// these tests assert what must hold at any speed.
@Suite(.serialized) struct ElectionTests {
    static let ttl = 2

    final class Cluster {
        let etcd: EtcdServer
        var learners: [DaemonProcess] = []
        var scorers: [DaemonProcess] = []
        /// Processes under SIGSTOP (their control socket cannot answer).
        var paused: Set<ObjectIdentifier> = []
        let common = ["--set", "learning.batch_size=50", "--set", "learning.max_batch_delay_s=0.3",
                      "--set", "cluster.heartbeat_interval_s=0.2", "--set", "health.interval_s=0.5",
                      "--set", "cluster.label_wait_s=2", "--set", "state.checkpoint_interval_s=0",
                      "--set", "cluster.etcd_ttl_s=\(ElectionTests.ttl)", "--set", "cluster.etcd_poll_s=0.2",
                      "--set", "cluster.snapshot_wait_s=10"]

        /// Per role: extra arguments, and the keys the tests' clients use (CURVE).
        let learnerExtra: [String], scorerExtra: [String]

        init(scorers scorerCount: Int = 2, learnerExtra: [String] = [], scorerExtra: [String] = [],
             learnerCurve: (String, CurveKeyPair)? = nil, scorerCurve: (String, CurveKeyPair)? = nil) throws {
            self.learnerExtra = learnerExtra
            self.scorerExtra = scorerExtra
            etcd = try EtcdServer()
            for _ in 0..<2 { learners.append(try DaemonProcess()) }
            for _ in 0..<scorerCount { scorers.append(try DaemonProcess()) }
            for d in learners { d.curveClient = learnerCurve.map { (serverKey: $0.0, keys: $0.1) } }
            for d in scorers { d.curveClient = scorerCurve.map { (serverKey: $0.0, keys: $0.1) } }
            try startLearner(0)
            _ = try waitUntil(10) { try self.leader() == 0 }
            try startLearner(1)
            for k in scorers.indices { try startScorer(k) }
        }

        var etcdArgs: [String] { ["--set", "cluster.etcd_endpoints=\(etcd.url)", "--set", "cluster.etcd_prefix=/cfe-test"] }

        func endpoint(_ k: Int, _ name: String) -> String { "ipc://\(learners[k].directory.path)/\(name).sock" }

        func startLearner(_ k: Int) throws {
            try learners[k].start(["--role", "learner", "--set", "cluster.name=l\(k)",
                                   "--set", "cluster.model_endpoint=\(endpoint(k, "model"))",
                                   "--set", "cluster.snapshot_endpoint=\(endpoint(k, "snapshot"))",
                                   "--set", "cluster.forward_endpoint=\(endpoint(k, "forward"))"] + common + etcdArgs + learnerExtra)
        }

        func startScorer(_ k: Int) throws {
            try scorers[k].start(["--role", "scorer", "--set",
                                  "cluster.forward_endpoints=\(endpoint(0, "forward")),\(endpoint(1, "forward"))"] + common + etcdArgs
                                 + scorerExtra)
        }

        /// The status's `cluster` object; empty for a stopped (or paused) process.
        func cluster(_ d: DaemonProcess) -> [String: Any] {
            guard d.isRunning, !paused.contains(ObjectIdentifier(d)),
                  let s = try? d.controlRequest(["cmd": "status"], timeoutMs: 10_000) else { return [:] }
            return s["cluster"] as? [String: Any] ?? [:]
        }

        /// The learner that says it leads (and is running).
        func leader() throws -> Int? {
            learners.indices.first { cluster(learners[$0])["election"] as? String == "leader" }
        }

        /// What the processes logged about the election (for a failure's message).
        var electionLog: String {
            learners.map { d in
                do { return "status: \(try d.controlRequest(["cmd": "status"], timeoutMs: 3000)["cluster"] ?? "none")" } catch { return "status: \(error)" }
            }.joined(separator: "\n") + "\n" + (learners + scorers).enumerated().map { k, d in
                "\(k < 2 ? "learner \(k)" : "scorer \(k - 2)"):\n" + d.log.split(separator: "\n").filter {
                    $0.contains("etcd") || $0.contains("leader") || $0.contains("standby") || $0.contains("elect") || $0.contains("error")
                }.suffix(15).joined(separator: "\n")
            }.joined(separator: "\n")
        }

        func epoch(_ d: DaemonProcess) -> Int { cluster(d)["epoch"] as? Int ?? 0 }

        func learnt(_ d: DaemonProcess) -> Int {
            ((try? d.status()["accounting"]) as? [String: Any])?["labels_learnt"] as? Int ?? -1
        }

        /// Every model state a scorer applied, in order: (epoch, version), from its log.
        func applied(_ d: DaemonProcess) -> [(epoch: Int, version: Int)] {
            d.log.split(separator: "\n").filter { $0.hasSuffix("model state applied") }.compactMap { line in
                guard let e = Self.field(line, "epoch"), let v = Self.field(line, "model_version") else { return nil }
                return (e, v)
            }
        }

        static func field(_ line: Substring, _ name: String) -> Int? {
            guard let r = line.range(of: " \(name)=") else { return nil }
            return Int(line[r.upperBound...].prefix { $0.isNumber })
        }
    }

    /// Preds PUSHed round-robin to the scorers at `rate` a second, each one's label
    /// `delay` seconds later; scores received on a SUB to both scorers, with the largest
    /// gap between two consecutive ones.
    final class Load: @unchecked Sendable {
        let rate: Int, seconds: Double, delay: Double
        let labelsSent = Atomic<Int>(0)
        let scores = Atomic<Int>(0)
        let maxGapMicros = Atomic<Int>(0)
        private let stopping = Atomic<Bool>(false)
        /// Set: no more preds (the labels still due follow at once).
        let endEarly = Atomic<Bool>(false)
        /// Preds and labels in the order sent, for a reference learner fed the same.
        let record: Bool
        private(set) var sentOrder: [[String]] = []
        private let done = DispatchSemaphore(value: 0)
        private let consumerDone = DispatchSemaphore(value: 0)

        init(rate: Int, seconds: Double, delay: Double = 1, record: Bool = false) {
            self.record = record
            self.rate = rate
            self.seconds = seconds
            self.delay = delay
        }

        func start(_ c: Cluster) throws {
            let push = try ZMQSocket(context: c.etcdContext, kind: .push)
            try push.setSendTimeout(5000)
            for s in c.scorers { try push.connect(s.input) }
            let sub = try ZMQSocket(context: c.etcdContext, kind: .sub)
            try sub.subscribe("score")
            try sub.setReceiveTimeout(50)
            for s in c.scorers { try sub.connect(s.output) }
            Thread.sleep(forTimeInterval: 0.5)   // subscriptions reach the scorers
            // Each socket is used by its one thread only from here on.
            nonisolated(unsafe) let scoresIn = sub, predsOut = push
            Thread { [self] in
                var last: Double?
                while !stopping.load(ordering: .relaxed) {
                    guard let f = try? scoresIn.receiveFrames(), f.count == 2 else { continue }
                    let now = Date().timeIntervalSince1970
                    if let last { maxGapMicros.store(max(maxGapMicros.load(ordering: .relaxed), Int((now - last) * 1e6)), ordering: .relaxed) }
                    last = now
                    scores.add(1, ordering: .relaxed)
                }
                scoresIn.close()
                consumerDone.signal()
            }.start()
            Thread { [self] in
                let t0 = Date().timeIntervalSince1970
                var total = Int(Double(rate) * seconds)
                var sent = 0, labelled = 0
                while labelled < total {
                    let elapsed = Date().timeIntervalSince1970 - t0
                    if endEarly.load(ordering: .relaxed) { total = sent }
                    while sent < min(total, Int(elapsed * Double(rate))) {
                        let m = ["pred", predBody("f\(sent)", tenPreds(sent, label: sent % 5 == 0 ? 1 : 0))]
                        _ = try? predsOut.send(strings: m)
                        if record { sentOrder.append(m) }
                        sent += 1
                    }
                    while labelled < sent && (sent == total || Double(labelled) / Double(rate) + delay <= elapsed) {
                        let m = ["label", #"{"id":"f\#(labelled)","label":\#(labelled % 5 == 0 ? 1 : 0)}"#]
                        _ = try? predsOut.send(strings: m)
                        if record { sentOrder.append(m) }
                        labelled += 1
                        labelsSent.store(labelled, ordering: .relaxed)
                    }
                    Thread.sleep(forTimeInterval: 0.005)
                }
                predsOut.close(linger: 5000)
                done.signal()
            }.start()
        }

        /// Waits for the producer to finish, then stops the consumer after `settle` s.
        func finish(settle: Double = 1) {
            done.wait()
            Thread.sleep(forTimeInterval: settle)
            stopping.store(true, ordering: .relaxed)
            consumerDone.wait()
        }
    }
}

extension ElectionTests {
    static var rate: Int { Int(ProcessInfo.processInfo.environment["CFE_FAILOVER_RATE"] ?? "") ?? 1000 }

    /// For bench/failover/run.sh: one line of figures per test.
    static func report(_ line: String) {
        print("failover: \(line)")
        guard let path = ProcessInfo.processInfo.environment["CFE_FAILOVER_REPORT"], let h = FileHandle(forWritingAtPath: path) else { return }
        h.seekToEndOfFile()
        h.write(Data((line + "\n").utf8))
        try? h.close()
    }

    /// Each scorer's applied states: epochs never go back, versions always go up.
    static func checkHistories(_ c: Cluster) -> [[(epoch: Int, version: Int)]] {
        c.scorers.map { s in
            let h = c.applied(s)
            for (a, b) in zip(h, h.dropFirst()) {
                #expect(b.epoch >= a.epoch && b.version > a.version, "scorer applied \(a) then \(b)")
            }
            return h
        }
    }

    /// kill -9 of the active learner under load: the standby leads within the lease,
    /// the scorers follow it, scoring never stops, and every label is learnt once.
    @Test func killNineOfTheActiveLearner() throws {
        let c = try Cluster()
        let load = Load(rate: Self.rate, seconds: 8)
        try load.start(c)
        Thread.sleep(forTimeInterval: 3)
        let old = try #require(try c.leader(), "\(c.electionLog)")
        let standby = 1 - old
        let oldEpoch = c.epoch(c.learners[old])
        let killedAt = Date()
        c.learners[old].kill9()
        #expect(try waitUntil(20) { try c.leader() == standby }, "\(c.electionLog)\n\(c.learners[standby].log.suffix(3000))")
        let takeover = Date().timeIntervalSince(killedAt)
        #expect(waitUntil(20) { c.scorers.allSatisfy { c.epoch($0) > oldEpoch } })
        let followed = Date().timeIntervalSince(killedAt)
        load.finish()
        let sent = load.labelsSent.load(ordering: .relaxed)
        _ = waitUntil(30) { c.learnt(c.learners[standby]) >= sent }
        let learnt = c.learnt(c.learners[standby])
        #expect(learnt >= Int((0.999 * Double(sent)).rounded(.up)), "learnt \(learnt) of \(sent)")
        #expect(learnt <= sent, "learnt \(learnt) of \(sent): some twice")
        let histories = Self.checkHistories(c)
        for h in histories { #expect(h.contains { $0.epoch > oldEpoch }) }
        let gap = Double(load.maxGapMicros.load(ordering: .relaxed)) / 1000
        Self.report(String(format: "kill9 rate=%d takeover_s=%.2f scorers_followed_s=%.2f max_score_gap_ms=%.1f scores=%d labels_sent=%d learnt=%d ttl_s=%d",
                           Self.rate, takeover, followed, gap, load.scores.load(ordering: .relaxed), sent, learnt, Self.ttl))
    }

    /// SIGSTOP of the active learner for twice the lease, then SIGCONT: the standby
    /// leads, no scorer applies a state of the old epoch after one of the new, and the
    /// old learner becomes a standby.
    @Test func pausedLeaderIsFenced() throws {
        let c = try Cluster()
        let load = Load(rate: min(Self.rate, 1000), seconds: 10)
        try load.start(c)
        Thread.sleep(forTimeInterval: 2.5)
        let old = try #require(try c.leader())
        let oldEpoch = c.epoch(c.learners[old])
        let pid = try #require(c.learners[old].process?.processIdentifier)
        kill(pid, SIGSTOP)
        c.paused.insert(ObjectIdentifier(c.learners[old]))
        Thread.sleep(forTimeInterval: Double(2 * ElectionTests.ttl))
        #expect(try waitUntil(10) { try c.leader() == 1 - old })
        kill(pid, SIGCONT)
        c.paused.remove(ObjectIdentifier(c.learners[old]))
        load.finish(settle: 3)
        #expect(waitUntil(10) { c.cluster(c.learners[old])["election"] as? String == "standby" })
        for h in Self.checkHistories(c) {
            let first = try #require(h.firstIndex { $0.epoch > oldEpoch }, "the scorer never applied the new leader's state")
            #expect(h[first...].allSatisfy { $0.epoch > oldEpoch }, "old-epoch states after the new leader's: \(h)")
        }
        let sent = load.labelsSent.load(ordering: .relaxed)
        _ = waitUntil(30) { c.learnt(c.learners[1 - old]) >= sent }
        #expect(c.learnt(c.learners[1 - old]) == sent)
        Self.report("sigstop rate=\(min(Self.rate, 1000)) fenced=\(c.scorers.map { c.cluster($0)["states_fenced"] as? Int ?? -1 })")
    }

    /// With nothing to do, every process sleeps: a standby sends no heartbeat, but its
    /// loop must not be woken by one that is due (once it was, a standby spun a core).
    /// CPU time used over 3 s; a spinning loop uses most of it even on a loaded machine.
    @Test func idleLearnersAndScorersSleep() throws {
        let c = try Cluster()
        #expect(waitUntil(10) { c.scorers.allSatisfy { c.epoch($0) > 0 } })
        Thread.sleep(forTimeInterval: 1)
        let everyone = c.learners + c.scorers
        let before = try everyone.map { try $0.cpuSeconds() }
        Thread.sleep(forTimeInterval: 3)
        let used = try zip(everyone, before).map { try $0.cpuSeconds() - $1 }
        #expect(used.allSatisfy { $0 < 0.6 }, "CPU seconds in 3 s (learners, then scorers): \(used)")
    }

    /// etcd down for 30 s: scoring goes on, no learner publishes without a lease, a
    /// leader is back after etcd, and every label is learnt.
    @Test func etcdDown() throws {
        let c = try Cluster()
        let load = Load(rate: min(Self.rate, 300), seconds: 40)
        try load.start(c)
        Thread.sleep(forTimeInterval: 3)
        let leader = try #require(try c.leader())
        func published() -> Int { c.cluster(c.learners[leader])["states_published"] as? Int ?? -1 }
        c.etcd.stop()
        Thread.sleep(forTimeInterval: Double(ElectionTests.ttl) + 0.5)
        let (p1, s1) = (published(), load.scores.load(ordering: .relaxed))
        Thread.sleep(forTimeInterval: 30 - Double(ElectionTests.ttl) - 0.5)
        let (p2, s2) = (published(), load.scores.load(ordering: .relaxed))
        #expect(p1 == p2, "a learner published without a lease: \(p1) then \(p2) states")
        #expect(s2 > s1 + 1000, "scoring stopped while etcd was down: \(s1) then \(s2) scores")
        try c.etcd.start()
        #expect(try waitUntil(20) { try c.leader() != nil })
        let now = try #require(try c.leader())
        let epoch = c.epoch(c.learners[now])
        #expect(waitUntil(20) { c.scorers.allSatisfy { c.epoch($0) == epoch } })
        load.finish()
        let sent = load.labelsSent.load(ordering: .relaxed)
        _ = waitUntil(30) { c.learnt(c.learners[now]) >= sent }
        #expect(c.learnt(c.learners[now]) == sent)
        _ = Self.checkHistories(c)
        Self.report("etcd_down published_during=\(p2 - p1) scores_during=\(s2 - s1) leader_after=l\(now)")
    }
}

extension ElectionTests {
    /// Ten failovers in a row, each a kill -9, a SIGSTOP past the lease or a clean stop
    /// of the active learner (fixed seed), under load: no scorer's versions ever go back,
    /// the labels the final leader learnt are counted, and its model is compared with a
    /// single learner fed the same preds and labels in the order sent.
    @Test func tenFailoversInARow() throws {
        let c = try Cluster()
        let load = Load(rate: min(Self.rate, 300), seconds: 600, record: true)
        try load.start(c)
        var rng = SplitMix(seed: 30)
        var actions: [String] = []
        Thread.sleep(forTimeInterval: 2)
        for round in 0..<(Int(ProcessInfo.processInfo.environment["CFE_ROUNDS"] ?? "") ?? 10) {
            let old = try #require(try c.leader(), "round \(round): no leader\n\(c.electionLog)")
            let oldEpoch = c.epoch(c.learners[old])
            let action = ["kill9", "sigstop", "stop"][Int(rng.next() % 3)]
            actions.append(action)
            switch action {
            case "kill9":
                c.learners[old].kill9()
            case "stop":
                #expect(try c.learners[old].stop() == 0)
            default:
                kill(c.learners[old].process!.processIdentifier, SIGSTOP)
                c.paused.insert(ObjectIdentifier(c.learners[old]))
            }
            #expect(try waitUntil(20) { try c.leader() == 1 - old }, "round \(round) (\(action)): \(c.electionLog)")
            #expect(waitUntil(20) { c.scorers.allSatisfy { c.epoch($0) > oldEpoch } })
            if action == "sigstop" {
                Thread.sleep(forTimeInterval: Double(ElectionTests.ttl))
                kill(c.learners[old].process!.processIdentifier, SIGCONT)
                c.paused.remove(ObjectIdentifier(c.learners[old]))
            } else {
                try c.startLearner(old)
            }
            #expect(waitUntil(20) { c.cluster(c.learners[old])["election"] as? String == "standby" })
            Thread.sleep(forTimeInterval: 1)
        }
        if actions.isEmpty { Thread.sleep(forTimeInterval: 30) }
        load.endEarly.store(true, ordering: .relaxed)
        load.finish()
        let sent = load.labelsSent.load(ordering: .relaxed)
        let final = try #require(try c.leader())
        _ = waitUntil(20) { c.learnt(c.learners[final]) >= sent }
        Thread.sleep(forTimeInterval: 1)
        let learnt = c.learnt(c.learners[final])
        #expect(learnt <= sent)
        let histories = Self.checkHistories(c)
        // The reference: one learner alone, fed what the producer sent, in its order.
        let single = try DaemonProcess()
        try single.start(c.common)
        let push = try single.producer()
        for m in load.sentOrder { try push.send(strings: m) }
        try single.waitForStatus(timeout: 60) { (($0["accounting"] as? [String: Any])?["labels_learnt"] as? Int ?? 0) >= sent }
        Thread.sleep(forTimeInterval: 1)
        // Both score the same new instances: the cluster with its final leader's model
        // (through a scorer), the reference with its own.
        let version = try c.learners[final].status()["model_version"] as? Int ?? -1
        _ = waitUntil(10) { (try? c.scorers[0].status()["model_version"] as? Int) == version }
        let ours = try Self.scores(c.scorers[0]), theirs = try Self.scores(single)
        let gaps = theirs.keys.map { abs((ours[$0] ?? .nan) - theirs[$0]!) }
        let maxGap = gaps.max() ?? .nan, meanGap = gaps.reduce(0, +) / Double(max(1, gaps.count))
        Self.report(String(format: "ten_failovers actions=%@ labels_sent=%d learnt_by_final_leader=%d (%.4f) versions=%@ score_gap_vs_single mean=%.4f max=%.4f over %d instances",
                           actions.joined(separator: ","), sent, learnt, Double(learnt) / Double(max(1, sent)),
                           histories.map { "\($0.first?.version ?? -1)..\($0.last?.version ?? -1) (\($0.count) states)" }.joined(separator: "; "),
                           meanGap, maxGap, gaps.count))
        #expect(Double(learnt) >= 0.99 * Double(sent), "learnt \(learnt) of \(sent)")
        #expect(ours.count == 200 && theirs.count == 200)
        // Learners learn in step, each in the order forwards reach it and with its own
        // batch timing: their scores differ from a single learner's as two runs of one
        // learner fed in different orders do: measured 0.0031 mean, 0.0047 at most, with
        // 0 failovers (CFE_ROUNDS=0) and with 10 alike (docs/scale-out.md).
        #expect(meanGap <= 0.01 && maxGap <= 0.03, "scores differ from a single learner's by \(meanGap) on average, \(maxGap) at most")
    }
}

extension ElectionTests {
    /// The scores a daemon gives 200 new instances (`q0`...), once its output is live.
    static func scores(_ d: DaemonProcess) throws -> [String: Double] {
        let sub = try d.subscriber(["score"]), push = try d.producer()
        var live = false
        for k in 0..<100 where !live {
            try push.send(strings: ["pred", predBody("warm\(k)", tenPreds(k, label: 0))])
            live = try DaemonProcess.collect(sub, timeout: 0.2) { $0.contains { $0.0 == "score" } }.contains { $0.0 == "score" }
        }
        for i in 0..<200 { try push.send(strings: ["pred", predBody("q\(i)", tenPreds(100_000 + i * 7, label: 0))]) }
        let got = try DaemonProcess.collect(sub, timeout: 20) { $0.filter { ($0.1["id"] as? String)?.hasPrefix("q") == true }.count >= 200 }
        var out: [String: Double] = [:]
        for (_, body) in got { if let id = body["id"] as? String, id.hasPrefix("q"), let s = body["score"] as? Double { out[id] = s } }
        return out
    }
}

/// A fixed-seed generator (the failover sequence is the same in every run).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension ElectionTests.Cluster {
    var etcdContext: ZMQContext { learners[0].context }
}
