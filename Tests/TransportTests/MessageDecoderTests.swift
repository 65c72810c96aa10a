import Foundation
import Testing
@testable import Transport

private func decode(_ topic: InputTopic, _ body: String, limits: InputLimits = InputLimits()) -> Result<InputMessage, DecodeError> {
    var decoder = MessageDecoder(limits: limits)
    var message = InputMessage()
    let bytes = Array(body.utf8)
    do {
        try bytes.withUnsafeBytes { raw in try decoder.decode(topic: topic, body: raw, into: &message) }
        return .success(message)
    } catch let error as DecodeError {
        return .failure(error)
    } catch {
        return .failure(DecodeError("unexpected \(error)", kind: "test"))
    }
}

private func rejects(_ topic: InputTopic, _ body: String, _ fragment: String, limits: InputLimits = InputLimits(),
                     sourceLocation: SourceLocation = #_sourceLocation) {
    switch decode(topic, body, limits: limits) {
    case .success(let m): Issue.record("accepted \(body): \(m)", sourceLocation: sourceLocation)
    case .failure(let e): #expect(e.reason.contains(fragment), "reason '\(e.reason)' lacks '\(fragment)'", sourceLocation: sourceLocation)
    }
}

@Suite struct MessageDecoderTests {
    @Test func decodesTheProtocolExamples() throws {
        let pred = try decode(.pred, #"{"id": "txn-000123", "ts": 1764300000.123, "preds": {"xgb": 0.91, "rf": 0.87, "lr": 0.55}}"#).get()
        #expect(pred.id == "txn-000123")
        #expect(pred.ts == 1764300000.123)
        #expect(pred.preds == [Reading(name: "xgb", value: 0.91), Reading(name: "rf", value: 0.87), Reading(name: "lr", value: 0.55)])
        #expect(pred.label == nil)
        let label = try decode(.label, #"{"id": "txn-000123", "label": 1, "ts": 1764900000.0}"#).get()
        #expect(label.label == 1 && label.preds.isEmpty && label.ts == 1764900000)
    }

    @Test func acceptsBooleanLabelsPredsOnLabelsAndUnknownFields() throws {
        #expect(try decode(.label, #"{"id":"a","label":true}"#).get().label == 1)
        #expect(try decode(.label, #"{"id":"a","label":false}"#).get().label == 0)
        #expect(try decode(.label, #"{"id":"a","label":0,"preds":{"x":0.2}}"#).get().preds.count == 1)
        #expect(try decode(.pred, #"{"id":"a","preds":{"x":1},"label":0}"#).get().label == 0)
        let extra = try decode(.pred, #"{"meta":{"a":[1,2,{"b":null}],"c":"d"},"id":"a","preds":{"x":0},"ts":null}"#).get()
        #expect(extra.id == "a" && extra.ts == nil)
        #expect(try decode(.pred, " \n{\"id\":\"a\",\"preds\":{\"x\":0}}\r\n\t").get().id == "a")
    }

    @Test func unescapesIdsIncludingSurrogatePairs() throws {
        let m = try decode(.pred, #"{"id":"t\"x\\\u00e9\ud83d\ude00","preds":{"x":0.5}}"#).get()
        #expect(m.id == "t\"x\\é😀")
    }

    @Test func rejectsEveryRuleWithAPreciseReason() {
        rejects(.pred, "", "empty body")
        rejects(.pred, "[1,2]", "must be a JSON object")
        rejects(.pred, "not json", "must be a JSON object")
        rejects(.pred, #"{"preds":{"x":0.5}}"#, "id: required")
        rejects(.pred, #"{"id":"","preds":{"x":0.5}}"#, "id: must not be empty")
        rejects(.pred, #"{"id":7,"preds":{"x":0.5}}"#, "id: expected a string")
        rejects(.pred, "{\"id\":\"\(String(repeating: "a", count: 257))\",\"preds\":{\"x\":0.5}}", "longer than 256")
        rejects(.pred, #"{"id":"a"}"#, "preds: required")
        rejects(.pred, #"{"id":"a","preds":{}}"#, "at least one classifier")
        rejects(.pred, #"{"id":"a","preds":[0.5]}"#, "preds: expected an object")
        rejects(.pred, #"{"id":"a","preds":{"xgb":1.7}}"#, "preds.xgb: 1.7 is outside [0, 1]")
        rejects(.pred, #"{"id":"a","preds":{"xgb":-0.1}}"#, "preds.xgb: -0.1 is outside [0, 1]")
        rejects(.pred, #"{"id":"a","preds":{"xgb":"0.5"}}"#, "preds.xgb: expected a number in [0, 1], got a string")
        rejects(.pred, #"{"id":"a","preds":{"xgb":NaN}}"#, "NaN and Infinity are not JSON")
        rejects(.pred, #"{"id":"a","preds":{"xgb":Infinity}}"#, "NaN and Infinity are not JSON")
        rejects(.pred, #"{"id":"a","preds":{"xgb":1e999}}"#, "preds.xgb: a number too large for a double is outside [0, 1]")
        rejects(.pred, #"{"id":"a","preds":{"bad name":0.5}}"#, "invalid classifier name")
        rejects(.pred, #"{"id":"a","preds":{"":0.5}}"#, "invalid classifier name")
        rejects(.pred, "{\"id\":\"a\",\"preds\":{\"\(String(repeating: "n", count: 65))\":0.5}}", "invalid classifier name")
        rejects(.pred, #"{"id":"a","preds":{"x":0.5,"x":0.6}}"#, "duplicate classifier 'x'")
        rejects(.pred, #"{"id":"a","id":"b","preds":{"x":0.5}}"#, "duplicate field 'id'")
        rejects(.pred, #"{"id":"a","preds":{"x":0.5}} x"#, "trailing bytes")
        rejects(.pred, #"{"id":"a","preds":{"x":0.5},"ts":-1}"#, "ts: -1 is not a time between 2001 and 2286 in seconds")
        rejects(.pred, #"{"id":"a","preds":{"x":0.5},"ts":1.0}"#, "ts: 1 is not a time between 2001 and 2286")
        rejects(.pred, #"{"id":"a","preds":{"x":0.5},"ts":1764300000123}"#, "ts: 1764300000123 looks like milliseconds; ts is seconds")
        rejects(.pred, #"{"id":"a","preds":{"x":0.5},"ts":1e999}"#, "ts: a number too large for a double is not a time between 2001 and 2286")
        rejects(.pred, #"{"id":"a","preds":{"x":0.5},"ts":"now"}"#, "ts: expected a number")
        rejects(.pred, #"{"id":"a","preds":{"x":0.5}"#, "invalid JSON")
        rejects(.pred, #"{"id":"a","preds":{"x":01}}"#, "leading zero")
        rejects(.label, #"{"id":"a"}"#, "label: required")
        rejects(.label, #"{"id":"a","label":2}"#, "label: expected 0 or 1, got 2")
        rejects(.label, #"{"id":"a","label":"yes"}"#, "got a string")
        rejects(.label, #"{"id":"a","label":0.5}"#, "expected 0 or 1")
        rejects(.label, #"{"id":"a","label":1,"preds":{"x":2}}"#, "outside [0, 1]")
        let many = (0..<5).map { "\"c\($0)\":0.5" }.joined(separator: ",")
        rejects(.pred, "{\"id\":\"a\",\"preds\":{\(many)}}", "more than 4 classifiers", limits: InputLimits(maxPreds: 4))
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        rejects(.pred, "{\"id\":\"a\",\"x\":\(deep),\"preds\":{\"x\":0.5}}", "nested deeper than 16")
        rejects(.pred, "{\"id\":\"a\u{1}\",\"preds\":{\"x\":0.5}}", "control character")
    }

    /// Each rejection falls in the category docs/protocol.md gives: `json` when the body
    /// is not JSON (NaN is not), `field` when valid JSON breaks a rule (a number too
    /// large for a double, an id too long), `limit` for nesting.
    @Test func reasonsFallInTheDocumentedCategories() {
        let cases: [(String, String)] = [
            (#"{"id":"a","preds":{"x":NaN}}"#, "json"),
            (#"{"id":"a","preds":{"x":Infinity}}"#, "json"),
            (#"{"id":"a","preds":{"x":0.5}"#, "json"),
            ("not json", "json"),
            (#"{"id":"a","preds":{"x":1e999}}"#, "field"),
            (#"{"id":"a","preds":{"x":"0.5"}}"#, "field"),
            ("{\"id\":\"\(String(repeating: "a", count: 257))\",\"preds\":{\"x\":0.5}}", "field"),
            (#"{"id":"a","preds":{"x":0.5},"ts":1764300000123}"#, "field"),
            ("{\"id\":\"a\",\"x\":\(String(repeating: "[", count: 40) + String(repeating: "]", count: 40)),\"preds\":{\"x\":0.5}}", "limit"),
        ]
        for (body, kind) in cases {
            switch decode(.pred, body) {
            case .success: Issue.record("accepted \(body)")
            case .failure(let e): #expect(e.kind == kind, "\(body.prefix(60)): \(e.kind) (\(e.reason)), expected \(kind)")
            }
        }
    }

    /// One decoder reused across messages (as the daemon does): names remembered from the
    /// last message by position must never stand in for different bytes, and duplicates
    /// are found however the names are written (escaped, longer than 16 bytes).
    @Test func reusedDecoderKeepsNamesAndDuplicatesExact() throws {
        var decoder = MessageDecoder()
        var message = InputMessage()
        func run(_ body: String) -> Result<InputMessage, DecodeError> {
            do {
                try Array(body.utf8).withUnsafeBytes { try decoder.decode(topic: .pred, body: $0, into: &message) }
                return .success(message)
            } catch let e as DecodeError { return .failure(e) } catch { return .failure(DecodeError("\(error)", kind: "test")) }
        }
        let long = "classifier-with-a-long-name"   // 27 bytes
        let cases: [(String, [String]?)] = [
            (#"{"id":"a","preds":{"gbm":0.1,"rf":0.2,"lr":0.3}}"#, ["gbm", "rf", "lr"]),
            (#"{"id":"b","preds":{"gbm":0.1,"rf":0.2,"lr":0.3}}"#, ["gbm", "rf", "lr"]),
            (#"{"id":"b2","preds":{"gbn":0.1,"rg":0.2,"lr":0.3}}"#, ["gbn", "rg", "lr"]),
            (#"{"id":"b3","preds":{"gbm":0.1,"rf":0.2,"lr":0.3}}"#, ["gbm", "rf", "lr"]),
            (#"{"id":"c","preds":{"rf":0.1,"gbm":0.2,"lr":0.3}}"#, ["rf", "gbm", "lr"]),
            (#"{"id":"d","preds":{"gbn":0.1,"rf":0.2}}"#, ["gbn", "rf"]),
            (#"{"id":"e","preds":{"\u0067bn":0.1,"r\u0066":0.2,"lr":0.3}}"#, ["gbn", "rf", "lr"]),
            (#"{"id":"f","preds":{"gbn":0.1,"\u0067bn":0.2}}"#, nil),
            ("{\"id\":\"g\",\"preds\":{\"\(long)\":0.1,\"\(long)2\":0.2}}", [long, long + "2"]),
            ("{\"id\":\"h\",\"preds\":{\"\(long)\":0.1,\"x\":0.5,\"\(long)\":0.2}}", nil),
            (#"{"id":"i","preds":{"abcdefghijklmnop":0.1,"abcdefghijklmnoq":0.2}}"#, ["abcdefghijklmnop", "abcdefghijklmnoq"]),
            (#"{"id":"j","preds":{"abcdefghijklmnop":0.1,"abcdefghijklmnop":0.2}}"#, nil),
            (#"{"id":"k","preds":{"gbm":0.1,"r f":0.2}}"#, nil),
            (#"{"id":"l","preds":{"gbm":0.1,"rf":0.2}}"#, ["gbm", "rf"]),
            (#"{"\u0069d":"m","pr\u0065ds":{"gbm":0.4}}"#, ["gbm"]),
        ]
        for (body, names) in cases {
            switch (run(body), names) {
            case (.success(let m), let names?):
                #expect(m.preds.map(\.name) == names, "\(body)")
                let reference = try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any]
                #expect(Set((reference["preds"] as! [String: Any]).keys) == Set(names))
                #expect(m.id == reference["id"] as? String)
            case (.failure(let e), nil):
                #expect(e.reason.contains("duplicate classifier") || e.reason.contains("invalid classifier name"), "\(e.reason)")
            case (let got, let names):
                Issue.record("\(body): got \(got), expected \(names.map { "\($0)" } ?? "a rejection")")
            }
        }
    }

    @Test func rejectsInvalidUTF8() {
        var decoder = MessageDecoder()
        var message = InputMessage()
        for bad: [UInt8] in [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82]] {
            let body = Array(#"{"id":""#.utf8) + bad + Array(#"","preds":{"x":0.5}}"#.utf8)
            #expect(throws: DecodeError.self) {
                try body.withUnsafeBytes { raw in try decoder.decode(topic: .pred, body: raw, into: &message) }
            }
        }
    }

    @Test func recognisesTopics() {
        #expect(Array("pred".utf8).withUnsafeBytes { MessageDecoder.topic($0) } == .pred)
        #expect(Array("label".utf8).withUnsafeBytes { MessageDecoder.topic($0) } == .label)
        #expect(Array("preds".utf8).withUnsafeBytes { MessageDecoder.topic($0) } == nil)
        #expect(Array("pre".utf8).withUnsafeBytes { MessageDecoder.topic($0) } == nil)
    }

    /// The allocation-free scanner against Foundation's general JSON parser as the
    /// reference, on seeded random valid messages with varied number formats.
    @Test func agreesWithFoundationOnRandomMessages() throws {
        var seeded = Xorshift(seed: 42)
        for _ in 0..<2000 {
            let n = Int(seeded.next() % 12) + 1
            var parts: [String] = []
            for k in 0..<n {
                let v = Double(seeded.next() % 1_000_001) / 1_000_000
                let text: String
                switch seeded.next() % 4 {
                case 0: text = String(v)
                case 1: text = String(format: "%.3e", v)
                case 2: text = String(format: "%.17g", v)
                default: text = v == 0 ? "0" : String(format: "%.6f", v)
                }
                parts.append("\"m\(k)_x\": \(text)")
            }
            let ts = 1e9 + Double(seeded.next() % 2_000_000_000) + Double(seeded.next() % 1000) / 1000
            let body = "{\"ts\": \(ts), \"preds\": {\(parts.joined(separator: ", "))}, \"id\": \"id-\(seeded.next())\"}"
            let mine = try decode(.pred, body).get()
            let reference = try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any]
            #expect(mine.id == reference["id"] as? String)
            #expect(mine.ts == (reference["ts"] as? NSNumber)?.doubleValue)
            let preds = reference["preds"] as! [String: Any]
            #expect(mine.preds.count == preds.count)
            // Foundation's Linux parser is not correctly rounded (off by 1-2 ulps);
            // exact agreement with strtod is pinned by numbersParseExactlyLikeStrtod.
            for r in mine.preds {
                let expected = try #require((preds[r.name] as? NSNumber)?.doubleValue)
                #expect(abs(r.value - expected) <= 1e-15, "\(r.name) in \(body)")
                #expect(r.value == Double(body.split(separator: "\"\(r.name)\": ")[1].prefix { $0 != "," && $0 != "}" })!)
            }
        }
    }

    @Test func numbersParseExactlyLikeStrtod() throws {
        var seeded = Xorshift(seed: 7)
        for _ in 0..<5000 {
            let bits = seeded.next()
            let v = abs(Double(bitPattern: bits & 0x3FEF_FFFF_FFFF_FFFF))   // finite, |v| < 2
            for text in [String(v), String(format: "%.17g", v), String(format: "%.5e", v), "0.\(seeded.next() % 100000)"] {
                guard let expected = Double(text), expected <= 1 else { continue }
                let got = try decode(.pred, "{\"id\":\"a\",\"preds\":{\"x\":\(text)}}").get().preds[0].value
                #expect(got == expected, "\(text)")
            }
        }
    }
}

struct Xorshift {
    var state: UInt64
    init(seed: UInt64) { state = seed | 1 }
    mutating func next() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }
}
