import ArgumentParser
import Foundation
import Transport

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

    /// Sends `request` (a JSON object) and returns the reply's body, waiting `timeout`
    /// seconds, or `defaultTimeout` when the option is not given.
    func request(_ request: String, defaultTimeout: Double = 5) throws -> [UInt8] {
        let timeout = self.timeout ?? defaultTimeout
        let text = control ?? "ipc://\(stateDir)/control.sock"
        let endpoint: Endpoint
        do { endpoint = try Endpoint(parsing: text, defaultMode: .connect) } catch { throw ValidationError("\(error)") }
        let context = try ZMQContext()
        let req = try ZMQSocket(context: context, kind: .req)
        try req.setReceiveTimeout(Int32(timeout * 1000))
        try req.setSendTimeout(Int32(timeout * 1000))
        try curve.apply(to: req)
        try req.attach(endpoint)
        try req.send(strings: [request])
        guard let reply = try req.receiveFrames(), let body = reply.first else {
            throw ValidationError("no reply from \(endpoint.address) within \(timeout) s: is the daemon running?")
        }
        return body
    }

    /// The reply as a JSON object.
    func requestObject(_ request: String, defaultTimeout: Double = 5) throws -> [String: Any] {
        let body = try self.request(request, defaultTimeout: defaultTimeout)
        guard let obj = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw ValidationError("reply is not a JSON object")
        }
        return obj
    }
}

extension ControlClient {
    /// Sends `{"cmd": cmd}`; prints the raw reply with `json`, else `summary` of it;
    /// throws the daemon's reason when it answers `ok: false`.
    func run(_ cmd: String, json: Bool, defaultTimeout: Double = 5, summary: ([String: Any]) -> String) throws {
        let reply = try requestObject(#"{"cmd":""# + cmd + #""}"#, defaultTimeout: defaultTimeout)
        if json { print(String(decoding: try JSONSerialization.data(withJSONObject: reply, options: [.sortedKeys]), as: UTF8.self)) }
        guard reply["ok"] as? Bool == true else { throw ControlRefused(description: reply["error"] as? String ?? "\(cmd) failed") }
        if !json { print(summary(reply)) }
    }
}

/// A control command's failure reply (`ok: false`): printed, exit status 1.
struct ControlRefused: Error, CustomStringConvertible {
    let description: String
}
