import Foundation
import Logging
import Testing
import Transport
@testable import Daemon

/// The daemon's background threads start and stop in one documented order: an event
/// loop with CURVE and a journal, run in process over ipc sockets and stopped.
@Suite struct ShutdownOrderTests {
    @Test func threadsStartAndStopInTheDocumentedOrder() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfe-order-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try CurveKeyPair.generate(), client = try CurveKeyPair.generate()
        _ = FileManager.default.createFile(atPath: dir + "/server.key", contents: Data((server.secretKey + "\n").utf8),
                                       attributes: [.posixPermissions: 0o600])
        _ = FileManager.default.createFile(atPath: dir + "/allowed", contents: Data((client.publicKey + "\n").utf8))

        var config = DaemonConfiguration()
        config.inputEndpoints = ["@ipc://\(dir)/in.sock"]
        config.inputType = .pull
        config.outputEndpoint = "@ipc://\(dir)/out.sock"
        config.controlEndpoint = "@ipc://\(dir)/control.sock"
        config.stateDir = dir + "/state"
        config.metricsListen = "off"
        config.curveSecretKeyFile = dir + "/server.key"
        config.allowedClients = dir + "/allowed"
        let loop = try EventLoop(config: config, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let stop = StopFlag()
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var clean = false
        let thread = Thread {
            clean = loop.run(until: stop)
            done.signal()
        }
        thread.start()
        Thread.sleep(forTimeInterval: 0.3)
        stop.set()
        #expect(done.wait(timeout: .now() + 30) == .success, "the loop did not stop")
        #expect(clean, "the final checkpoint was not written")
        #expect(loop.threads.steps == [
            .zapStarted, .writerStarted, .journalWriterStarted, .syncerStarted, .updaterStarted,
            .updaterStopped, .writerStopped, .journalClosed, .socketsClosed, .zapStopped,
        ])
        #expect(FileManager.default.fileExists(atPath: dir + "/state/checkpoint.cfe"))
    }
}
