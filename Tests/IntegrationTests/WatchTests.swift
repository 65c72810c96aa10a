import Foundation
import Testing
import Transport

/// `cfe watch` against a real daemon: JSON lines, and the plain (piped) view.
@Suite(.serialized) struct WatchTests {
    static var cfe: URL { DaemonProcess.binary.deletingLastPathComponent().appendingPathComponent("cfe") }

    private func run(_ args: [String]) throws -> (Int32, String) {
        try DaemonProcess.runToExit(args, executable: Self.cfe)
    }

    @Test func watchPrintsHealthAsJSONLinesAndAsAPlainView() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "health.interval_s=0.2"])
        let push = try d.producer()
        try push.send(strings: ["pred", predBody("w1", ["xgb": 0.9, "rf": 0.4])])

        let (status, out) = try run(["watch", d.output, "--json", "--count", "2", "--timeout", "10"])
        #expect(status == 0, "\(out)")
        let lines = out.split(separator: "\n")
        #expect(lines.count == 2, "\(out)")
        for line in lines {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            #expect(obj["topic"] as? String == "health")
            let body = try #require(obj["body"] as? [String: Any])
            #expect(body["status"] as? String == "healthy")
            #expect((body["weights"] as? [String: Double])?.keys.sorted() == ["rf", "xgb"])
        }

        let (plainStatus, plain) = try run(["watch", ">" + d.output, "--count", "1", "--timeout", "10"])
        #expect(plainStatus == 0, "\(plain)")
        #expect(plain.contains("status: healthy"))
        #expect(plain.contains("xgb") && plain.contains("#"), "weights as bars: \(plain)")
        #expect(!plain.contains("\u{1B}["), "no colour codes when piped")
        #expect(try d.stop() == 0)
    }

    @Test func watchRejectsABadEndpoint() throws {
        let (status, out) = try run(["watch", "nonsense"])
        #expect(status != 0)
        #expect(out.contains("TRANSPORT://ADDRESS"), "\(out)")
    }
}
