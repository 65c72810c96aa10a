// libFuzzer target for the input decoders: the first byte picks the topic (bit 0: pred or
// label; bit 1: a batch of them), the rest is the body. Every accepted message, and every
// accepted entry of a batch, must satisfy the rules of docs/protocol.md; a batch's entries
// must lie in order inside its body, at most the limit of them. A violation or a crash is
// a finding. Build and run with scripts/fuzz.sh (a normal build only prints how to).
import CFuzzerShim
import Foundation
import Transport

nonisolated(unsafe) var decoder = MessageDecoder(limits: InputLimits(maxIdBytes: 256, maxPreds: 64, maxDepth: 16))
nonisolated(unsafe) var message = InputMessage()
nonisolated(unsafe) var splitter = BatchSplitter(maxEntries: 32, maxDepth: 16)

let callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32 = { data, size in
    guard let data, size > 0 else { return 0 }
    let topic: InputTopic = data[0] & 1 == 0 ? .pred : .label
    let body = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    guard data[0] & 2 != 0 else {
        checkOne(topic: topic, body: body)
        return 0
    }
    do {
        try splitter.split(body, topic: topic == .pred ? .predBatch : .labelBatch)
    } catch let error as DecodeError {
        precondition(!error.reason.isEmpty, "a batch rejected without a reason")
        return 0
    } catch {
        preconditionFailure("unexpected error type: \(error)")
    }
    precondition(!splitter.entries.isEmpty || splitter.beyond > 0, "accepted a batch without entries")
    precondition(splitter.entries.count <= 32 && (splitter.beyond == 0 || splitter.entries.count == 32), "entries beyond the limit read")
    var end = 0
    for range in splitter.entries {
        precondition(range.lowerBound >= end && range.upperBound <= body.count, "entry \(range) out of order or outside the body")
        end = range.upperBound
        checkOne(topic: topic, body: UnsafeRawBufferPointer(rebasing: body[range]))
    }
    return 0
}

/// Decodes one body; what is accepted must satisfy the protocol's rules.
func checkOne(topic: InputTopic, body: UnsafeRawBufferPointer) {
    do {
        try decoder.decode(topic: topic, body: body, into: &message)
    } catch let error as DecodeError {
        precondition(!error.reason.isEmpty, "a reject without a reason")
        return
    } catch {
        preconditionFailure("unexpected error type: \(error)")
    }
    precondition(!message.id.isEmpty && message.id.utf8.count <= 256, "accepted id of \(message.id.utf8.count) bytes")
    precondition(topic == .label || !message.preds.isEmpty, "accepted a pred without preds")
    precondition(topic == .pred || message.label != nil, "accepted a label without label")
    precondition(message.preds.count <= 64, "accepted \(message.preds.count) classifiers")
    for r in message.preds {
        precondition(r.value >= 0 && r.value <= 1 && r.value.isFinite, "accepted \(r.name)=\(r.value)")
        precondition((1...64).contains(r.name.utf8.count) && r.name.utf8.allSatisfy {
            ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 95 || $0 == 46 || $0 == 45
        }, "accepted classifier name \(r.name)")
    }
    precondition(Set(message.preds.map(\.name)).count == message.preds.count, "accepted duplicate classifier names")
    if let ts = message.ts { precondition(ts >= 0 && ts.isFinite, "accepted ts \(ts)") }
}

guard cfe_fuzzer_available() != 0 else {
    FileHandle.standardError.write(Data("decoder-fuzz: not linked with libFuzzer; run scripts/fuzz.sh\n".utf8))
    exit(2)
}
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv, callback))
