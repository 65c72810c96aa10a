import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// Runs the event loop on its own thread as a swift-service-lifecycle `Service`:
/// graceful shutdown (SIGTERM/SIGINT) or cancellation sets the stop flag, and `run`
/// returns once the loop has finished its batch and written its checkpoint.
struct DaemonService: Service {
    let loop: EventLoop
    /// Re-reads the configuration from the same sources as at start (for SIGHUP).
    let reload: @Sendable () throws -> DaemonConfiguration
    let logger: Logger

    func run() async throws {
        let stop = StopFlag()
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let reloader = Task { [loop, reload, logger] in
            for await _ in hangups {
                do {
                    loop.requestReload(try reload())
                } catch {
                    logger.error("SIGHUP: configuration not reloaded, keeping the running one: \(error)")
                }
            }
        }
        defer { reloader.cancel() }
        let ok = await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withCheckedContinuation { (done: CheckedContinuation<Bool, Never>) in
                    let thread = Thread { [loop] in done.resume(returning: loop.run(until: stop)) }
                    thread.name = "cfensembled-loop"
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
