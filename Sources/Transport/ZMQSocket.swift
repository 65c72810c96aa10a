import CZeroMQ

/// A libzmq socket of one of the types cfensembled uses.
///
/// libzmq sockets are not thread-safe: a socket belongs to one thread at a time.
/// It is closed when the object goes away, with the linger set beforehand.
public final class ZMQSocket {
    public enum Kind: Sendable {
        case pub, sub, push, pull, req, rep, pair, dealer, router

        var raw: Int32 {
            switch self {
            case .pub: ZMQ_PUB
            case .sub: ZMQ_SUB
            case .push: ZMQ_PUSH
            case .pull: ZMQ_PULL
            case .req: ZMQ_REQ
            case .rep: ZMQ_REP
            case .pair: ZMQ_PAIR
            case .dealer: ZMQ_DEALER
            case .router: ZMQ_ROUTER
            }
        }
    }

    /// The raw libzmq handle, for polling.
    public private(set) var handle: UnsafeMutableRawPointer?
    public let kind: Kind
    private let context: ZMQContext

    public init(context: ZMQContext, kind: Kind) throws(ZMQError) {
        guard let raw = zmq_socket(context.handle, kind.raw) else { throw ZMQError.last("zmq_socket") }
        self.handle = raw
        self.kind = kind
        self.context = context
    }

    deinit { close() }

    /// Closes the socket; queued outgoing messages are kept for at most `linger` ms
    /// (0: dropped at once). Later calls fail with `ENOTSOCK`.
    public func close(linger: Int32 = 0) {
        guard let h = handle else { return }
        var value = linger
        zmq_setsockopt(h, ZMQ_LINGER, &value, MemoryLayout<Int32>.size)
        zmq_close(h)
        handle = nil
    }

    private func live(_ op: @autoclosure () -> String) throws(ZMQError) -> UnsafeMutableRawPointer {
        guard let h = handle else { throw ZMQError(code: ENOTSOCK, operation: op()) }
        return h
    }

    // MARK: Addresses

    public func bind(_ address: String) throws(ZMQError) {
        if zmq_bind(try live("bind \(address)"), address) != 0 { throw ZMQError.last("bind \(address)") }
    }

    public func connect(_ address: String) throws(ZMQError) {
        if zmq_connect(try live("connect \(address)"), address) != 0 { throw ZMQError.last("connect \(address)") }
    }

    public func unbind(_ address: String) throws(ZMQError) {
        if zmq_unbind(try live("unbind \(address)"), address) != 0 { throw ZMQError.last("unbind \(address)") }
    }

    public func disconnect(_ address: String) throws(ZMQError) {
        if zmq_disconnect(try live("disconnect \(address)"), address) != 0 { throw ZMQError.last("disconnect \(address)") }
    }

    /// Binds or connects as the endpoint says.
    public func attach(_ endpoint: Endpoint) throws(ZMQError) {
        switch endpoint.mode {
        case .bind: try bind(endpoint.address)
        case .connect: try connect(endpoint.address)
        }
    }

    /// The address actually bound (resolves `tcp://127.0.0.1:*` to the chosen port).
    public var lastEndpoint: String? {
        guard let h = handle else { return nil }
        var buffer = [CChar](repeating: 0, count: 512)
        var size = buffer.count
        guard zmq_getsockopt(h, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else { return nil }
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    // MARK: Options

    public func setOption(_ option: Int32, _ value: Int32) throws(ZMQError) {
        var v = value
        if zmq_setsockopt(try live("setsockopt \(option)"), option, &v, MemoryLayout<Int32>.size) != 0 {
            throw ZMQError.last("setsockopt \(option)=\(value)")
        }
    }

    public func setOption(_ option: Int32, _ value: Int64) throws(ZMQError) {
        var v = value
        if zmq_setsockopt(try live("setsockopt \(option)"), option, &v, MemoryLayout<Int64>.size) != 0 {
            throw ZMQError.last("setsockopt \(option)=\(value)")
        }
    }

    public func setOption(_ option: Int32, bytes: [UInt8]) throws(ZMQError) {
        let h = try live("setsockopt \(option)")
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(h, option, $0.baseAddress, $0.count) }
        if rc != 0 { throw ZMQError.last("setsockopt \(option)") }
    }

    public func intOption(_ option: Int32) throws(ZMQError) -> Int32 {
        var v: Int32 = 0
        var size = MemoryLayout<Int32>.size
        if zmq_getsockopt(try live("getsockopt \(option)"), option, &v, &size) != 0 {
            throw ZMQError.last("getsockopt \(option)")
        }
        return v
    }

    /// Messages queued beyond this many are dropped (PUB) or block the sender (PUSH).
    public func setSendHighWaterMark(_ n: Int32) throws(ZMQError) { try setOption(ZMQ_SNDHWM, n) }
    /// Messages received beyond this many wait in the peer (or are dropped by a PUB peer).
    public func setReceiveHighWaterMark(_ n: Int32) throws(ZMQError) { try setOption(ZMQ_RCVHWM, n) }
    /// A peer that sends a larger message is disconnected by libzmq (-1: no limit).
    public func setMaxMessageSize(_ bytes: Int64) throws(ZMQError) { try setOption(ZMQ_MAXMSGSIZE, bytes) }
    /// How long pending outgoing messages are kept after close, in milliseconds.
    public func setLinger(_ ms: Int32) throws(ZMQError) { try setOption(ZMQ_LINGER, ms) }
    /// Receive timeout for blocking receives, in milliseconds (-1: forever).
    public func setReceiveTimeout(_ ms: Int32) throws(ZMQError) { try setOption(ZMQ_RCVTIMEO, ms) }
    /// Send timeout for blocking sends, in milliseconds (-1: forever).
    public func setSendTimeout(_ ms: Int32) throws(ZMQError) { try setOption(ZMQ_SNDTIMEO, ms) }

    /// Makes this socket a CURVE server: peers must complete a CURVE handshake (and pass
    /// the ZAP handler, if one runs in this context). Set before bind or connect.
    ///
    /// The ZAP domain is enforced: without a ZAP handler bound in the context (none yet,
    /// or already gone at shutdown) every handshake is refused. libzmq's default admits
    /// any client key when no handler answers.
    public func makeCurveServer(secretKey: String, domain: String = "cfensembled") throws(ZMQError) {
        try setOption(ZMQ_CURVE_SERVER, Int32(1))
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: Array(secretKey.utf8))
        try setOption(ZMQ_ZAP_DOMAIN, bytes: Array(domain.utf8))
        try setOption(Self.zapEnforceDomain, Int32(1))
    }

    /// `ZMQ_ZAP_ENFORCE_DOMAIN`, in libzmq's draft section of zmq.h (4.3), honoured by
    /// Debian's and upstream's builds since 4.2.3.
    static let zapEnforceDomain: Int32 = 93

    /// Makes this socket a CURVE client of the server whose public key is `serverKey`.
    /// Set before bind or connect.
    public func makeCurveClient(serverKey: String, keys: CurveKeyPair) throws(ZMQError) {
        try setOption(ZMQ_CURVE_SERVERKEY, bytes: Array(serverKey.utf8))
        try setOption(ZMQ_CURVE_PUBLICKEY, bytes: Array(keys.publicKey.utf8))
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: Array(keys.secretKey.utf8))
    }

    /// SUB only: receive messages whose first frame starts with `prefix` ("" for all).
    public func subscribe(_ prefix: String) throws(ZMQError) {
        try setOption(ZMQ_SUBSCRIBE, bytes: Array(prefix.utf8))
    }

    // MARK: Sending

    /// Sends one frame. Returns false when `dontWait` is set and the frame could not be queued.
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, more: Bool = false, dontWait: Bool = false) throws(ZMQError) -> Bool {
        let h = try live("send")
        var flags: Int32 = 0
        if more { flags |= ZMQ_SNDMORE }
        if dontWait { flags |= ZMQ_DONTWAIT }
        while true {
            if zmq_send(h, bytes.baseAddress, bytes.count, flags) >= 0 { return true }
            let err = ZMQError.last("send")
            if err.isInterrupted { continue }
            if err.isAgain { return false }
            throw err
        }
    }

    /// Sends a whole multipart message, one frame per element.
    @discardableResult
    public func send(frames: [[UInt8]], dontWait: Bool = false) throws(ZMQError) -> Bool {
        for (i, frame) in frames.enumerated() {
            let more = i < frames.count - 1
            let sent = frame.withUnsafeBytes { raw in
                Result { () throws(ZMQError) -> Bool in try send(raw, more: more, dontWait: dontWait) }
            }
            if try !sent.get() { return false }
        }
        return true
    }

    /// Sends a multipart message of UTF-8 strings.
    @discardableResult
    public func send(strings: [String], dontWait: Bool = false) throws(ZMQError) -> Bool {
        try send(frames: strings.map { Array($0.utf8) }, dontWait: dontWait)
    }

    // MARK: Receiving

    /// Receives one whole multipart message into `message`, reusing its buffers.
    /// Returns false when `dontWait` is set and nothing was waiting (or a receive timeout expired).
    public func receive(into message: inout MultipartMessage, dontWait: Bool = false) throws(ZMQError) -> Bool {
        let h = try live("receive")
        message.frameCount = 0
        let flags: Int32 = dontWait ? ZMQ_DONTWAIT : 0
        var more: Int32 = 1
        repeat {
            let index = message.frameCount
            var n: Int32
            if index < message.frames.count {
                let capacity = message.frames[index].count
                n = message.frames[index].withUnsafeMutableBytes { zmq_recv(h, $0.baseAddress, capacity, index == 0 ? flags : 0) }
            } else {
                n = zmq_recv(h, nil, 0, index == 0 ? flags : 0)
            }
            if n < 0 {
                let err = ZMQError.last("receive")
                if err.isInterrupted { continue }
                if err.isAgain && index == 0 { return false }
                throw err
            }
            if index < message.lengths.count { message.lengths[index] = Int(n) }
            message.frameCount += 1
            var size = MemoryLayout<Int32>.size
            if zmq_getsockopt(h, ZMQ_RCVMORE, &more, &size) != 0 { throw ZMQError.last("getsockopt RCVMORE") }
        } while more != 0
        return true
    }

    /// Receives one multipart message as new arrays (convenient for clients and tests).
    public func receiveFrames(dontWait: Bool = false) throws(ZMQError) -> [[UInt8]]? {
        let h = try live("receive")
        var frames: [[UInt8]] = []
        var msg = zmq_msg_t()
        zmq_msg_init(&msg)
        defer { zmq_msg_close(&msg) }
        repeat {
            let n = zmq_msg_recv(&msg, h, frames.isEmpty && dontWait ? ZMQ_DONTWAIT : 0)
            if n < 0 {
                let err = ZMQError.last("receive")
                if err.isInterrupted { continue }
                if err.isAgain && frames.isEmpty { return nil }
                throw err
            }
            let data = zmq_msg_data(&msg)
            let count = zmq_msg_size(&msg)
            frames.append(count == 0 ? [] : Array(UnsafeRawBufferPointer(start: data, count: count)))
        } while zmq_msg_more(&msg) != 0
        return frames
    }
}
