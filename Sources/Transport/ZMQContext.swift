import CZeroMQ

/// A libzmq context: owns the I/O threads that all sockets of a process share.
///
/// libzmq contexts are thread-safe, so this type is `Sendable`. Sockets keep a strong
/// reference to their context, so the context is terminated only after its last socket
/// has been closed and `zmq_ctx_term` cannot block on a forgotten socket.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// Creates a context with `ioThreads` I/O threads (1 is plenty below ~1 Gbit/s).
    public init(ioThreads: Int32 = 1) throws(ZMQError) {
        guard let raw = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        handle = raw
        zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads)
    }

    deinit {
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }

    /// The libzmq version linked at run time, e.g. `4.3.4`.
    public static var libraryVersion: String {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }
}
