import Foundation
import Testing
import Transport

/// The real `cfensembled` binary, started as a child process on `ipc://` endpoints in
/// a temporary directory, with helpers to talk to it over real ZeroMQ sockets.
final class DaemonProcess {
    static let binary: URL = {
        if let env = ProcessInfo.processInfo.environment["CFENSEMBLED_BIN"] { return URL(fileURLWithPath: env) }
        var candidates: [URL] = []
        let argv0 = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        candidates.append(argv0.deletingLastPathComponent().appendingPathComponent("cfensembled"))
        candidates.append(argv0.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("cfensembled"))
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/cfensembled"))
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
    }()

    /// The Python with pyzmq for the tests that run Python: CFE_PYTHON (scripts/test.sh
    /// sets it to .venv/bin/python), else the repository's .venv, else python3.
    static let python: String = {
        if let env = ProcessInfo.processInfo.environment["CFE_PYTHON"], !env.isEmpty { return env }
        let venv = ExampleConfigTests.root.appendingPathComponent(".venv/bin/python").path
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : "python3"
    }()

    let directory: URL
    let stateDir: String
    let input: String
    let output: String
    var control: String { "ipc://\(stateDir)/control.sock" }
    let logPath: String
    private(set) var process: Process?
    let context: ZMQContext
    /// When the daemon runs with CURVE: its public key and this test client's key pair,
    /// applied to every socket the helpers make.
    var curveClient: (serverKey: String, keys: CurveKeyPair)?

    private func secure(_ s: ZMQSocket) throws {
        if let c = curveClient { try s.makeCurveClient(serverKey: c.serverKey, keys: c.keys) }
    }

    init(directory: URL? = nil) throws {
        let dir = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("cfe-it-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        self.directory = dir
        stateDir = dir.appendingPathComponent("state").path
        input = "ipc://\(dir.path)/in.sock"
        output = "ipc://\(dir.path)/out.sock"
        logPath = dir.appendingPathComponent("daemon.log").path
        context = try ZMQContext()
    }

    deinit {
        if let p = process, p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        try? FileManager.default.removeItem(at: directory)
    }

    /// Starts the daemon with the standard test endpoints plus `extra` arguments and
    /// waits until its control socket answers.
    /// `wrapper`: a command that runs the daemon (e.g. `prlimit --nofile=...`).
    func start(_ extra: [String] = [], inputType: String = "pull", environment: [String: String]? = nil,
               wrapper: [String] = [], input inputOverride: String? = nil) throws {
        let args = ["--input", "@" + (inputOverride ?? input), "--output", "@" + output, "--state-dir", stateDir,
                    "--input-type", inputType, "--log-level", "debug",
                    // An ephemeral port: tests run in parallel; the URL is in the log.
                    "--set", "metrics.listen=127.0.0.1:0"] + extra
        let p = try Self.launch(args, log: logPath, environment: environment, wrapper: wrapper)
        process = p
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            guard p.isRunning else { throw DaemonError("daemon exited with \(p.terminationStatus): \(log)") }
            if (try? controlRequest(["cmd": "status"], timeoutMs: 300)) != nil { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw DaemonError("daemon did not answer on its control socket: \(log)")
    }

    static func launch(_ args: [String], log: String, environment: [String: String]? = nil, wrapper: [String] = []) throws -> Process {
        let p = Process()
        if let program = wrapper.first {
            p.executableURL = URL(fileURLWithPath: program)
            p.arguments = Array(wrapper.dropFirst()) + [binary.path] + args
        } else {
            p.executableURL = binary
            p.arguments = args
        }
        if let environment { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = FileHandle(forWritingAtPath: log)!
        handle.seekToEndOfFile()
        p.standardError = handle
        p.standardOutput = handle
        try p.run()
        return p
    }

    /// Runs a program (the daemon by default) to completion, killing it after `timeout`;
    /// returns its exit status and combined output.
    static func runToExit(_ args: [String], executable: URL = binary, environment: [String: String]? = nil,
                          timeout: TimeInterval = 20) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        if let environment { p.environment = environment }
        let pipe = Pipe()
        p.standardError = pipe
        p.standardOutput = pipe
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit(); throw DaemonError("timed out: \(args)") }
        p.waitUntilExit()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (p.terminationStatus, out)
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits until the daemon's log contains `text`; false after `timeout`.
    func waitForLog(_ text: String, timeout: TimeInterval = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if log.contains(text) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    /// Polls `status` until `done` holds; records an issue and returns the last status
    /// after `timeout`.
    @discardableResult
    func waitForStatus(timeout: TimeInterval = 20, _ done: ([String: Any]) -> Bool) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(timeout)
        var last: [String: Any] = [:]
        while Date() < deadline {
            last = try status()
            if done(last) { return last }
            Thread.sleep(forTimeInterval: 0.02)
        }
        Issue.record("condition not reached; last status: \(last)")
        return last
    }

    /// Until the status counter `key` (e.g. "labelled", "scored") reaches `n`.
    func waitForStatus(_ key: String, atLeast n: Int, timeout: TimeInterval = 20) throws {
        try waitForStatus(timeout: timeout) { ($0[key] as? Int ?? 0) >= n }
    }

    /// SIGKILL and wait: a crash, with no shutdown checkpoint.
    func kill9() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    /// The Prometheus URL the daemon logged at start.
    var metricsURL: URL? {
        guard let range = log.range(of: #"url=http://[0-9.]+:[0-9]+/metrics"#, options: .regularExpression) else { return nil }
        return URL(string: String(log[range].dropFirst(4)))
    }

    /// SIGTERM and wait; returns the exit status.
    @discardableResult
    func stop(timeout: TimeInterval = 20) throws -> Int32 {
        guard let p = process else { return -1 }
        kill(p.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            throw DaemonError("daemon ignored SIGTERM for \(timeout) s: \(log)")
        }
        p.waitUntilExit()
        process = nil
        return p.terminationStatus
    }

    var isRunning: Bool { process?.isRunning ?? false }

    /// CPU time the process has used so far (user and system, from /proc).
    func cpuSeconds() throws -> Double {
        guard let pid = process?.processIdentifier else { throw DaemonError("not running") }
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        guard let close = stat.lastIndex(of: ")") else { throw DaemonError("unreadable /proc/\(pid)/stat") }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return Double(Int(fields[11])! + Int(fields[12])!) / Double(sysconf(Int32(_SC_CLK_TCK)))   // utime, stime
    }

    // MARK: Sockets

    /// 20 s: a debug build on a loaded 2-core machine can take seconds to drain a burst
    /// of input before it serves the control socket.
    func controlRequest(_ request: [String: Any], timeoutMs: Int32 = 20_000) throws -> [String: Any] {
        try Self.controlReply(try sendControl(request, timeoutMs: timeoutMs))
    }

    func status() throws -> [String: Any] { try controlRequest(["cmd": "status"]) }

    /// Sends a control request and returns the REQ socket its reply will arrive on.
    func sendControl(_ request: [String: Any], timeoutMs: Int32 = 20000) throws -> ZMQSocket {
        let req = try ZMQSocket(context: context, kind: .req)
        try req.setReceiveTimeout(timeoutMs)
        try req.setSendTimeout(timeoutMs)
        try secure(req)
        try req.connect(control)
        try req.send(frames: [Array(try JSONSerialization.data(withJSONObject: request))])
        return req
    }

    /// The reply to a request sent with `sendControl`.
    static func controlReply(_ req: ZMQSocket) throws -> [String: Any] {
        guard let reply = try req.receiveFrames() else { throw DaemonError("no control reply") }
        return try JSONSerialization.jsonObject(with: Data(reply[0])) as! [String: Any]
    }

    /// A PUSH socket connected to the daemon's PULL input.
    func producer(kind: ZMQSocket.Kind = .push) throws -> ZMQSocket {
        let s = try ZMQSocket(context: context, kind: kind)
        try s.setSendTimeout(5000)
        try secure(s)
        try s.connect(input)
        return s
    }

    /// A SUB socket on the daemon's output, subscribed to `topics`.
    func subscriber(_ topics: [String] = [""]) throws -> ZMQSocket {
        let s = try ZMQSocket(context: context, kind: .sub)
        for t in topics { try s.subscribe(t) }
        try secure(s)
        try s.connect(output)
        return s
    }

    /// Receives output messages until `done` says so or `timeout` passes.
    static func collect(_ sub: ZMQSocket, timeout: TimeInterval, until done: ([(String, [String: Any])]) -> Bool)
        throws -> [(String, [String: Any])] {
        var out: [(String, [String: Any])] = []
        let deadline = Date().addingTimeInterval(timeout)
        try sub.setReceiveTimeout(100)
        while Date() < deadline && !done(out) {
            guard let frames = try sub.receiveFrames() else { continue }
            let topic = String(decoding: frames[0], as: UTF8.self)
            let body = (try? JSONSerialization.jsonObject(with: Data(frames[1]))) as? [String: Any] ?? [:]
            out.append((topic, body))
        }
        return out
    }

    /// Sends probe preds until a score comes back, so the PUB/SUB subscription is live.
    func waitForSubscription(_ sub: ZMQSocket, via producer: ZMQSocket) throws {
        for k in 0..<100 {
            try producer.send(strings: ["pred", #"{"id":"__probe\#(k)","preds":{"probe":0.5}}"#])
            let got = try Self.collect(sub, timeout: 0.2) { $0.contains { $0.0 == "score" } }
            if got.contains(where: { $0.0 == "score" }) { return }
        }
        throw DaemonError("subscription never became live")
    }
}

/// Waits until `condition` holds or `timeout` passes (checking every 50 ms); returns
/// whether it held.
func waitUntil(_ timeout: TimeInterval, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return try condition()
}

struct DaemonError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Keys in sorted order: a Swift dictionary's order differs between instances, and the
/// daemon registers classifiers in the order their names first arrive.
func predBody(_ id: String, _ preds: [String: Double], label: Int? = nil) -> String {
    var obj: [String: Any] = ["id": id, "preds": preds]
    if let label { obj["label"] = label }
    return String(decoding: try! JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self)
}

/// Ten classifiers' probabilities for a seeded instance of the given class.
func tenPreds(_ i: Int, label: Int) -> [String: Double] {
    var out: [String: Double] = [:]
    for u in 0..<10 {
        let noise = Double((i * 7919 + u * 104729) % 1000) / 1000 - 0.5
        let logit = (label == 1 ? 1.0 : -1.0) * (0.5 + Double(u) * 0.2) + noise * 2
        out["m\(u)"] = 1 / (1 + exp(-logit))
    }
    return out
}
