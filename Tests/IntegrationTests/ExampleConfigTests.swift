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
}
