import Foundation

/// Debian's `etcd` (package etcd-server), one member on loopback with ports the kernel
/// chose and a data directory of its own, for the election tests. Stopped and started
/// again on the same ports and data (etcd down, then back).
final class EtcdServer {
    let directory: URL
    let clientPort: Int
    let peerPort: Int
    /// https with `tls` (the server's certificate, key and the CA its clients' must chain to).
    let tls: (cert: String, key: String, ca: String)?
    var url: String { "\(tls == nil ? "http" : "https")://127.0.0.1:\(clientPort)" }
    private var process: Process?

    static let binary: String? = ["/usr/bin/etcd", "/usr/local/bin/etcd"].first { FileManager.default.isExecutableFile(atPath: $0) }

    init(tls: (cert: String, key: String, ca: String)? = nil) throws {
        self.tls = tls
        guard Self.binary != nil else {
            throw DaemonError("etcd is not installed (Debian: apt-get install etcd-server; scripts/install-deps.sh does it)")
        }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("cfe-etcd-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // etcd takes no port 0: ports free at this moment.
        (clientPort, peerPort) = (try OperatorToolsTests.freePort(), try OperatorToolsTests.freePort())
        try start()
    }

    deinit {
        if let p = process, p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        try? FileManager.default.removeItem(at: directory)
    }

    func start() throws {
        let peer = "http://127.0.0.1:\(peerPort)"
        let args = ["--name", "t", "--data-dir", directory.appendingPathComponent("data").path,
                    "--listen-client-urls", url, "--advertise-client-urls", url,
                    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                    "--initial-cluster", "t=\(peer)", "--log-level", "warn"]
            + (tls.map { ["--cert-file", $0.cert, "--key-file", $0.key, "--trusted-ca-file", $0.ca, "--client-cert-auth"] } ?? [])
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary!)
        p.arguments = args
        let log = directory.appendingPathComponent("etcd.log").path
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let handle = FileHandle(forWritingAtPath: log)!
        handle.seekToEndOfFile()
        p.standardError = handle
        p.standardOutput = handle
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if tls == nil ? answers() : listening() { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw DaemonError("etcd did not start: \((try? String(contentsOf: directory.appendingPathComponent("etcd.log"), encoding: .utf8)) ?? "")")
    }

    /// etcdctl against this member (users, roles, auth).
    @discardableResult
    func ctl(_ args: [String]) throws -> String {
        let (status, out) = try DaemonProcess.runToExit(["--endpoints", url] + args, executable: URL(fileURLWithPath: "/usr/bin/etcdctl"),
                                                        environment: ["ETCDCTL_API": "3"])
        guard status == 0 else { throw DaemonError("etcdctl \(args.joined(separator: " ")): \(out)") }
        return out
    }

    /// etcd down: SIGTERM, and wait.
    func stop() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        process = nil
    }

    /// The client port accepts connections (with TLS, the handshake is the client's).
    func listening() -> Bool {
        let fd = tcpConnect(clientPort, timeout: 1)
        if fd >= 0 { close(fd) }
        return fd >= 0
    }

    /// A range request on the JSON gateway answered 200.
    func answers() -> Bool {
        let fd = tcpConnect(clientPort, timeout: 1)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let body = #"{"key":"AA=="}"#
        let request = "POST /v3/kv/range HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        guard request.withCString({ send(fd, $0, strlen($0), 0) }) > 0 else { return false }
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n > 0 && String(decoding: buffer[..<n], as: UTF8.self).hasPrefix("HTTP/1.1 200")
    }
}
