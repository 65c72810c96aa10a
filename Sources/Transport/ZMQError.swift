import CZeroMQ

/// A libzmq failure, carrying errno and libzmq's own description of it.
public struct ZMQError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The errno value libzmq reported.
    public let code: Int32
    /// What was being attempted, e.g. `bind tcp://127.0.0.1:5555`.
    public let operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    /// Captures `zmq_errno()` right after a failed call.
    static func last(_ operation: String) -> ZMQError {
        ZMQError(code: zmq_errno(), operation: operation)
    }

    /// `zmq_strerror` text for `code`.
    public var reason: String { String(cString: zmq_strerror(code)) }

    public var description: String { "\(operation): \(reason)" }

    /// The call would have blocked (non-blocking send/receive found nothing to do).
    public var isAgain: Bool { code == EAGAIN }
    /// The call was interrupted by a signal; retrying is safe.
    public var isInterrupted: Bool { code == EINTR }
}
