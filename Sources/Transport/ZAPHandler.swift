import CZeroMQ
import Synchronization

/// A ZAP handler (ZeroMQ RFC 27) that admits CURVE clients whose public key is on an
/// allow-list, so that an encrypted socket is also an authenticated one.
///
/// libzmq asks the handler bound to `inproc://zeromq.zap.01` in the socket's context
/// about every CURVE handshake. Bind it before any CURVE server socket accepts peers;
/// answer requests with `serve` on a thread of its own. The allow-list can be
/// replaced while it runs (a configuration reload).
public final class ZAPHandler: @unchecked Sendable {
    /// One handshake's outcome, for logs and metrics.
    public struct Decision: Sendable {
        public let allowed: Bool
        /// The peer's address as libzmq reports it (IP for TCP, empty for ipc).
        public let address: String
        /// "CURVE", or the mechanism a refused peer tried.
        public let mechanism: String
        /// The client's public key in Z85 (empty if not CURVE).
        public let clientKey: String
        public let domain: String
    }

    public static let endpoint = "inproc://zeromq.zap.01"

    private let socket: ZMQSocket
    private let allowed: Mutex<Set<[UInt8]>>
    private let onDecision: @Sendable (Decision) -> Void
    private let allowedCount = Atomic<Int>(0)
    private let deniedCount = Atomic<Int>(0)

    /// Binds the handler in `context`, admitting the 32-byte public keys in `allowList`.
    public init(context: ZMQContext, allowList: [[UInt8]], onDecision: @escaping @Sendable (Decision) -> Void = { _ in }) throws(ZMQError) {
        socket = try ZMQSocket(context: context, kind: .rep)
        try socket.setLinger(0)
        try socket.bind(Self.endpoint)
        allowed = Mutex(Set(allowList))
        self.onDecision = onDecision
    }

    /// Replaces the allow-list; handshakes from now on are checked against it.
    public func replaceAllowList(_ keys: [[UInt8]]) {
        allowed.withLock { $0 = Set(keys) }
    }

    public var allowListCount: Int { allowed.withLock { $0.count } }
    /// Handshakes admitted and refused since start.
    public var admitted: Int { allowedCount.load(ordering: .relaxed) }
    public var refused: Int { deniedCount.load(ordering: .relaxed) }

    /// Answers ZAP requests until `shouldStop` returns true (checked every `pollMs`),
    /// then closes the socket. Call from one thread only.
    public func serve(pollMs: Int = 100, shouldStop: () -> Bool) {
        var poller = ZMQPoller()
        _ = poller.add(socket)
        while !shouldStop() {
            guard (try? poller.poll(timeoutMs: pollMs)) ?? 0 > 0 else { continue }
            guard let request = try? socket.receiveFrames(dontWait: true) else { continue }
            _ = try? socket.send(frames: answer(request))
        }
        socket.close()
    }

    /// The reply frames for one request (RFC 27: version, request id, status, text, user id, metadata).
    func answer(_ request: [[UInt8]]) -> [[UInt8]] {
        func text(_ i: Int) -> String { i < request.count ? String(decoding: request[i], as: UTF8.self) : "" }
        let requestID = request.count > 1 ? request[1] : []
        guard request.count >= 6, text(0) == "1.0" else {
            return [Array("1.0".utf8), requestID, Array("500".utf8), Array("malformed ZAP request".utf8), [], []]
        }
        let mechanism = text(5)
        var key: [UInt8] = []
        var ok = false
        if mechanism == "CURVE", request.count >= 7, request[6].count == 32 {
            key = request[6]
            ok = allowed.withLock { $0.contains(key) }
        }
        let decision = Decision(allowed: ok, address: text(3), mechanism: mechanism,
                                clientKey: key.isEmpty ? "" : Self.z85(key), domain: text(2))
        if ok { allowedCount.add(1, ordering: .relaxed) } else { deniedCount.add(1, ordering: .relaxed) }
        onDecision(decision)
        if ok {
            return [Array("1.0".utf8), requestID, Array("200".utf8), Array("OK".utf8), Array(decision.clientKey.utf8), []]
        }
        let why = mechanism == "CURVE" ? "client key not on the allow-list" : "mechanism \(mechanism) not allowed"
        return [Array("1.0".utf8), requestID, Array("400".utf8), Array(why.utf8), [], []]
    }

    static func z85(_ key: [UInt8]) -> String {
        var out = [CChar](repeating: 0, count: 41)
        var bytes = key
        guard zmq_z85_encode(&out, &bytes, bytes.count) != nil else { return "" }
        return z85String(out)
    }
}
