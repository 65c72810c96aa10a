import Foundation
import Testing

/// The metrics endpoint under hostile clients, through the real binary on loopback:
/// oversized headers are refused without burning a core, idle and trickling
/// connections are bounded, and none of it delays a scrape for long, SIGHUP or SIGTERM.
@Suite struct MetricsHardeningTests {
    /// Sends `bytes` (as much as the peer takes) and reads until the peer closes or the
    /// receive timeout; returns what was read.
    private func exchange(_ fd: Int32, _ bytes: [UInt8]) -> String {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            off += n
        }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func port(_ d: DaemonProcess) throws -> Int {
        let url = try #require(d.metricsURL, "no metrics URL in the log: \(d.log)")
        return try #require(url.port)
    }

    @Test(.timeLimit(.minutes(2)), arguments: [64 << 10, 1 << 20])
    func oversizedHeadersAreRefusedAndScrapingGoesOn(size: Int) throws {
        let d = try DaemonProcess()
        try d.start()
        let p = try port(d)
        let started = Date()
        let fd = tcpConnect(p, timeout: 10)
        #expect(fd >= 0)
        let request = Array("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ".utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: size)
            + Array("\r\n\r\n".utf8)
        let reply = exchange(fd, request)
        close(fd)
        #expect(!reply.contains("200 OK"), "an oversized header was served: \(reply.prefix(80))")
        // Refused while it was sent (not after parsing it for seconds); 10 s bounds a failure.
        #expect(Date().timeIntervalSince(started) < 10)
        let (status, body) = httpGet(URL(string: "http://127.0.0.1:\(p)/metrics")!)
        #expect(status == 200 && String(decoding: body, as: UTF8.self).contains("cfensembled_model_version"))
        #expect(try d.stop() == 0)
    }

    /// Forty connections that send nothing (more than the 16 served at once): SIGHUP is
    /// applied and a scrape succeeds once the idle ones are closed; a trickling client is
    /// closed at the connection deadline; SIGTERM stops the daemon at once.
    @Test(.timeLimit(.minutes(2)))
    func idleAndTricklingConnectionsAreBoundedAndDelayNoSignal() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "metrics.idle_timeout_s=2", "--set", "metrics.connection_deadline_s=6"])
        let p = try port(d)
        var held = (0..<40).map { _ in tcpConnect(p, timeout: 1) }
        defer { for fd in held where fd >= 0 { close(fd) } }
        #expect(held.filter { $0 >= 0 }.count == 40, "the kernel's backlog takes what is not served")

        kill(d.process!.processIdentifier, SIGHUP)
        let reloaded = Date().addingTimeInterval(10)
        while Date() < reloaded && !d.log.contains("configuration reloaded") { Thread.sleep(forTimeInterval: 0.05) }
        #expect(d.log.contains("configuration reloaded"), "SIGHUP not applied while the endpoint is full: \(d.log)")

        // The idle ones are closed after the idle timeout (2 s): a scrape gets through.
        var served = false
        let deadline = Date().addingTimeInterval(40)
        while !served && Date() < deadline {
            served = httpGet(URL(string: "http://127.0.0.1:\(p)/metrics")!, timeout: 5).status == 200
        }
        #expect(served)
        // Every held connection has been closed by the daemon by now (idle or deadline).
        for fd in held where fd >= 0 { #expect(exchange(fd, []).isEmpty) }
        for fd in held where fd >= 0 { close(fd) }
        held = []

        // A client that trickles a header a byte at a time is cut (a request not complete
        // within the idle timeout, or the connection deadline, 6 s, at the latest).
        let trickler = tcpConnect(p, timeout: 1)
        let cut = Date()
        var alive = true
        while alive && Date().timeIntervalSince(cut) < 30 {
            alive = send(trickler, "a", 1, Int32(MSG_NOSIGNAL)) == 1
            if alive {
                var b: UInt8 = 0
                if recv(trickler, &b, 1, Int32(MSG_DONTWAIT)) == 0 { alive = false }
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
        close(trickler)
        #expect(!alive, "a trickling client held its connection for 30 s")

        let stopping = (0..<20).map { _ in tcpConnect(p, timeout: 1) }
        defer { for fd in stopping where fd >= 0 { close(fd) } }
        #expect(try d.stop(timeout: 15) == 0)
    }
}
