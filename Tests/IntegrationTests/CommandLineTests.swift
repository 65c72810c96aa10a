import Foundation
import Testing
import Transport

/// The command-line contract: configuration errors are one clear line and a non-zero exit.
@Suite(.serialized) struct CommandLineTests {
    private func tempFile(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cfe-\(UUID().uuidString.prefix(8)).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func checkConfigPrintsTheEffectiveConfiguration() throws {
        let file = try tempFile("learning:\n  batch_size: 128\nmodel:\n  latent_dim: 12\n")
        defer { unlink(file) }
        let (status, out) = try DaemonProcess.runToExit(["--check-config", file, "--set", "learning.lr=0.2"],
                                                        environment: ["CFENSEMBLED_MODEL_LATENT_DIM": "10", "CFENSEMBLED_LERNING_LR": "9",
                                                                      "PATH": "/usr/bin:/bin"])
        #expect(status == 0, "\(out)")
        // A misspelt variable is reported as the running daemon reports it.
        #expect(out.contains("ignoring environment variable that names no configuration key: CFENSEMBLED_LERNING_LR"), "\(out)")
        #expect(out.contains("batch_size: 128"))
        #expect(out.contains("latent_dim: 10"), "environment must override the file: \(out)")
        #expect(out.contains("lr: 0.2"))
    }

    @Test func checkConfigNamesTheUnknownKeyAndExitsNonZero() throws {
        let file = try tempFile("learning:\n  no_such_key: 1\n")
        defer { unlink(file) }
        let (status, out) = try DaemonProcess.runToExit(["--check-config", file])
        #expect(status == 78, "\(out)")
        #expect(out.contains("learning.no_such_key") && out.hasPrefix("cfensembled: error:"), "\(out)")
        #expect(out.split(separator: "\n").count == 1)
    }

    @Test(arguments: [
        ("learning:\n  no_such_key: 1\n", [String](), "learning.no_such_key"),
        ("learning:\n  batch_size: lots\n", [], "learning.batch_size: expected an integer"),
        ("learning:\n  class_weights: 3\n", [], "learning.class_weights: expected true or false"),
        ("nosection:\n  a: 1\n", [], "nosection.a"),
        ("", ["--set", "learning.no_such_key=1"], "learning.no_such_key"),
        ("", ["--set", "learning.batch_size=x"], "learning.batch_size"),
        ("", ["--set", "model.latent_dim=0"], "model.latent_dim"),
        ("", ["--input-type", "req"], "input.type"),
        ("", ["--input", "nonsense"], "input.endpoints"),
        ("", ["--role", "boss"], "cluster.role: expected one of all, learner, scorer"),
        ("", ["--role", "scorer", "--set", "input.join_window_ms=50"], "join_window_ms"),
        ("learning: [1, 2\n", [], "invalid YAML"),
        ("", ["--log-level", "loud"], "log.level"),
        ("", ["--control", "@ipc://@cfensembled-control"], "abstract socket namespace"),
        ("", ["--set", "cluster.etcd_endpoints=http://127.0.0.1:1"], "an election needs --role learner or --role scorer"),
        ("", ["--role", "learner", "--set", "cluster.etcd_endpoints=etcd:2379"], "expected http:// or https:// URLs"),
        ("", ["--role", "learner", "--set", "cluster.etcd_endpoints=http://127.0.0.1:1", "--set", "cluster.etcd_ttl_s=1"],
         "cluster.etcd_ttl_s must be >= 2"),
        ("", ["--role", "scorer", "--set", "cluster.etcd_endpoints=http://127.0.0.1:1", "--set", "cluster.etcd_prefix=x/"],
         "cluster.etcd_prefix"),
        ("", ["--role", "learner", "--set", "cluster.etcd_endpoints=http://127.0.0.1:1", "--set", "cluster.etcd_username=u"],
         "cluster.etcd_username and cluster.etcd_password_file go together"),
        ("", ["--role", "scorer", "--set", "cluster.forward_endpoints=nowhere"], "cluster.forward_endpoints"),
        ("", ["--role", "learner", "--set", "cluster.etcd_endpoints=http://127.0.0.1:1",
              "--set", "cluster.model_endpoint=@tcp://0.0.0.0:45557"], "set cluster.advertise_host"),
    ] as [(String, [String], String)])
    func badConfigurationExitsWithOneClearLine(yaml: String, args: [String], fragment: String) throws {
        let file = try tempFile(yaml)
        defer { unlink(file) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfe-cfg-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (status, out) = try DaemonProcess.runToExit(["--config", file, "--state-dir", dir] + args)
        #expect(status == 78, "\(out)")
        let lines = out.split(separator: "\n")
        #expect(lines.count == 1, "expected one line, got: \(out)")
        #expect(out.contains(fragment), "'\(out)' lacks '\(fragment)'")
    }

    @Test func endpointThatCannotBindIsAConfigurationError() throws {
        let ctx = try ZMQContext()
        let holder = try ZMQSocket(context: ctx, kind: .pub)
        try holder.bind("tcp://127.0.0.1:*")
        let taken = try #require(holder.lastEndpoint)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfe-bind-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (status, out) = try DaemonProcess.runToExit(["--state-dir", dir, "--output", "@" + taken, "--input", "@ipc://\(dir)/in"])
        #expect(status == 78, "\(out)")
        #expect(out.contains("cannot bind") && out.contains("Address already in use"), "\(out)")
    }

    @Test func corruptCheckpointStopsTheStartWithAClearError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfe-cp-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "cfensembled-checkpoint 1 999 abc\n{\"truncated".write(toFile: dir + "/checkpoint.cfe", atomically: true, encoding: .utf8)
        let (status, out) = try DaemonProcess.runToExit(["--state-dir", dir, "--input", "@ipc://\(dir)/in", "--output", "@ipc://\(dir)/out"])
        #expect(status == 78, "\(out)")
        #expect(out.contains("truncated"), "\(out)")
    }
}
