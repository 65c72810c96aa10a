import Foundation
import Transport

/// The thread that answers the ZAP handler's requests. `BackgroundThreads` starts it
/// before the loop serves anything and stops it only after every CURVE socket is
/// closed, so that no handshake, even one during shutdown, goes unchecked.
final class ZAPThread: Sendable {
    private let handler: ZAPHandler
    private let stopping = StopFlag()
    private let finished = DispatchSemaphore(value: 0)

    init(handler: ZAPHandler) { self.handler = handler }

    func start() {
        let thread = Thread { [handler, stopping, finished] in
            handler.serve(shouldStop: { stopping.isSet })
            finished.signal()
        }
        thread.name = "cfensembled-zap"
        thread.start()
    }

    /// Asks the thread to stop and waits until it has closed the handler's socket (the
    /// context must not be terminated under it). Call once, after `start`.
    func stop() {
        stopping.set()
        finished.wait()
    }
}
