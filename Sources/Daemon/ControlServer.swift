import Foundation
import Logging
import Online
import Transport
import Wire

/// A control request as parsed from its frames: a command, or why it is not one.
enum ControlRequest: Equatable {
    case command(ControlCommand)
    case invalid(String)

    /// One frame holding a JSON object with a `cmd` the daemon knows.
    static func parse(_ request: [[UInt8]]) -> ControlRequest {
        guard request.count == 1 else { return .invalid("expected one frame holding a JSON object, got \(request.count) frames") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(request[0])) as? [String: Any] else {
            return .invalid("request is not a JSON object")
        }
        let known = ControlCommand.allCases.map(\.rawValue).joined(separator: ", ")
        guard let cmd = object["cmd"] as? String else { return .invalid("missing \"cmd\" (\(known))") }
        guard let command = ControlCommand(rawValue: cmd) else { return .invalid("unknown command '\(cmd)' (\(known))") }
        return .command(command)
    }
}

/// The control socket (ROUTER; clients use REQ): reads requests, answers `status` and
/// `rollback` at once and `checkpoint` once it is durable (the coordinator owes it),
/// while other requests are served meanwhile.
final class ControlServer {
    let socket: ZMQSocket
    private let logger: Logger
    /// The configuration summary in `status` (fixed but for the classifiers).
    var summary: () -> ConfigSummary = { ConfigSummary() }

    init(socket: ZMQSocket, logger: Logger) {
        self.socket = socket
        self.logger = logger
    }

    /// Serves the waiting requests (a bounded number per wake). Frames from the ROUTER:
    /// the client's identity, the empty delimiter of a REQ envelope, the request.
    func serve<S>(core: DaemonCore<S>, coordinator: CheckpointCoordinator) {
        // Every command sees the model its last update made (a status's version and
        // weights agree; a rollback or checkpoint starts from it).
        core.settleUpdate()
        for _ in 0..<16 {
            guard let frames = try? socket.receiveFrames(dontWait: true), let client = frames.first else { return }
            let body = frames.count >= 2 && frames[1].isEmpty ? Array(frames.dropFirst(2)) : Array(frames.dropFirst())
            send(respond(to: body, from: client, core: core, coordinator: coordinator))
        }
    }

    /// Sends replies (client identity, empty delimiter, reply).
    func send(_ replies: CheckpointCoordinator.Replies) {
        for (client, reply) in replies {
            do { _ = try socket.send(frames: [client, [], reply], dontWait: true) } catch {
                logger.error("control reply failed: \(error)")
            }
        }
    }

    /// The replies to one request: now, or none yet (a `checkpoint` owed until durable).
    func respond<S>(to request: [[UInt8]], from client: [UInt8], core: DaemonCore<S>,
                    coordinator: CheckpointCoordinator) -> CheckpointCoordinator.Replies {
        func fail(_ why: String) -> CheckpointCoordinator.Replies { [(client, WireJSON.encode(ControlReply(ok: false, error: why)))] }
        let command: ControlCommand
        switch ControlRequest.parse(request) {
        case let .invalid(why): return fail(why)
        case let .command(c): command = c
        }
        if core.role == .scorer && command != .status {
            return fail("a scorer keeps no model state of its own (--role scorer): send '\(command.rawValue)' to the learner")
        }
        switch command {
        case .status:
            var config = summary()
            config.classifiers = core.model.registry.names
            let reply = StatusReply(health: core.healthBody(), config: config, persistence: coordinator.persistenceNow(journal: core.journal))
            return [(client, WireJSON.encode(reply))]
        case .checkpoint:
            return coordinator.request(from: client, core: core)
        case .pinReference:
            // Durable before the reply: a crash must not bring the old reference back.
            core.pinReference()
            return coordinator.request(from: client, core: core)
        case .rollback:
            switch Self.rollback(core: core, coordinator: coordinator, logger: logger) {
            case let .success(version): return [(client, WireJSON.encode(ControlReply(ok: true, model_version: version)))]
            case let .failure(why): return fail(why.description)
            }
        }
    }

    /// Restores the last healthy model as the next version and makes it durable before
    /// answering: after a crash the journal replays onto the last checkpoint's model, so
    /// that checkpoint must hold the rolled-back one. Refused, model unchanged, when the
    /// checkpoint cannot be written.
    static func rollback<S>(core: DaemonCore<S>, coordinator: CheckpointCoordinator, logger: Logger) -> Result<Int64, RollbackRefused> {
        core.settleUpdate()   // the model rolled back from is the one its last update made
        let restored: CFEnsemble
        switch core.rollbackCandidate() {
        case let .failure(why): return .failure(why)
        case let .success(m): restored = m
        }
        let previous = core.model
        core.install(restored)
        do { try coordinator.write(core: core) } catch {
            core.install(previous)
            return .failure(RollbackRefused(description: "rollback refused, the model is unchanged: its checkpoint could not be written (\(error.description))"))
        }
        logger.warning("rolled back to the last healthy model", metadata: [
            "from_version": "\(previous.version)", "model_version": "\(restored.version)"])
        core.onModelChanged()
        return .success(restored.version)
    }
}
