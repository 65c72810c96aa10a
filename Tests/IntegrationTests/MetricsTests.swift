import Foundation
import Testing
import Logging
import InMemoryLogging
@testable import Daemon

/// Prometheus metrics, scraped over real HTTP from the running daemon.
@Suite(.serialized) struct MetricsTests {
    private func scrape(_ url: URL) -> (Int, String) {
        let (status, body) = httpGet(url)
        return (status, String(decoding: body, as: UTF8.self))
    }

    @Test func scrapeShowsTrafficModelAndHealth() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=10", "--set", "health.interval_s=0.2"])
        let url = try #require(d.metricsURL, "no metrics URL in the log: \(d.log)")
        let push = try d.producer()
        for i in 0..<30 { try push.send(strings: ["pred", predBody("m\(i)", ["xgb": Double(i % 10) / 10, "rf": 0.5])]) }
        for i in 0..<20 { try push.send(strings: ["label", #"{"id":"m\#(i)","label":\#(i % 2)}"#]) }
        try push.send(strings: ["pred", #"{"id":"bad","preds":{"xgb":7}}"#])
        try push.send(strings: ["label", #"{"id":"nobody","label":1}"#])
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, (try d.status()["labelled"] as? Int ?? 0) < 20 { Thread.sleep(forTimeInterval: 0.05) }
        Thread.sleep(forTimeInterval: 0.5)   // a health tick refreshes the gauges
        #expect(try d.controlRequest(["cmd": "checkpoint"])["ok"] as? Bool == true)

        let (status, text) = scrape(url)
        #expect(status == 200)
        for line in [
            #"cfensembled_messages_received_total{topic="pred"} 31"#,
            #"cfensembled_messages_received_total{topic="label"} 21"#,
            #"cfensembled_scores_published_total{fallback="false"} 30"#,
            #"cfensembled_messages_published_total{topic="score"} 30"#,
            #"cfensembled_messages_published_total{topic="error"} 1"#,
            #"cfensembled_messages_rejected_total{reason="field"} 1"#,
            "cfensembled_labels_learnt_total 20",
            "cfensembled_labels_unmatched_total 1",
            "cfensembled_model_version 2",
            "cfensembled_pending_instances 10",
            #"cfensembled_class_count{class="pos"} 10"#,
            #"cfensembled_health_condition_firing{condition="weight_collapse",severity="critical"} 0"#,
            #"cfensembled_health_condition_firing{condition="label_outage",severity="warning"} 0"#,
            "cfensembled_pending_capacity 1000000",
            "cfensembled_journal_failing 0",
        ] {
            #expect(text.contains(line), "missing '\(line)' in:\n\(text)")
        }
        #expect(text.contains(#"cfensembled_aggregator_weight{classifier="xgb"}"#))
        #expect(text.contains("cfensembled_scoring_duration_seconds_count 30"))
        #expect(text.contains("cfensembled_model_update_duration_seconds_count 2"))
        #expect(text.contains(#"cfensembled_checkpoints_total{result="ok"} 1"#), "\(text)")
        #expect(text.contains("cfensembled_checkpoint_duration_seconds_count 1"))
        #expect(text.contains("cfensembled_checkpoint_bytes "))
        #expect(text.contains("cfensembled_last_checkpoint_timestamp_seconds 1"), "a Unix time after the checkpoint")
        // Known series exist at 0 before anything happened to them.
        #expect(text.contains(#"cfensembled_messages_rejected_total{reason="json"} 0"#), "\(text)")

        // After a restart the restored state is published at once, not at the first update.
        #expect(try d.stop() == 0)
        try d.start(["--set", "learning.batch_size=10", "--set", "health.interval_s=60"])
        let again = try #require(d.metricsURL.map { _ in d.log.components(separatedBy: "url=").last.flatMap { URL(string: String($0.prefix { !$0.isWhitespace })) } } ?? nil)
        let (_, restarted) = scrape(again)
        #expect(restarted.contains("cfensembled_model_version 2"), "\(restarted)")
        #expect(restarted.contains("cfensembled_pending_instances 10"), "\(restarted)")
        #expect(restarted.contains(#"cfensembled_class_count{class="pos"} 10"#))
        #expect(try d.stop() == 0)
    }

    @Test func metricsCanBeSwitchedOffAndABadAddressIsAConfigurationError() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "metrics.listen=off"])
        #expect(d.metricsURL == nil)
        #expect(try d.stop() == 0)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfe-m-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (status, out) = try DaemonProcess.runToExit(["--state-dir", dir, "--input", "@ipc://\(dir)/in", "--output", "@ipc://\(dir)/out",
                                                         "--set", "metrics.listen=localhost"])
        #expect(status == 78, "\(out)")
        #expect(out.contains("metrics.listen"), "\(out)")
    }
}

/// How the metrics endpoint's end is reported: a failure is logged (the daemon goes on
/// without it); a stop for shutdown is not.
@Test func metricsServerFailuresAreLoggedNotSwallowed() {
    struct Broken: Error, CustomStringConvertible { var description: String { "socket closed under the server" } }
    let handler = InMemoryLogHandler()
    let logger = Logger(label: "test") { _ in handler }
    MetricsServer.report(.failure(Broken()), endpoint: "127.0.0.1:9464", shuttingDown: false, logger: logger)
    MetricsServer.report(.failure(CancellationError()), endpoint: "127.0.0.1:9464", shuttingDown: false, logger: logger)
    MetricsServer.report(.failure(Broken()), endpoint: "127.0.0.1:9464", shuttingDown: true, logger: logger)
    MetricsServer.report(.success(()), endpoint: "127.0.0.1:9464", shuttingDown: false, logger: logger)
    let entries = handler.entries
    #expect(entries.count == 2)
    #expect(entries.first?.level == .error && "\(entries.first?.message ?? "")".contains("socket closed under the server"))
    #expect(entries.last?.level == .error && "\(entries.last?.message ?? "")".contains("stopped serving"))
}
