import Foundation
import Testing
import Transport

/// CURVE with a ZAP allow-list, end to end through the real binary and real sockets:
/// an allowed client works on input, output and control; an unknown key and a plaintext
/// client get nothing and cannot inject.
@Suite(.serialized) struct SecurityTests {
    static var cfe: URL { DaemonProcess.binary.deletingLastPathComponent().appendingPathComponent("cfe") }

    private func keygen(_ prefix: String) throws -> CurveKeyPair {
        let (status, out) = try DaemonProcess.runToExit(["keygen", prefix], executable: Self.cfe)
        #expect(status == 0, "\(out)")
        let secret = try CurveKey.readOne(prefix + ".key")
        let pub = try CurveKey.readOne(prefix + ".pub")
        let pair = try CurveKeyPair(secretKey: secret)
        #expect(pair.publicKey == pub)
        return pair
    }


    /// Sends 30 labelled preds from a client that must not get in, over `producer`, and
    /// listens with `sub` for anything at all.
    private func inject(_ producer: ZMQSocket, _ sub: ZMQSocket, prefix: String) throws -> Int {
        try producer.setSendTimeout(200)
        for i in 0..<30 {
            _ = try? producer.send(strings: ["pred", predBody("\(prefix)\(i)", tenPreds(i, label: 1), label: 1)], dontWait: true)
            _ = try? producer.send(strings: ["label", #"{"id":"\#(prefix)\#(i)","label":1}"#], dontWait: true)
        }
        return try DaemonProcess.collect(sub, timeout: 1.5) { _ in false }.count
    }

    @Test func allowListAdmitsKnownClientsAndShutsOutTheRest() throws {
        guard CurveKeyPair.isAvailable else { return }
        let d = try DaemonProcess()
        let keys = d.directory.appendingPathComponent("keys").path
        let allowed = d.directory.appendingPathComponent("allowed").path
        try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: allowed, withIntermediateDirectories: true)
        let server = try keygen(keys + "/server")
        let client = try keygen(keys + "/client")
        let stranger = try keygen(keys + "/stranger")
        // The allow-list is a directory of .pub files: the client's is copied in, the stranger's is not.
        try FileManager.default.copyItem(atPath: keys + "/client.pub", toPath: allowed + "/client.pub")
        d.curveClient = (server.publicKey, client)
        try d.start(["--set", "security.curve_secret_key_file=\(keys)/server.key",
                     "--set", "security.allowed_clients=\(allowed)"])
        #expect(d.log.contains("CURVE on"))
        #expect(d.log.contains("security=curve-server"))

        // The allowed client: input, output and control all work.
        let producer = try d.producer()
        let sub = try d.subscriber(["score"])
        try d.waitForSubscription(sub, via: producer)
        let before = try d.status()
        let receivedBefore = try #require((before["accounting"] as? [String: Any])?["received"] as? Int)

        // An unknown key and a plaintext client, each with a producer and a subscriber.
        var strangers: [(String, ZMQSocket, ZMQSocket)] = []
        for (name, identity) in [("unknown", Optional(stranger)), ("plain", nil)] {
            let p = try ZMQSocket(context: d.context, kind: .push)
            let s = try ZMQSocket(context: d.context, kind: .sub)
            try s.subscribe("")
            if let identity {
                try p.makeCurveClient(serverKey: server.publicKey, keys: identity)
                try s.makeCurveClient(serverKey: server.publicKey, keys: identity)
            }
            try p.connect(d.input)
            try s.connect(d.output)
            strangers.append((name, p, s))
        }
        for (name, p, s) in strangers {
            let heard = try inject(p, s, prefix: "\(name)-")
            #expect(heard == 0, "\(name) client received \(heard) messages")
        }
        // A stranger's REQ to the control socket gets no answer.
        for identity in [Optional(stranger), nil] {
            let req = try ZMQSocket(context: d.context, kind: .req)
            try req.setReceiveTimeout(1000)
            try req.setSendTimeout(1000)
            if let identity { try req.makeCurveClient(serverKey: server.publicKey, keys: identity) }
            try req.connect(d.control)
            _ = try? req.send(strings: [#"{"cmd":"rollback"}"#], dontWait: true)
            #expect(try req.receiveFrames() == nil)
        }

        // The allowed client still works, and nothing the strangers sent was received.
        for i in 0..<20 {
            try producer.send(strings: ["pred", predBody("ok\(i)", tenPreds(i, label: i % 2), label: i % 2)])
        }
        let got = try DaemonProcess.collect(sub, timeout: 10) { $0.count >= 20 }
        let ids = Set(got.compactMap { $0.1["id"] as? String })
        #expect(ids == Set((0..<20).map { "ok\($0)" }))
        let after = try d.status()
        let accounting = try #require(after["accounting"] as? [String: Any])
        #expect(accounting["received"] as? Int == receivedBefore + 20, "\(accounting)")
        #expect(accounting["balanced"] as? Bool == true)
        #expect(d.log.contains("CURVE client refused"))
        #expect(d.log.contains("key=\(stranger.publicKey)"))
        // The plaintext client never reached the ZAP handler: its failed handshakes are
        // logged and counted all the same.
        #expect(d.log.contains("handshake failed before CURVE authentication"), "\(d.log)")

        // `cfe status` over CURVE with the client's key; without keys it gets no reply.
        let (ok, out) = try DaemonProcess.runToExit(
            ["status", "--state-dir", d.stateDir, "--json", "--curve-key", keys + "/client.key", "--server-key", keys + "/server.pub"],
            executable: Self.cfe)
        #expect(ok == 0 && out.contains("\"model_version\""), "\(out)")
        let (refused, _) = try DaemonProcess.runToExit(["status", "--state-dir", d.stateDir, "--timeout", "1"], executable: Self.cfe)
        #expect(refused != 0)

        // SIGHUP re-reads the allow-list: the stranger's key added, a new connection of it works.
        try FileManager.default.copyItem(atPath: keys + "/stranger.pub", toPath: allowed + "/stranger.pub")
        kill(try #require(d.process?.processIdentifier), SIGHUP)
        #expect(d.waitForLog("security.allowed_clients (2 keys)"), "\(d.log)")
        let req = try ZMQSocket(context: d.context, kind: .req)
        try req.setReceiveTimeout(5000)
        try req.makeCurveClient(serverKey: server.publicKey, keys: stranger)
        try req.connect(d.control)
        try req.send(strings: [#"{"cmd":"status"}"#])
        #expect(try req.receiveFrames() != nil)
        #expect(try d.stop() == 0)
    }

    @Test func networkControlRequiresCurveAndBadKeysAreRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfe-sec-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = ["--state-dir", dir + "/state", "--input", "@ipc://\(dir)/in.sock", "--output", "@ipc://\(dir)/out.sock",
                    "--set", "metrics.listen=off"]
        // A TCP control socket without CURVE: refused before anything binds.
        let (s1, o1) = try DaemonProcess.runToExit(base + ["--control", "@tcp://127.0.0.1:*"])
        #expect(s1 == 78, "\(o1)")
        #expect(o1.contains("requires CURVE"), "\(o1)")
        // CURVE without an allow-list.
        let pair = try CurveKeyPair.generate()
        try (pair.secretKey + "\n").write(toFile: dir + "/server.key", atomically: true, encoding: .utf8)
        chmod(dir + "/server.key", 0o600)
        let (s2, o2) = try DaemonProcess.runToExit(base + ["--set", "security.curve_secret_key_file=\(dir)/server.key"])
        #expect(s2 == 78 && o2.contains("security.allowed_clients: required"), "\(o2)")
        // A damaged key file and an allow-list with a typo are named.
        try "not-a-key\n".write(toFile: dir + "/bad.key", atomically: true, encoding: .utf8)
        chmod(dir + "/bad.key", 0o600)
        try "\(pair.publicKey)\n\(pair.publicKey.dropLast())\n".write(toFile: dir + "/allow", atomically: true, encoding: .utf8)
        let (s3, o3) = try DaemonProcess.runToExit(base + ["--set", "security.curve_secret_key_file=\(dir)/bad.key",
                                                           "--set", "security.allowed_clients=\(dir)/allow"])
        #expect(s3 == 78 && o3.contains("bad.key: not a 40-character Z85 key"), "\(o3)")
        let (s4, o4) = try DaemonProcess.runToExit(base + ["--set", "security.curve_secret_key_file=\(dir)/server.key",
                                                           "--set", "security.allowed_clients=\(dir)/allow"])
        #expect(s4 == 78 && o4.contains("key 2 is not a 40-character Z85 public key"), "\(o4)")
        // A secret key other users can read is refused, naming the file and its mode.
        try "\(pair.publicKey)\n".write(toFile: dir + "/allow", atomically: true, encoding: .utf8)
        chmod(dir + "/server.key", 0o644)
        let (s5, o5) = try DaemonProcess.runToExit(base + ["--set", "security.curve_secret_key_file=\(dir)/server.key",
                                                           "--set", "security.allowed_clients=\(dir)/allow"])
        #expect(s5 == 78 && o5.contains("server.key is accessible to other users (mode 644): chmod 600"), "\(o5)")
    }

    /// SIGTERM with a large pending store: the final checkpoint takes a while, and the
    /// sockets stay open meanwhile. A stranger that keeps trying through that window
    /// (input, output and control) is refused every time.
    @Test func strangersAreRefusedWhileTheDaemonShutsDown() throws {
        guard CurveKeyPair.isAvailable else { return }
        let d = try DaemonProcess()
        let keys = d.directory.appendingPathComponent("keys").path
        try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
        let server = try keygen(keys + "/server")
        let client = try keygen(keys + "/client")
        let stranger = try keygen(keys + "/stranger")
        d.curveClient = (server.publicKey, client)
        try d.start(["--set", "security.curve_secret_key_file=\(keys)/server.key",
                     "--set", "security.allowed_clients=\(keys)/client.pub", "--log-level", "info"])
        let producer = try d.producer()
        let n = 20_000
        for i in 0..<n { try producer.send(strings: ["pred", predBody("p\(i)", tenPreds(i, label: i % 2))]) }
        try d.waitForStatus("pending", atLeast: n, timeout: 60)

        let pid = try #require(d.process?.processIdentifier)
        let t0 = Date()
        kill(pid, SIGTERM)
        // From the moment shutdown starts until the process is gone: a new stranger
        // connection every few milliseconds, to each socket in turn.
        #expect(d.waitForLog("stopping:", timeout: 10))
        var events: [ZMQMonitor.Event] = []
        let targets: [(ZMQSocket.Kind, String)] = [(.push, d.input), (.sub, d.output), (.req, d.control)]
        var k = 0
        while d.process?.isRunning == true && Date().timeIntervalSince(t0) < 30 {
            let (kind, endpoint) = targets[k % targets.count]
            k += 1
            let s = try ZMQSocket(context: d.context, kind: kind)
            try s.makeCurveClient(serverKey: server.publicKey, keys: stranger)
            let monitor = try ZMQMonitor(s, context: d.context, events: .handshakes)
            try s.connect(endpoint)
            if let e = monitor.next(timeoutMs: 20) { events.append(e) }
            monitor.stop()
            s.close()
        }
        let stopped = Date().timeIntervalSince(t0)
        #expect(try d.stop() == 0)
        let admitted = events.filter { $0.event == .handshakeSucceeded }
        let refused = events.filter { ZMQMonitor.Events.handshakeFailed.contains($0.event) }
        #expect(admitted.isEmpty, "a stranger was admitted \(admitted.count) times during shutdown, first at \(admitted.first?.endpoint ?? "")")
        #expect(!refused.isEmpty, "no handshake was attempted during the \(stopped) s shutdown")
        print("shutdown took \(stopped) s; stranger handshakes refused: \(refused.count)")
    }
}
