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
}
