import Foundation
import ServiceLifecycle

/// Runs the engine's loop on its own thread as a swift-service-lifecycle `Service`:
/// graceful shutdown (SIGTERM/SIGINT) or cancellation sets the stop flag, and `run`
/// returns once the engine has finished its batch and written its checkpoint.
struct DaemonService: Service {
    let engine: Engine

    func run() async throws {
        let stop = StopFlag()
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
