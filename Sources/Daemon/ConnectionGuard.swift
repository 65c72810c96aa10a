import Foundation
import Logging
import Transport

/// Bounds the connections one bound socket (an input, the output) holds, so that no
/// client can make the daemon run out of descriptors: it follows the socket's accepted
/// and disconnected connections (a libzmq monitor) and shuts down each connection
/// accepted beyond `cap` at once. (libzmq has no per-listener limit, and unbinding would
/// drop every connection of the endpoint.) The accepted descriptor is checked to be a
/// socket of this endpoint before it is shut down, and is never closed here: libzmq
/// sees the end of the stream and closes it itself.
///
/// On a CURVE server socket it also counts and logs the handshakes that failed before
/// any key was checked (a plaintext client, a wrong mechanism), which the ZAP handler
/// never sees.
final class ConnectionGuard {
    let role: String
    let cap: Int
    let monitor: ZMQMonitor
    private let curve: Bool
    private let boundPort: UInt16?
    private let boundPath: String?
    private let logger: Logger
    private let metrics: DaemonMetrics
    /// Connections held: accepted, not shut down here, not disconnected. Never above `cap`
    /// but for a descriptor that could not be checked (its connection already gone).
    private(set) var open = 0
    /// Descriptors shut down here whose disconnection libzmq has not reported yet.
    private var closing = Set<Int32>()
    private(set) var refused: UInt64 = 0
    private(set) var plaintextRefused: UInt64 = 0

    init(socket: ZMQSocket, role: String, cap: Int, curve: Bool, context: ZMQContext, logger: Logger, metrics: DaemonMetrics)
        throws(ZMQError) {
        self.role = role
        self.cap = cap
        self.curve = curve
        self.logger = logger
        self.metrics = metrics
        let bound = socket.lastEndpoint ?? ""
        boundPort = bound.hasPrefix("tcp://") ? bound.split(separator: ":").last.flatMap { UInt16($0) } : nil
        boundPath = bound.hasPrefix("ipc://") ? String(bound.dropFirst("ipc://".count)) : nil
        monitor = try ZMQMonitor(socket, context: context, events: [.accepted, .disconnected, .handshakeFailedNoDetail, .handshakeFailedProtocol])
    }

    /// Reads the events queued; shuts down what is over the cap.
    func drain() {
        for e in monitor.drain() {
            let fd = Int32(bitPattern: e.value)
            if e.event.contains(.accepted) {
                if open >= cap && refuse(fd: fd) { closing.insert(fd) } else { open += 1 }
            } else if e.event.contains(.disconnected) {
                // libzmq reports the descriptor of the connection that ended.
                if closing.remove(fd) == nil { open = max(0, open - 1) }
            } else if curve {
                plaintextRefused &+= 1
                metrics.authRefused.increment()
                if plaintextRefused <= 10 || plaintextRefused % 1000 == 0 {
                    logger.warning("refused a connection whose handshake failed before CURVE authentication (a plaintext or misconfigured client)",
                                   metadata: ["socket": "\(role)", "endpoint": "\(e.endpoint)", "count": "\(plaintextRefused)"])
                }
            }
        }
        metrics.connections(role: role, open: open)
    }

    /// Shuts the connection down; false when `fd` is no longer one of this endpoint's.
    private func refuse(fd: Int32) -> Bool {
        guard isOurs(fd) else { return false }
        shutdown(fd, Int32(SHUT_RDWR))
        refused &+= 1
        metrics.connectionRefused(role: role)
        if refused <= 10 || refused % 1000 == 0 {
            logger.warning("closed a connection beyond the limit of connections on this socket",
                           metadata: ["socket": "\(role)", "limit": "\(cap)", "refused_total": "\(refused)"])
        }
        return true
    }

    /// Whether `fd` is still a connection accepted on this socket's endpoint (not a
    /// descriptor reused since for something else).
    private func isOurs(_ fd: Int32) -> Bool {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { return false }
        switch Int32(storage.ss_family) {
        case AF_INET:
            let port = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port } }
            return boundPort == UInt16(bigEndian: port)
        case AF_INET6:
            let port = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_port } }
            return boundPort == UInt16(bigEndian: port)
        case AF_UNIX:
            let path = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { un in
                    withUnsafeBytes(of: un.pointee.sun_path) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                }
            }
            return boundPath == path
        default:
            return false
        }
    }
}
