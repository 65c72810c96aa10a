import Foundation
import Testing

/// The systemd integration: the unit file verifies, and the daemon speaks sd_notify.
@Suite(.serialized) struct SystemdTests {
    /// The daemon's unit and the scorers' and learners' template units (verified as an instance).
    @Test(arguments: [("cfensembled.service", "cfensembled.service"), ("cfensembled-scorer@.service", "cfensembled-scorer@1.service"),
                      ("cfensembled-learner@.service", "cfensembled-learner@a.service")])
    func unitFileVerifiesWithoutWarnings(file: String, verifiedAs name: String) throws {
        let unit = try String(contentsOf: ExampleConfigTests.root.appendingPathComponent("systemd/\(file)"), encoding: .utf8)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfe-unit-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // verify needs the ExecStart binary to exist: point it at the one just built.
        try unit.replacingOccurrences(of: "/usr/local/bin/cfensembled", with: DaemonProcess.binary.path)
            .write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
        let (status, out) = try DaemonProcess.runToExit(["systemd-analyze", "verify", dir.appendingPathComponent(name).path],
                                                        executable: URL(fileURLWithPath: "/usr/bin/env"))
        #expect(status == 0, "\(out)")
        // Unknown keys only warn (exit 0), so any output is a failure.
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(out)")
        for key in ["Type=notify", "WatchdogSec=", "StateDirectory=cfensembled", "ConfigurationDirectory=cfensembled",
                    "DynamicUser=yes", "ProtectSystem=strict", "ProtectHome=yes", "NoNewPrivileges=yes", "PrivateTmp=yes",
                    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "MemoryDenyWriteExecute=yes", "Restart=on-failure"] {
            #expect(unit.contains(key), "unit lacks \(key)")
        }
    }

    /// The Alertmanager forwarder's unit: verifies without warnings, hardened like the daemon's.
    @Test func alertmanagerForwarderUnitVerifiesWithoutWarnings() throws {
        let unit = try String(contentsOf: ExampleConfigTests.root.appendingPathComponent("systemd/cfensembled-alertmanager.service"),
                              encoding: .utf8)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfe-unit-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("cfensembled-alertmanager.service").path
        try unit.replacingOccurrences(of: "/usr/local/bin/cfe", with: WatchTests.cfe.path).write(toFile: path, atomically: true, encoding: .utf8)
        let (status, out) = try DaemonProcess.runToExit(["systemd-analyze", "verify", path], executable: URL(fileURLWithPath: "/usr/bin/env"))
        #expect(status == 0, "\(out)")
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(out)")
        for key in ["ExecStart=/usr/local/bin/cfe alertmanager --url", "DynamicUser=yes", "ProtectSystem=strict",
                    "NoNewPrivileges=yes", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "Restart=on-failure",
                    "RestartPreventExitStatus=64"] {
            #expect(unit.contains(key), "unit lacks \(key)")
        }
    }

    @Test func notifiesReadyWatchdogAndStoppingOnItsNotifySocket() throws {
        let d = try DaemonProcess()
        let path = d.directory.appendingPathComponent("notify.sock").path
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        func receive(until deadline: Date, _ done: ([String]) -> Bool) -> [String] {
            var got: [String] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while Date() < deadline && !done(got) {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n > 0 { got.append(String(decoding: buffer[0..<n], as: UTF8.self)) }
            }
            return got
        }

        try d.start([], environment: ["NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"])
        var messages = receive(until: Date().addingTimeInterval(10)) { got in
            got.contains { $0.contains("READY=1") } && got.filter { $0.contains("WATCHDOG=1") }.count >= 3
        }
        #expect(messages.first?.contains("READY=1") == true, "\(messages)")
        #expect(messages.filter { $0.contains("WATCHDOG=1") }.count >= 3, "watchdog every WATCHDOG_USEC/2: \(messages)")
        #expect(try d.stop() == 0)
        messages += receive(until: Date().addingTimeInterval(2)) { $0.contains { $0.contains("STOPPING=1") } }
        #expect(messages.contains { $0.contains("STOPPING=1") }, "\(messages)")
    }
}
