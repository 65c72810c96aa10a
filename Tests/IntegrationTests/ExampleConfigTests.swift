import Foundation
import Testing

/// config/cfensembled.yaml is the configuration reference: it must be valid, name every
/// key, and state the built-in defaults.
@Suite struct ExampleConfigTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func exampleConfigIsValidAndEqualsTheDefaults() throws {
        let example = Self.root.appendingPathComponent("config/cfensembled.yaml").path
        let (status, withFile) = try DaemonProcess.runToExit(["--check-config", example], environment: ["PATH": "/usr/bin:/bin"])
        #expect(status == 0, "\(withFile)")
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("cfe-empty-\(UUID().uuidString.prefix(8)).yaml").path
        try "".write(toFile: empty, atomically: true, encoding: .utf8)
        defer { unlink(empty) }
        let (_, defaults) = try DaemonProcess.runToExit(["--check-config", empty], environment: ["PATH": "/usr/bin:/bin"])
        // Same effective configuration, line for line, apart from the header naming the file.
        #expect(Array(withFile.split(separator: "\n").dropFirst()) == Array(defaults.split(separator: "\n").dropFirst()))
        // And every key printed is written out in the file.
        let text = try String(contentsOfFile: example, encoding: .utf8)
        for line in defaults.split(separator: "\n").dropFirst() where line.hasPrefix("  ") {
            let key = line.trimmingCharacters(in: .whitespaces).split(separator: ":")[0]
            #expect(text.contains("  \(key):"), "config/cfensembled.yaml does not document \(key)")
        }
    }

    /// The failover example (three etcd members, two learners, two scorers): each
    /// process's configuration (the shared file and its environment file) is valid.
    @Test(arguments: [("learner-a.env", "learner"), ("learner-b.env", "learner"), ("scorer-1.env", "scorer"), ("scorer-2.env", "scorer")])
    func failoverExampleIsValid(envFile: String, role: String) throws {
        let dir = Self.root.appendingPathComponent("examples/failover")
        var env = ["PATH": "/usr/bin:/bin"]
        for line in try String(contentsOf: dir.appendingPathComponent(envFile), encoding: .utf8).split(separator: "\n")
        where !line.hasPrefix("#") && line.contains("=") {
            let kv = line.split(separator: "=", maxSplits: 1)
            env[String(kv[0])] = String(kv[1])
        }
        let (status, out) = try DaemonProcess.runToExit(["--role", role, "--check-config", dir.appendingPathComponent("cfensembled.yaml").path],
                                                        environment: env)
        #expect(status == 0, "\(out)")
        #expect(out.contains("etcd_endpoints:") && out.contains("etcd-3.example"), "\(out)")
        for n in 1...3 {
            let member = try String(contentsOf: dir.appendingPathComponent("etcd-member-\(n).env"), encoding: .utf8)
            #expect(member.contains("ETCD_INITIAL_CLUSTER=\"etcd-1=") && member.contains("ETCD_NAME=\"etcd-\(n)\""))
        }
    }
}
