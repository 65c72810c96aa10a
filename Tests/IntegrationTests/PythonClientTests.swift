import Foundation
import Testing

/// The README's Python example, run as a user would against the real daemon with its
/// default input type (SUB): every pred gets a score and labels raise model_version.
@Suite(.serialized) struct PythonClientTests {
    @Test func readmeExampleClientGetsScoresAndSeesLearning() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=256"], inputType: "sub")
        let script = ExampleConfigTests.root.appendingPathComponent("examples/client.py").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script, "--input", d.input, "--output", d.output, "-n", "300"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let deadline = Date().addingTimeInterval(90)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 0, "\(out)")
        #expect(out.contains("preds sent: 300, scores received: 300"), "\(out)")
        #expect(out.contains("model_version now: 1"), "\(out)")
        #expect(try d.stop() == 0)
    }
}
