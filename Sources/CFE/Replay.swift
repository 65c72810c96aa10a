import ArgumentParser
import Foundation
import Transport

/// `cfe replay FILE`: sends recorded preds and labels to a running daemon.
struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send preds and labels from a CSV or JSON-lines file to a running daemon.",
        discussion: """
        JSON lines: one object per line, a pred or label body as in the protocol; an optional "topic" field \
        ("pred" or "label") says which, otherwise a line with "preds" is a pred and one without is a label.
        CSV: a header row; column id is required, topic, ts and label are optional, every other column is a \
        classifier (an empty cell is a classifier that did not report). Plain CSV: no quoted commas.
        """
    )

    @Argument(help: "The file (.csv, or JSON lines).")
    var file: String

    @Option(help: "The daemon's input endpoint (connects).")
    var input: String = "tcp://127.0.0.1:5555"

    @Option(help: "Socket type: push (for --input-type pull: no loss) or pub.")
    var type: String = "push"

    @Option(help: "Messages per second (0: as fast as possible).")
    var rate: Double = 0

    @OptionGroup var curve: CurveOptions

    @Flag(help: "No progress display.")
    var quiet = false

    func run() throws {
        let target: Endpoint
        do { target = try Endpoint(parsing: input, defaultMode: .connect) } catch { throw ValidationError("\(error)") }
        guard type == "push" || type == "pub" else { throw ValidationError("--type must be push or pub") }
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
        let messages = try Self.parse(String(decoding: data, as: UTF8.self), csv: file.lowercased().hasSuffix(".csv"))
        guard !messages.isEmpty else { throw ValidationError("\(file) holds no messages") }

        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, kind: type == "push" ? .push : .pub)
        try socket.setSendHighWaterMark(0)
        try curve.apply(to: socket)
        try socket.attach(target)
        if type == "pub" { Thread.sleep(forTimeInterval: 0.5) }   // PUB/SUB slow joiner
        var progress = Progress(total: messages.count, enabled: !quiet)
        let start = Date()
        for (i, m) in messages.enumerated() {
            if rate > 0 {
                let due = start.addingTimeInterval(Double(i) / rate)
                let wait = due.timeIntervalSinceNow
                if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            }
            try socket.send(frames: [Array(m.topic.utf8), m.body])
            progress.update(i + 1)
        }
        progress.finish()
        socket.close(linger: 10_000)   // let the queue drain before exiting
    }

    struct Message {
        var topic: String
        var body: [UInt8]
    }

    static func parse(_ text: String, csv: Bool) throws -> [Message] {
        var out: [Message] = []
        let lines = text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        if csv {
            guard let header = lines.first?.split(separator: ",", omittingEmptySubsequences: false)
                .map({ $0.trimmingCharacters(in: .whitespaces) }) else { return [] }
            guard let idColumn = header.firstIndex(of: "id") else { throw ValidationError("CSV header has no id column") }
            let special: Set<String> = ["id", "topic", "ts", "label"]
            for (n, line) in lines.dropFirst().enumerated() {
                let cells = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard cells.count == header.count else {
                    throw ValidationError("CSV line \(n + 2): \(cells.count) cells, header has \(header.count)")
                }
                var body: [String: Any] = ["id": cells[idColumn]]
                var preds: [String: Double] = [:]
                for (k, name) in header.enumerated() where !cells[k].isEmpty && name != "id" && name != "topic" {
                    if special.contains(name) {
                        guard let v = Double(cells[k]) else { throw ValidationError("CSV line \(n + 2): \(name) '\(cells[k])' is not a number") }
                        body[name] = name == "label" ? Int(v) as Any : v as Any
                    } else {
                        guard let v = Double(cells[k]) else { throw ValidationError("CSV line \(n + 2): \(name) '\(cells[k])' is not a number") }
                        preds[name] = v
                    }
                }
                if !preds.isEmpty { body["preds"] = preds }
                let explicit = header.firstIndex(of: "topic").map { cells[$0] }.flatMap { $0.isEmpty ? nil : $0 }
                let topic = explicit ?? (preds.isEmpty ? "label" : "pred")
                out.append(Message(topic: topic, body: Array(try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]))))
            }
        } else {
            for (n, line) in lines.enumerated() {
                guard var obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                    throw ValidationError("line \(n + 1) is not a JSON object")
                }
                if let topic = obj.removeValue(forKey: "topic") as? String {
                    out.append(Message(topic: topic, body: Array(try JSONSerialization.data(withJSONObject: obj))))
                } else {
                    out.append(Message(topic: obj["preds"] != nil ? "pred" : "label", body: Array(line.utf8)))
                }
            }
        }
        return out
    }
}

/// A progress line on stderr: a bar on a terminal, plain lines otherwise.
struct Progress {
    let total: Int
    let enabled: Bool
    let terminal = isatty(STDERR_FILENO) != 0
    let start = Date()
    var lastShown = Date.distantPast
    var done = 0

    init(total: Int, enabled: Bool) {
        self.total = total
        self.enabled = enabled
    }

    mutating func update(_ n: Int) {
        done = n
        guard enabled, Date().timeIntervalSince(lastShown) >= (terminal ? 0.2 : 2) || n == total else { return }
        lastShown = Date()
        FileHandle.standardError.write(Data(line().utf8))
    }

    mutating func finish() {
        guard enabled else { return }
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    func line() -> String {
        let elapsed = max(Date().timeIntervalSince(start), 1e-6)
        let rate = Double(done) / elapsed
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let fraction = Double(done) / Double(max(total, 1))
        let text = String(format: "%d/%d msgs  %.0f msg/s  ETA %.1f s", done, total, rate, eta)
        guard terminal else { return "replay: \(text)\n" }
        let width = 30
        let filled = Int(fraction * Double(width))
        return "\r[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            + String(format: "%3.0f%% ", fraction * 100) + text
    }
}
