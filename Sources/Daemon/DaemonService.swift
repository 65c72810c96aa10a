import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// Runs the engine's loop on its own thread as a swift-service-lifecycle `Service`:
/// graceful shutdown (SIGTERM/SIGINT) or cancellation sets the stop flag, and `run`
/// returns once the engine has finished its batch and written its checkpoint.
struct DaemonService: Service {
    let engine: EventLoop
    /// Re-reads the configuration from the same sources as at start (for SIGHUP).
    let reload: @Sendable () throws -> DaemonConfiguration
    let logger: Logger

    func run() async throws {
        let stop = StopFlag()
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let reloader = Task { [engine, reload, logger] in
            for await _ in hangups {
                do {
                    engine.requestReload(try reload())
                } catch {
                    logger.error("SIGHUP: configuration not reloaded, keeping the running one: \(error)")
                }
            }
        }
        defer { reloader.cancel() }
        let ok = await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withCheckedContinuation { (done: CheckedContinuation<Bool, Never>) in
                    let thread = Thread { [engine] in done.resume(returning: engine.run(until: stop)) }
                    thread.name = "cfensembled-engine"
                    thread.start()
                }
            } onCancel: {
                stop.set()
            }
        } onGracefulShutdown: {
            stop.set()
        }
        if !ok { throw ShutdownError.checkpointFailed }
    }

    enum ShutdownError: Error, CustomStringConvertible {
        case checkpointFailed
        var description: String { "the final checkpoint could not be written (see the log)" }
    }
}
