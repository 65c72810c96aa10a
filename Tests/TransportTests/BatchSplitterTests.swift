import Foundation
import Testing
@testable import Transport

/// The entries a splitter finds in `body`, as strings, or why it refused the batch.
private func split(_ body: String, max: Int = 1024, topic: BatchTopic = .predBatch) -> Result<(entries: [String], beyond: Int), DecodeError> {
    var splitter = BatchSplitter(maxEntries: max)
    let bytes = Array(body.utf8)
    do {
        try bytes.withUnsafeBytes { raw in try splitter.split(raw, topic: topic) }
        let entries = splitter.entries.map { String(decoding: bytes[$0], as: UTF8.self) }
        return .success((entries, splitter.beyond))
    } catch let error as DecodeError {
        return .failure(error)
    } catch {
        return .failure(DecodeError("unexpected \(error)", kind: "test"))
    }
}

@Suite struct BatchSplitterTests {
    @Test func findsEveryEntryAsWritten() throws {
        let body = #"{"items": [{"id": "a", "preds": {"x": 0.1}}, {"id": "b,]}", "preds": {"x": [1, {"y": "\"]"}]}} ,{}]}"#
        let got = try split(body).get()
        #expect(got.entries.map { $0.trimmingCharacters(in: .whitespaces) } == [
            #"{"id": "a", "preds": {"x": 0.1}}"#,
            #"{"id": "b,]}", "preds": {"x": [1, {"y": "\"]"}]}}"#,
            "{}",
        ])
        #expect(got.beyond == 0)
    }

    @Test func anEntryThatIsNotJSONStillEndsAtItsComma() throws {
        // Python's json.dumps writes NaN: that entry is bad, its neighbours are not.
        let got = try split(#"{"items":[{"id":"a","preds":{"x":NaN}},{"id":"b","preds":{"x":0.5}}]}"#).get()
        #expect(got.entries == [#"{"id":"a","preds":{"x":NaN}}"#, #"{"id":"b","preds":{"x":0.5}}"#])
    }

    @Test func unknownFieldsAroundItemsAreSkipped() throws {
        let got = try split(#"{"producer": {"name": "gw-1", "seq": [1, 2]}, "items": [1,2], "sent": 1764300000}"#).get()
        #expect(got.entries == ["1", "2"])
    }

    @Test func entriesBeyondTheLimitAreCountedNotRead() throws {
        let got = try split(#"{"items":[1,2,3,4,5]}"#, max: 3).get()
        #expect(got.entries == ["1", "2", "3"])
        #expect(got.beyond == 2)
    }

    @Test(arguments: [
        ("", "empty body", "json"),
        ("[1, 2]", "body must be a JSON object", "json"),
        (#"{"item": [1]}"#, "items: required", "field"),
        (#"{"items": {"a": 1}}"#, "items: expected an array", "field"),
        (#"{"items": []}"#, "at least one entry", "field"),
        (#"{"items": [1], "items": [2]}"#, "duplicate field 'items'", "field"),
        (#"{"items": [{"id": "a"}"#, "not closed", "json"),
        (#"{"items": [{"id": "a]}"#, "unterminated string", "json"),
        (#"{"items": [{"id": "a"}}]}"#, "unbalanced", "json"),
        (#"{"items": [1]} x"#, "trailing bytes", "json"),
        (#"{"items": [1] "x": 2}"#, "invalid JSON", "json"),
        (#"{"items": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}"#, "nested deeper", "limit"),
    ])
    func refusesWhatItCannotFollow(body: String, fragment: String, kind: String) {
        switch split(body) {
        case .success(let got): Issue.record("split \(body) into \(got)")
        case .failure(let e):
            #expect(e.reason.contains(fragment), "reason '\(e.reason)' lacks '\(fragment)'")
            #expect(e.kind == kind)
            #expect(e.topic == "pred_batch")
        }
    }

    @Test func eachEntryDecodesAsASingleMessageWould() throws {
        // Every entry the splitter finds decodes to what the same body sent alone decodes to.
        let bodies = [#"{"id":"a","ts":1764300000.5,"preds":{"xgb":0.25,"rf":0.5}}"#, #"{"id":"b","preds":{"xgb":1},"label":1}"#]
        let got = try split(#"{"items":["# + bodies.joined(separator: ",") + "]}").get()
        #expect(got.entries == bodies)
    }

    @Test func recognisesOnlyTheTwoBatchTopics() {
        func r(_ s: String) -> BatchTopic? { Array(s.utf8).withUnsafeBytes { BatchTopic.recognise($0) } }
        #expect(r("pred_batch") == .predBatch)
        #expect(r("label_batch") == .labelBatch)
        #expect(r("pred") == nil)
        #expect(r("score_batch") == nil)
        #expect(BatchTopic.predBatch.entryTopic == .pred && BatchTopic.labelBatch.entryTopic == .label)
    }
}
