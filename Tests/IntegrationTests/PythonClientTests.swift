import Foundation
import Testing

/// The Python example client, run as a user would against the real daemon with its
/// default input type (SUB): every pred gets a score and labels raise model_version.
@Suite(.serialized) struct PythonClientTests {
    @Test func readmeExampleClientGetsScoresAndSeesLearning() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=256"], inputType: "sub")
        let script = ExampleConfigTests.root.appendingPathComponent("examples/client.py").path
        let (status, out) = try DaemonProcess.runToExit(
            [DaemonProcess.python, script, "--input", d.input, "--output", d.output, "-n", "300"],
            executable: URL(fileURLWithPath: "/usr/bin/env"), timeout: 90)
        #expect(status == 0, "\(out)")
        #expect(out.contains("preds sent: 300, scores received: 300"), "\(out)")
        #expect(out.contains("model_version now: 1"), "\(out)")
        #expect(try d.stop() == 0)
    }
}
