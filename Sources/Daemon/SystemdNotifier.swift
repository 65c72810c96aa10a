import Foundation

/// sd_notify without libsystemd: datagrams to the AF_UNIX socket named by $NOTIFY_SOCKET
/// (a leading '@' is the abstract namespace). Does nothing when not run by systemd.
final class SystemdNotifier: @unchecked Sendable {
    private let fd: Int32
    private var address = sockaddr_un()
    private let addressLength: socklen_t
    /// Half of $WATCHDOG_USEC in seconds when the watchdog is enabled for this process.
    let watchdogInterval: Double?

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        var length: socklen_t = 0
        var socketFD: Int32 = -1
        if let path = environment["NOTIFY_SOCKET"], !path.isEmpty, path.utf8.count < 108 {
            socketFD = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            address.sun_family = sa_family_t(AF_UNIX)
            var bytes = Array(path.utf8)
            if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (i, b) in bytes.enumerated() { raw[i] = b }
            }
            length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        }
        fd = socketFD
        addressLength = length
        var interval: Double?
        if let usec = environment["WATCHDOG_USEC"].flatMap(Double.init), usec > 0 {
            let pid = environment["WATCHDOG_PID"].flatMap(Int32.init)
            if pid == nil || pid == getpid() { interval = usec / 2e6 }
        }
        watchdogInterval = fd >= 0 ? interval : nil
    }

    deinit { if fd >= 0 { close(fd) } }

    var isEnabled: Bool { fd >= 0 }

    /// Sends one state string, e.g. "READY=1\nSTATUS=serving". Errors are ignored: the
    /// daemon must not fail because its supervisor went away.
    func notify(_ state: String) {
        guard fd >= 0 else { return }
        var addr = address
        let bytes = Array(state.utf8)
        _ = withUnsafePointer(to: &addr) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sa, addressLength) }
            }
        }
    }
}
