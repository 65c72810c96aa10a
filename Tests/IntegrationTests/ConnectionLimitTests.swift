import Foundation
import Testing
import Transport
@testable import Daemon

/// Descriptor exhaustion through the real binary: with an open-file limit of 512, 700
/// bare TCP connections to the input (no handshake, as an attacker would open them)
/// leave the daemon alive, its control socket, checkpoints and metrics working, and a
/// real producer is scored once they are gone.
@Suite struct ConnectionLimitTests {
    /// Subscribers that never read each cost up to output.sndhwm queued messages: beyond
    /// output.max_subscribers they are closed at once, and the ones within keep receiving.
    @Test(.timeLimit(.minutes(2)))
    func subscribersBeyondTheLimitAreClosed() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "output.max_subscribers=10"])
        let context = try ZMQContext()
        var subs: [ZMQSocket] = []
        for _ in 0..<25 {
            let s = try ZMQSocket(context: context, kind: .sub)
            try s.subscribe("")
            try s.connect(d.output)
            subs.append(s)
        }
        let url = try #require(d.metricsURL)
        func value(_ name: String) -> Double {
            let text = String(decoding: httpGet(url).body, as: UTF8.self)
            return text.split(separator: "\n").first { $0.hasPrefix(name) }.flatMap { Double($0.split(separator: " ").last ?? "") } ?? -1
        }
        let deadline = Date().addingTimeInterval(20)
        while value(#"cfensembled_connections_refused_total{socket="output"}"#) < 15 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(value(#"cfensembled_connections_refused_total{socket="output"}"#) >= 15)
        #expect(value(#"cfensembled_connections{socket="output"}"#) <= 10)
        // libzmq reconnects a closed subscriber (and it is closed again): the daemon lives.
        #expect(try d.status()["ok"] as? Bool == true)
        for s in subs { s.close() }
        #expect(try d.stop() == 0)
    }

    @Test(.timeLimit(.minutes(3)))
    func connectionsBeyondTheLimitAreClosedAndTheDaemonLives() throws {
        // This test process needs 700 descriptors of its own.
        DescriptorLimit.raiseToHard()
        try #require(DescriptorLimit.soft >= 2048, "the test runner's open-file limit is too low")
        let d = try DaemonProcess()
        let port = try OperatorToolsTests.freePort()
        let endpoint = "tcp://127.0.0.1:\(port)"
        try d.start(["--set", "input.max_connections=100"], wrapper: ["/usr/bin/prlimit", "--nofile=512:512", "--"], input: endpoint)
        #expect(d.log.contains("nofile=512"), "\(d.log)")
        var fds: [Int32] = []
        defer { for fd in fds { close(fd) } }
        for _ in 0..<700 {
            let fd = tcpConnect(port)
            if fd >= 0 { fds.append(fd) }
        }
        #expect(fds.count > 512, "the kernel accepted \(fds.count)")
        Thread.sleep(forTimeInterval: 1)
        #expect(d.isRunning, "\(d.log)")
        let status = try d.status()
        #expect(status["ok"] as? Bool == true)
        #expect(try d.controlRequest(["cmd": "checkpoint"])["ok"] as? Bool == true, "\(d.log)")
        let url = try #require(d.metricsURL)
        let metrics = String(decoding: httpGet(url).body, as: UTF8.self)
        let open = metrics.split(separator: "\n").first { $0.hasPrefix(#"cfensembled_connections{socket="input"}"#) }
            .flatMap { Double($0.split(separator: " ").last ?? "") } ?? -1
        let refused = metrics.split(separator: "\n").first { $0.hasPrefix(#"cfensembled_connections_refused_total{socket="input"}"#) }
            .flatMap { Double($0.split(separator: " ").last ?? "") } ?? -1
        #expect(open >= 0 && open <= 100, "\(open) input connections open")
        #expect(refused >= 400, "\(refused) refused")
        #expect(d.log.contains("closed a connection beyond the limit"))

        for fd in fds { close(fd) }
        fds = []
        // A real producer, once the bare connections are gone.
        let context = try ZMQContext()
        let push = try ZMQSocket(context: context, kind: .push)
        try push.setSendTimeout(5000)
        try push.connect(endpoint)
        var scored = 0
        let deadline = Date().addingTimeInterval(30)
        var k = 0
        while scored == 0 && Date() < deadline {
            try push.send(strings: ["pred", predBody("after-\(k)", ["a": 0.4, "b": 0.6])])
            k += 1
            Thread.sleep(forTimeInterval: 0.2)
            scored = try d.status()["scored"] as? Int ?? 0
        }
        #expect(scored >= 1)
        push.close()
        #expect(try d.stop() == 0)
    }
}
