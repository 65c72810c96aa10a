import Foundation
import Testing

/// SIGHUP re-reads the configuration: live keys apply, the others are named as needing a restart.
@Suite(.serialized) struct ReloadTests {

    @Test func sighupAppliesLiveKeysAndNamesTheRest() throws {
        let d = try DaemonProcess()
        let file = d.directory.appendingPathComponent("cfe.yaml").path
        try "health:\n  fire_after: 2\n  silent_after_s: 600\n".write(toFile: file, atomically: true, encoding: .utf8)
        try d.start(["--config", file])
        let pid = try #require(d.process?.processIdentifier)

        try "health:\n  fire_after: 4\n  silent_after_s: 30\nmodel:\n  latent_dim: 3\n".write(toFile: file, atomically: true, encoding: .utf8)
        kill(pid, SIGHUP)
        #expect(d.waitForLog("configuration reloaded"), "\(d.log)")
        let line = d.log.split(separator: "\n").first { $0.contains("configuration reloaded") }.map(String.init) ?? ""
        #expect(line.contains("applied=health.silent_after_s,health.fire_after") || line.contains("applied=health.fire_after,health.silent_after_s"), "\(line)")
        #expect(line.contains("need_restart=model.latent_dim"), "\(line)")

        // A broken file is refused; the daemon keeps running on its configuration.
        try "health:\n  fire_after: lots\n".write(toFile: file, atomically: true, encoding: .utf8)
        kill(pid, SIGHUP)
        #expect(d.waitForLog("configuration not reloaded"), "\(d.log)")
        #expect(d.log.contains("health.fire_after: expected an integer"))
        #expect(d.isRunning)
        #expect(try d.status()["ok"] as? Bool == true)
        #expect(try d.stop() == 0)
    }

    /// A reload more often than the checkpoint interval must not postpone checkpoints.
    @Test func frequentReloadsDoNotPostponeCheckpoints() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "state.checkpoint_interval_s=2"])
        let pid = try #require(d.process?.processIdentifier)
        let push = try d.producer()
        try push.send(strings: ["pred", predBody("x", ["a": 0.2, "b": 0.7])])
        var written = 0
        for _ in 0..<14 where written == 0 {   // 7 s: more than three intervals
            kill(pid, SIGHUP)
            Thread.sleep(forTimeInterval: 0.5)
            written = (try d.status()["persistence"] as? [String: Any])?["checkpoints_written"] as? Int ?? 0
        }
        #expect(written >= 1, "no checkpoint in 7 s with SIGHUP every 0.5 s and a 2 s interval")
        #expect(d.log.contains("configuration reloaded"))
        #expect(try d.stop() == 0)
    }
}
