import CZeroMQ

/// Waits for readability on several sockets at once (`zmq_poll`).
public struct ZMQPoller {
    private var items: [zmq_pollitem_t] = []

    public init() {}

    /// Adds a socket to poll for input; returns its index for `isReadable`.
    @discardableResult
    public mutating func add(_ socket: ZMQSocket) -> Int {
        var item = zmq_pollitem_t()
        item.socket = socket.handle
        item.events = Int16(ZMQ_POLLIN)
        items.append(item)
        return items.count - 1
    }

    /// Waits up to `timeoutMs` (-1: forever); returns how many sockets are readable.
    /// An interrupting signal returns 0.
    public mutating func poll(timeoutMs: Int) throws(ZMQError) -> Int {
        let n = items.withUnsafeMutableBufferPointer { zmq_poll($0.baseAddress, Int32($0.count), timeoutMs) }
        if n < 0 {
            let err = ZMQError.last("zmq_poll")
            if err.isInterrupted { return 0 }
            throw err
        }
        return Int(n)
    }

    public func isReadable(_ index: Int) -> Bool { items[index].revents & Int16(ZMQ_POLLIN) != 0 }
}
