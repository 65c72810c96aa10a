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
}
