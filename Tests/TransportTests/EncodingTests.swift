import Foundation
import Testing
@testable import Transport

@Suite struct EncodingTests {
    @Test func scoreMessageIsValidJSONWithEveryField() throws {
        var w = JSONWriter()
        ScoreMessage(id: "t\"x\n\u{1}é", score: 0.8731, probability: 0.0123, ts: 1764300000.123, modelVersion: 42, nPreds: 3, fallback: false).encode(into: &w)
        let obj = try JSONSerialization.jsonObject(with: Data(w.bytes)) as! [String: Any]
        #expect(obj["id"] as? String == "t\"x\n\u{1}é")
        #expect(obj["score"] as? Double == 0.8731)
        #expect(obj["probability"] as? Double == 0.0123)
        #expect(obj["ts"] as? Double == 1764300000.123)
        #expect(obj["model_version"] as? Int == 42)
        #expect(obj["n_preds"] as? Int == 3)
        #expect(obj["fallback"] as? Bool == false)
    }

    @Test func anExplanationIsAnObjectOfShares() throws {
        var w = JSONWriter()
        ScoreMessage(id: "a", score: 0.7, probability: 0.1, ts: 1, modelVersion: 2, nPreds: 2, fallback: false,
                     explain: ScoreExplanation(expert: "learned", names: ["x\"", "y"], shares: [0.25, 0.5], filled: ["y"]))
            .encode(into: &w)
        let obj = try JSONSerialization.jsonObject(with: Data(w.bytes)) as! [String: Any]
        let e = try #require(obj["explain"] as? [String: Any])
        #expect(e["expert"] as? String == "learned")
        #expect(e["shares"] as? [String: Double] == ["x\"": 0.25, "y": 0.5])
        #expect(e["filled"] as? [String] == ["y"])
        w.reset()
        ScoreMessage(id: "a", score: 0.7, probability: 0.1, ts: 1, modelVersion: 2, nPreds: 2, fallback: false).encode(into: &w)
        #expect((try JSONSerialization.jsonObject(with: Data(w.bytes)) as! [String: Any])["explain"] == nil)
    }

    @Test func doublesRoundTripToFifteenSignificantDigits() throws {
        var seeded = Xorshift(seed: 9)
        var w = JSONWriter()
        for _ in 0..<20000 {
            let exp = Double(Int(seeded.next() % 40) - 20)
            let v = (Double(seeded.next() % 1_000_000_007) / 1_000_000_007) * pow(10, exp) * (seeded.next() % 2 == 0 ? 1 : -1)
            w.reset()
            w.double(v)
            let text = String(decoding: w.bytes, as: UTF8.self)
            let back = try #require(Double(text), "\(text)")
            #expect(abs(back - v) <= abs(v) * 1e-14, "\(v) -> \(text)")
            // And it is JSON.
            #expect((try? JSONSerialization.jsonObject(with: Data("[\(text)]".utf8))) != nil, "\(text)")
        }
        for (v, text) in [(0.0, "0"), (1.0, "1"), (0.5, "0.5"), (42.0, "42"), (-2.25, "-2.25"), (Double.nan, "null")] {
            w.reset(); w.double(v)
            #expect(String(decoding: w.bytes, as: UTF8.self) == text)
        }
    }

    @Test func endpointsFollowTheCZMQConvention() throws {
        #expect(try Endpoint(parsing: "@tcp://127.0.0.1:5555", defaultMode: .connect) == Endpoint(mode: .bind, address: "tcp://127.0.0.1:5555"))
        #expect(try Endpoint(parsing: ">ipc:///tmp/x", defaultMode: .bind) == Endpoint(mode: .connect, address: "ipc:///tmp/x"))
        #expect(try Endpoint(parsing: "tcp://h:1", defaultMode: .bind).mode == .bind)
        #expect(try Endpoint(parsing: "tcp://h:1", defaultMode: .connect).mode == .connect)
        #expect(try Endpoint(parsing: "@ipc:///run/c.sock", defaultMode: .bind).ipcPath == "/run/c.sock")
        #expect(throws: EndpointError.self) { try Endpoint(parsing: "localhost:5555", defaultMode: .bind) }
        #expect(throws: EndpointError.self) { try Endpoint(parsing: "@foo://x", defaultMode: .bind) }
        #expect(throws: EndpointError.self) { try Endpoint(parsing: "@tcp://", defaultMode: .bind) }
    }
}
