import Foundation
import Testing
@testable import Transport

/// Key handling and the ZAP handler's answers, independent of a daemon.
@Suite struct CurveTests {
    @Test func keyTextRoundTripsAndDerivesThePublicHalf() throws {
        let pair = try CurveKeyPair.generate()
        #expect(try CurveKeyPair(secretKey: pair.secretKey) == pair)
        let bytes = try #require(CurveKey.decode(pair.publicKey))
        #expect(bytes.count == 32)
        #expect(ZAPHandler.z85(bytes) == pair.publicKey)
        #expect(CurveKey.decode(String(pair.publicKey.dropLast())) == nil)
        #expect(CurveKey.decode(String(repeating: "\"", count: 40)) == nil)
        #expect(throws: CurveKeyError.self) { try CurveKeyPair(secretKey: "short") }
    }

    @Test func allowListFileSkipsCommentsAndRejectsTypos() throws {
        let a = try CurveKeyPair.generate(), b = try CurveKeyPair.generate()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("allow-\(UUID().uuidString)").path
        defer { unlink(path) }
        try "# ops team\n\(a.publicKey)\n\n  \(b.publicKey)  \n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try CurveKey.readAllowList(path) == [CurveKey.decode(a.publicKey)!, CurveKey.decode(b.publicKey)!])
        try "\(a.publicKey)x\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: CurveKeyError.self) { try CurveKey.readAllowList(path) }
        #expect(throws: CurveKeyError.self) { try CurveKey.readAllowList(path + ".missing") }
    }

    @Test func zapAnswersFollowRFC27() throws {
        let ctx = try ZMQContext()
        let known = try CurveKeyPair.generate(), unknown = try CurveKeyPair.generate()
        let zap = try ZAPHandler(context: ctx, allowList: [CurveKey.decode(known.publicKey)!])
        func request(_ mechanism: String, _ key: [UInt8]) -> [[UInt8]] {
            [Array("1.0".utf8), Array("7".utf8), Array("cfensembled".utf8), Array("127.0.0.1".utf8), [], Array(mechanism.utf8), key]
        }
        let ok = zap.answer(request("CURVE", CurveKey.decode(known.publicKey)!))
        #expect(ok.count == 6 && String(decoding: ok[2], as: UTF8.self) == "200" && ok[1] == Array("7".utf8))
        #expect(String(decoding: ok[4], as: UTF8.self) == known.publicKey)
        let no = zap.answer(request("CURVE", CurveKey.decode(unknown.publicKey)!))
        #expect(String(decoding: no[2], as: UTF8.self) == "400")
        #expect(String(decoding: zap.answer(request("NULL", [])[0..<6].map { $0 })[2], as: UTF8.self) == "400")
        #expect(String(decoding: zap.answer([Array("2.0".utf8), [1]])[2], as: UTF8.self) == "500")
        #expect(zap.admitted == 1 && zap.refused == 2)
        zap.replaceAllowList([CurveKey.decode(unknown.publicKey)!])
        #expect(String(decoding: zap.answer(request("CURVE", CurveKey.decode(unknown.publicKey)!))[2], as: UTF8.self) == "200")
        zap.serve(shouldStop: { true })
    }

    /// Without a ZAP handler in the context (before it starts, or after it stops at
    /// shutdown) a CURVE server refuses every client; libzmq's default would admit any key.
    @Test(arguments: [true, false])
    func curveServerWithoutZAPHandlerRefusesEveryone(enforced: Bool) throws {
        guard CurveKeyPair.isAvailable else { return }
        let ctx = try ZMQContext()
        let server = try CurveKeyPair.generate(), stranger = try CurveKeyPair.generate()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("zap-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pull = try ZMQSocket(context: ctx, kind: .pull)
        try pull.makeCurveServer(secretKey: server.secretKey)
        if !enforced { try pull.setOption(ZMQSocket.zapEnforceDomain, Int32(0)) }
        try pull.bind("ipc://\(dir)/s.sock")
        let push = try ZMQSocket(context: ctx, kind: .push)
        try push.makeCurveClient(serverKey: server.publicKey, keys: stranger)
        let monitor = try ZMQMonitor(push, context: ctx, events: .handshakes)
        try push.connect("ipc://\(dir)/s.sock")
        var outcome: ZMQMonitor.Events = []
        for _ in 0..<50 where outcome.isEmpty {
            if let e = monitor.next(timeoutMs: 100) { outcome = e.event }
        }
        if enforced {
            #expect(!outcome.isEmpty && ZMQMonitor.Events.handshakeFailed.contains(outcome), "\(outcome)")
            _ = try? push.send(strings: ["x"], dontWait: true)
            try pull.setReceiveTimeout(300)
            #expect(try pull.receiveFrames() == nil)
        } else {
            // What the option prevents.
            #expect(outcome == .handshakeSucceeded)
        }
        monitor.stop()
    }
}
