import Foundation
import Testing

/// etcd's own security, configured in the daemon: users and passwords (a token, renewed
/// when etcd refuses it), and TLS with client certificates. Real etcd on loopback.
@Suite(.serialized) struct EtcdSecurityTests {
    func startLearner(_ d: DaemonProcess, etcd: EtcdServer, prefix: String, _ extra: [String]) throws {
        let dir = d.directory.path
        try d.start(["--role", "learner", "--set", "cluster.name=\(d.directory.lastPathComponent)",
                     "--set", "cluster.model_endpoint=ipc://\(dir)/model.sock", "--set", "cluster.snapshot_endpoint=ipc://\(dir)/snapshot.sock",
                     "--set", "cluster.forward_endpoint=ipc://\(dir)/forward.sock", "--set", "cluster.etcd_endpoints=\(etcd.url)",
                     "--set", "cluster.etcd_prefix=\(prefix)", "--set", "cluster.etcd_ttl_s=2", "--set", "cluster.etcd_poll_s=0.2"] + extra)
    }

    func cluster(_ d: DaemonProcess) -> [String: Any] { ((try? d.status()) ?? [:])["cluster"] as? [String: Any] ?? [:] }

    func secretFile(_ dir: URL, _ text: String) throws -> String {
        let path = dir.appendingPathComponent("etcd-password").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
        return path
    }

    /// A user with read and write on the cluster's prefix leads; a wrong password and a
    /// prefix outside the user's grant are each an etcd error in `status`, and no leadership.
    @Test func usersAndPasswords() throws {
        let etcd = try EtcdServer()
        try etcd.ctl(["user", "add", "root", "--new-user-password=rootpw"])
        try etcd.ctl(["role", "add", "cfe"])
        try etcd.ctl(["role", "grant-permission", "cfe", "--prefix=true", "readwrite", "/cfe-auth/"])
        try etcd.ctl(["user", "add", "cfe", "--new-user-password=s3cret"])
        try etcd.ctl(["user", "grant-role", "cfe", "cfe"])
        try etcd.ctl(["auth", "enable"])
        let good = try DaemonProcess(), wrong = try DaemonProcess(), outside = try DaemonProcess()
        try startLearner(good, etcd: etcd, prefix: "/cfe-auth/a",
                         ["--set", "cluster.etcd_username=cfe", "--set", "cluster.etcd_password_file=\(try secretFile(good.directory, "s3cret\n"))"])
        #expect(waitUntil(15) { cluster(good)["election"] as? String == "leader" }, "\(good.log.suffix(2000))")
        try startLearner(wrong, etcd: etcd, prefix: "/cfe-auth/a",
                         ["--set", "cluster.etcd_username=cfe", "--set", "cluster.etcd_password_file=\(try secretFile(wrong.directory, "guess"))"])
        #expect(waitUntil(15) { (cluster(wrong)["etcd_error"] as? String)?.contains("authentication") == true }, "\(cluster(wrong))")
        try startLearner(outside, etcd: etcd, prefix: "/elsewhere",
                         ["--set", "cluster.etcd_username=cfe", "--set", "cluster.etcd_password_file=\(try secretFile(outside.directory, "s3cret"))"])
        #expect(waitUntil(15) { (cluster(outside)["etcd_error"] as? String)?.contains("permission denied") == true }, "\(cluster(outside))")
        #expect(cluster(wrong)["election"] as? String != "leader" && cluster(outside)["election"] as? String != "leader")
        #expect(cluster(good)["election"] as? String == "leader" && cluster(good)["standbys"] as? [String] == [])
    }

    /// etcd serving https with client certificates required: a learner with the CA and
    /// a client certificate leads; one without a certificate gets an etcd error.
    @Test func tlsWithClientCertificates() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfe-tls-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func openssl(_ args: [String]) throws {
            let (status, out) = try DaemonProcess.runToExit(args, executable: URL(fileURLWithPath: "/usr/bin/openssl"))
            guard status == 0 else { throw DaemonError("openssl \(args.joined(separator: " ")): \(out)") }
        }
        let p = dir.path
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(p)/ca.key", "-out", "\(p)/ca.pem",
                     "-days", "2", "-subj", "/CN=cfe-test-ca"])
        // etcd's JSON gateway connects to etcd itself with the server's certificate, so
        // that certificate must allow client authentication too.
        for (name, ext) in [("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth"),
                            ("client", "extendedKeyUsage=clientAuth")] {
            try ext.write(toFile: "\(p)/\(name).ext", atomically: true, encoding: .utf8)
            try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(p)/\(name).key", "-out", "\(p)/\(name).csr",
                         "-subj", "/CN=cfe-\(name)"])
            try openssl(["x509", "-req", "-in", "\(p)/\(name).csr", "-CA", "\(p)/ca.pem", "-CAkey", "\(p)/ca.key", "-CAcreateserial",
                         "-out", "\(p)/\(name).pem", "-days", "2", "-extfile", "\(p)/\(name).ext"])
        }
        let etcd = try EtcdServer(tls: (cert: "\(p)/server.pem", key: "\(p)/server.key", ca: "\(p)/ca.pem"))
        let good = try DaemonProcess(), anonymous = try DaemonProcess()
        try startLearner(good, etcd: etcd, prefix: "/cfe-tls",
                         ["--set", "cluster.etcd_ca_file=\(p)/ca.pem", "--set", "cluster.etcd_cert_file=\(p)/client.pem",
                          "--set", "cluster.etcd_key_file=\(p)/client.key"])
        #expect(waitUntil(15) { cluster(good)["election"] as? String == "leader" }, "\(good.log.suffix(2000))")
        try startLearner(anonymous, etcd: etcd, prefix: "/cfe-tls", ["--set", "cluster.etcd_ca_file=\(p)/ca.pem"])
        #expect(waitUntil(15) { cluster(anonymous)["etcd_error"] != nil }, "\(cluster(anonymous))")
        #expect(cluster(anonymous)["election"] as? String != "leader")
    }
}
