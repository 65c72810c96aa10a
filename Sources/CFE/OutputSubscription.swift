import ArgumentParser
import Foundation
import Transport

/// A SUB connection to a daemon's output socket, read until a message count or a
/// deadline is reached (shared by `cfe watch` and `cfe tail`).
struct OutputSubscription {
    let endpoint: Endpoint
    private let context: ZMQContext
    private let socket: ZMQSocket

    /// Connects (or binds, with '@') to `text`, subscribed to `topics` ("" for all).
    init(_ text: String, topics: [String], curve: CurveOptions) throws {
        do { endpoint = try Endpoint(parsing: text, defaultMode: .connect) } catch { throw ValidationError("\(error)") }
        context = try ZMQContext()
        socket = try ZMQSocket(context: context, kind: .sub)
        for t in topics { try socket.subscribe(t) }
        try socket.setReceiveTimeout(200)
        try curve.apply(to: socket)
        try socket.attach(endpoint)
    }

    /// Calls `body` with each multipart message until `count` messages (0: no limit) or
    /// `timeout` seconds (0: no limit) have passed.
    func read(count: Int, timeout: Double, _ body: ([[UInt8]]) throws -> Void) throws {
        let deadline = timeout > 0 ? Date().addingTimeInterval(timeout) : .distantFuture
        var seen = 0
        while Date() < deadline && (count == 0 || seen < count) {
            guard let frames = try socket.receiveFrames() else { continue }
            seen += 1
            try body(frames)
        }
    }

    /// Calls `body` with each multipart message, and with nil at least every 200 ms when
    /// none arrives (for timers), until `timeout` seconds (0: no limit) have passed.
    func poll(timeout: Double, _ body: ([[UInt8]]?) throws -> Void) throws {
        let deadline = timeout > 0 ? Date().addingTimeInterval(timeout) : .distantFuture
        while Date() < deadline {
            try body(try socket.receiveFrames())
        }
    }
}
