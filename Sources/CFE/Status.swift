import ArgumentParser
import Foundation
import Transport

/// `cfe status`: asks a daemon's control socket for its status.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a daemon's status (control socket).")

    @Option(help: "Control endpoint (default: ipc://STATE_DIR/control.sock).")
    var control: String?

    @Option(name: .customLong("state-dir"), help: "The daemon's state directory.")
    var stateDir: String = "./state"

    @OptionGroup var curve: CurveOptions

    @Flag(help: "Print the raw JSON reply.")
    var json = false

    @Option(help: "Seconds to wait for the reply.")
    var timeout: Double = 5

    func run() throws {
        let text = control ?? "ipc://\(stateDir)/control.sock"
        let endpoint: Endpoint
        do { endpoint = try Endpoint(parsing: text, defaultMode: .connect) } catch { throw ValidationError("\(error)") }
        let context = try ZMQContext()
        let req = try ZMQSocket(context: context, kind: .req)
        try req.setReceiveTimeout(Int32(timeout * 1000))
        try req.setSendTimeout(Int32(timeout * 1000))
        try curve.apply(to: req)
        try req.attach(endpoint)
        try req.send(strings: [#"{"cmd":"status"}"#])
        guard let reply = try req.receiveFrames(), let body = reply.first else {
            throw ValidationError("no reply from \(endpoint.address) within \(timeout) s: is the daemon running?")
        }
        if json {
            print(String(decoding: body, as: UTF8.self))
            return
        }
        guard let obj = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw ValidationError("reply is not a JSON object")
        }
        var state = WatchState()
        state.apply(topic: "health", body: obj)
        print(state.render(color: isatty(STDOUT_FILENO) != 0), terminator: "")
    }
}
