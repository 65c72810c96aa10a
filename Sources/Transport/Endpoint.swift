/// A ZeroMQ endpoint in the CZMQ convention: `@addr` binds, `>addr` connects,
/// and a bare `addr` takes the default of the socket's role.
public struct Endpoint: Equatable, Sendable, CustomStringConvertible {
    public enum Mode: String, Sendable { case bind, connect }

    public var mode: Mode
    /// The libzmq address, e.g. `tcp://127.0.0.1:5555` or `ipc:///run/x.sock`.
    public var address: String

    public init(mode: Mode, address: String) {
        self.mode = mode
        self.address = address
    }

    /// Parses `@addr`, `>addr` or `addr` (which takes `defaultMode`).
    /// Throws a message naming the problem when the address has no known transport.
    public init(parsing text: String, defaultMode: Mode) throws(EndpointError) {
        var rest = Substring(text)
        var mode = defaultMode
        if rest.first == "@" {
            mode = .bind
            rest = rest.dropFirst()
        } else if rest.first == ">" {
            mode = .connect
            rest = rest.dropFirst()
        }
        let address = String(rest)
        guard let sep = address.firstRange(of: "://"), !address[sep.upperBound...].isEmpty else {
            throw EndpointError(endpoint: text, reason: "expected TRANSPORT://ADDRESS, e.g. tcp://127.0.0.1:5555")
        }
        let transport = address[..<sep.lowerBound]
        guard ["tcp", "ipc", "inproc", "pgm", "epgm", "tipc", "vmci", "ws", "wss"].contains(transport) else {
            throw EndpointError(endpoint: text, reason: "unknown transport '\(transport)'")
        }
        self.mode = mode
        self.address = address
    }

    /// The CZMQ spelling, `@addr` or `>addr`.
    public var description: String { (mode == .bind ? "@" : ">") + address }

    /// For an `ipc://` endpoint, the file-system path of its socket file.
    public var ipcPath: String? {
        address.hasPrefix("ipc://") ? String(address.dropFirst("ipc://".count)) : nil
    }
}

/// An endpoint string that cannot be used.
public struct EndpointError: Error, CustomStringConvertible, Sendable {
    public let endpoint: String
    public let reason: String
    public var description: String { "endpoint '\(endpoint)': \(reason)" }
}
