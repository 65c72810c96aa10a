import CZeroMQ
import Foundation

/// Connection and handshake events of one socket (`zmq_socket_monitor`): tells a client
/// whether the server refused its CURVE key, where a plain receive would only time out.
///
/// Owned by the thread that owns the monitored socket; stop it before closing that socket.
public final class ZMQMonitor {
    /// The events cfensembled looks at (libzmq's `ZMQ_EVENT_*` bits).
    public struct Events: OptionSet, Sendable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let connected = Events(rawValue: UInt16(ZMQ_EVENT_CONNECTED))
        public static let accepted = Events(rawValue: UInt16(ZMQ_EVENT_ACCEPTED))
        public static let disconnected = Events(rawValue: UInt16(ZMQ_EVENT_DISCONNECTED))
        public static let handshakeSucceeded = Events(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_SUCCEEDED))
        public static let handshakeFailedNoDetail = Events(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL))
        public static let handshakeFailedProtocol = Events(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL))
        public static let handshakeFailedAuth = Events(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH))
        public static let handshakeFailed: Events = [.handshakeFailedNoDetail, .handshakeFailedProtocol, .handshakeFailedAuth]
        public static let handshakes: Events = [.handshakeSucceeded, .handshakeFailed]
    }

    /// One event: which, libzmq's value (a status code or descriptor) and the endpoint.
    public struct Event: Sendable, Equatable {
        public let event: Events
        public let value: UInt32
        public let endpoint: String
    }

    private let pair: ZMQSocket
    private let socket: ZMQSocket

    /// Starts monitoring `socket` for `events` over a private inproc endpoint.
    public init(_ socket: ZMQSocket, context: ZMQContext, events: Events) throws(ZMQError) {
        guard let handle = socket.handle else { throw ZMQError(code: ENOTSOCK, operation: "monitor") }
        let address = "inproc://cfe-monitor-\(UInt64.random(in: 0...UInt64.max))"
        if zmq_socket_monitor(handle, address, Int32(events.rawValue)) != 0 { throw ZMQError.last("zmq_socket_monitor") }
        self.socket = socket
        pair = try ZMQSocket(context: context, kind: .pair)
        try pair.connect(address)
    }

    deinit { stop() }

    /// The socket the events arrive on, for a poller (then read them with `drain`).
    public var pollable: ZMQSocket { pair }

    /// The next event, waiting at most `timeoutMs` (nil: none by then).
    public func next(timeoutMs: Int32) -> Event? {
        guard (try? pair.setReceiveTimeout(timeoutMs)) != nil,
              let frames = try? pair.receiveFrames(), frames.count == 2, frames[0].count >= 6 else { return nil }
        let head = frames[0]
        let event = UInt16(head[0]) | UInt16(head[1]) << 8
        let value = UInt32(head[2]) | UInt32(head[3]) << 8 | UInt32(head[4]) << 16 | UInt32(head[5]) << 24
        return Event(event: Events(rawValue: event), value: value, endpoint: String(decoding: frames[1], as: UTF8.self))
    }

    /// Every event already queued.
    public func drain() -> [Event] {
        var out: [Event] = []
        while let e = next(timeoutMs: 0) { out.append(e) }
        return out
    }

    /// Stops monitoring (idempotent).
    public func stop() {
        if let h = socket.handle { zmq_socket_monitor(h, nil, 0) }
        pair.close()
    }
}
