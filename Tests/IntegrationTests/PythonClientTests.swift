import Foundation
import Testing
import Transport

/// The Python example client, run as a user would against the real daemon with its
/// default input type (SUB): every pred gets a score and labels raise model_version.
@Suite(.serialized) struct PythonClientTests {
    @Test func readmeExampleClientGetsScoresAndSeesLearning() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=256"], inputType: "sub")
        let script = ExampleConfigTests.root.appendingPathComponent("examples/client.py").path
        let (status, out) = try DaemonProcess.runToExit(
            [DaemonProcess.python, script, "--input", d.input, "--output", d.output, "--state-dir", d.stateDir, "-n", "300"],
            executable: URL(fileURLWithPath: "/usr/bin/env"), timeout: 90)
        #expect(status == 0, "\(out)")
        #expect(out.contains("preds sent: 300, scores received: 300"), "\(out)")
        #expect(out.contains("model_version now: 1"), "\(out)")
        #expect(try d.stop() == 0)
    }

    /// The client package (clients/python, installed into .venv by the test command):
    /// its own tests against a daemon with a SUB input, one with a PULL input and one
    /// with CURVE.
    @Test(.timeLimit(.minutes(3)))
    func clientPackageTestsPassAgainstRealDaemons() throws {
        let sub = try DaemonProcess()
        try sub.start([], inputType: "sub")
        let pull = try DaemonProcess()
        try pull.start(["--set", "learning.batch_size=16", "--set", "health.interval_s=0.2"])
        let secure = try DaemonProcess()
        let keys = secure.directory.appendingPathComponent("keys").path
        let allowed = secure.directory.appendingPathComponent("allowed").path
        try FileManager.default.createDirectory(atPath: allowed, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
        for name in ["server", "client", "stranger"] {
            let (status, out) = try DaemonProcess.runToExit(["keygen", "\(keys)/\(name)"], executable: WatchTests.cfe)
            #expect(status == 0, "\(out)")
        }
        try FileManager.default.copyItem(atPath: keys + "/client.pub", toPath: allowed + "/client.pub")
        secure.curveClient = (try CurveKey.readOne(keys + "/server.pub"), try CurveKeyPair.load(secretKeyFile: keys + "/client.key"))
        try secure.start(["--set", "security.curve_secret_key_file=\(keys)/server.key", "--set", "security.allowed_clients=\(allowed)"])

        var environment = ProcessInfo.processInfo.environment
        for (prefix, d) in [("SUB", sub), ("PULL", pull), ("CURVE", secure)] {
            environment["CFE_\(prefix)_INPUT"] = d.input
            environment["CFE_\(prefix)_OUTPUT"] = d.output
            environment["CFE_\(prefix)_CONTROL"] = d.control
        }
        environment["CFE_CURVE_SECRET"] = keys + "/client.key"
        environment["CFE_CURVE_SERVER"] = keys + "/server.pub"
        environment["CFE_CURVE_STRANGER"] = keys + "/stranger.key"
        let tests = ExampleConfigTests.root.appendingPathComponent("clients/python/tests").path
        let (status, out) = try DaemonProcess.runToExit(
            [DaemonProcess.python, "-m", "unittest", "discover", "-v", "-s", tests], executable: URL(fileURLWithPath: "/usr/bin/env"),
            environment: environment, timeout: 150)
        #expect(status == 0, "\(out)")
        #expect(out.contains("OK") && !out.contains("skipped"), "\(out)")
        #expect(out.contains("Ran 8 tests"), "\(out)")
        for d in [sub, pull, secure] { #expect(try d.stop() == 0) }
    }
}
