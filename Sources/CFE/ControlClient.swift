import ArgumentParser
import Foundation
import Transport
import Wire

/// Which daemon a control command talks to (`--state-dir` or `--control`, CURVE keys,
/// timeout), and the one request-reply exchange every control command makes.
struct ControlClient: ParsableArguments {
    @Option(help: "Control endpoint (default: ipc://STATE_DIR/control.sock).")
    var control: String?

    @Option(name: .customLong("state-dir"), help: "The daemon's state directory.")
    var stateDir: String = "./state"

    @OptionGroup var curve: CurveOptions

    @Option(help: "Seconds to wait for the reply (default: 5; checkpoint: 300).")
    var timeout: Double?

    /// The control endpoint this client talks to.
    var endpointText: String { control ?? "ipc://\(stateDir)/control.sock" }

    /// Sends `request` (a JSON object) and returns the reply's body, waiting `timeout`
    /// seconds, or `defaultTimeout` when the option is not given. Fails fast (exit 69)
    /// when there is no daemon: an ipc socket file that does not exist, no connection
    /// within 3 s, or a CURVE handshake the daemon refused.
    func request(_ request: String, defaultTimeout: Double = 5) throws -> [UInt8] {
        let timeout = self.timeout ?? defaultTimeout
        let endpoint: Endpoint
        do { endpoint = try Endpoint(parsing: endpointText, defaultMode: .connect) } catch { throw ValidationError("\(error)") }
        if let path = endpoint.ipcPath, !FileManager.default.fileExists(atPath: path) {
            throw CFEFailure(code: CFEFailure.unavailable,
                             description: "no daemon: \(path) does not exist (is cfensembled running with this state directory? see --state-dir, --control)")
        }
        let context = try ZMQContext()
        let req = try ZMQSocket(context: context, kind: .req)
        try req.setReceiveTimeout(Int32(timeout * 1000))
        try req.setSendTimeout(Int32(timeout * 1000))
        try curve.apply(to: req)
        let monitor = try ZMQMonitor(req, context: context, events: [.handshakeSucceeded, .handshakeFailed])
        defer { monitor.stop() }
        try req.attach(endpoint)
        // The handshake says whether anyone is there, long before a reply would.
        let deadline = Date().addingTimeInterval(min(timeout, 3))
        var connected = false
        while !connected && Date() < deadline {
            guard let e = monitor.next(timeoutMs: 100) else { continue }
            if e.event == .handshakeSucceeded { connected = true }
            else if ZMQMonitor.Events.handshakeFailed.contains(e.event) {
                throw CFEFailure(code: CFEFailure.unavailable, description: e.event == .handshakeFailedAuth
                    ? "the daemon at \(endpoint.address) refused this client's CURVE key (see --curve-key, security.allowed_clients)"
                    : "handshake with \(endpoint.address) failed (CURVE keys or security settings differ: see --curve-key, --server-key)")
            }
        }
        guard connected else {
            throw CFEFailure(code: CFEFailure.unavailable, description: "no daemon answers at \(endpoint.address) (nothing accepted the connection within 3 s)")
        }
        try req.send(strings: [request])
        guard let reply = try req.receiveFrames(), let body = reply.first else {
            throw CFEFailure(code: CFEFailure.unavailable, description: "no reply from \(endpoint.address) within \(timeout) s")
        }
        return body
    }

    /// Sends `command` and decodes its reply as `T`; a refusal (`ok: false`) throws the
    /// daemon's reason (exit 1). Returns the raw body too, for `--json`.
    func request<T: Decodable>(_ command: ControlCommand, as type: T.Type, defaultTimeout: Double = 5) throws -> (reply: T, raw: [UInt8]) {
        let body = try request(#"{"cmd":""# + command.rawValue + #""}"#, defaultTimeout: defaultTimeout)
        let outcome: ControlReply
        do { outcome = try WireJSON.decode(ControlReply.self, from: body) } catch {
            throw CFEFailure(code: CFEFailure.unavailable, description: "the reply to \(command.rawValue) is not a control reply: \(error)")
        }
        guard outcome.ok else {
            throw CFEFailure(code: CFEFailure.refused, description: outcome.error ?? "\(command.rawValue) failed")
        }
        do { return (try WireJSON.decode(T.self, from: body), body) } catch {
            throw CFEFailure(code: CFEFailure.unavailable, description: "the reply to \(command.rawValue) does not match this cfe's protocol: \(error)")
        }
    }

    /// The daemon's `status`.
    func status() throws -> StatusReply { try request(.status, as: StatusReply.self).reply }
}

extension ControlClient {
    /// Sends `command`; prints the raw reply with `json`, else `summary` of it; throws the
    /// daemon's reason when it answers `ok: false`.
    func run(_ command: ControlCommand, json: Bool, defaultTimeout: Double = 5, summary: (ControlReply) -> String) throws {
        let (reply, raw) = try request(command, as: ControlReply.self, defaultTimeout: defaultTimeout)
        print(json ? String(decoding: raw, as: UTF8.self) : summary(reply))
    }
}
