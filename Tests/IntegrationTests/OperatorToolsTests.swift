import Foundation
import Online
import Testing
import TestSupport

/// The glue for operators' tools, each against the real component on loopback:
/// Prometheus rules (promtool), Alertmanager (cfe alertmanager), the Grafana dashboard
/// (its queries against a real daemon's metric names).
@Suite struct OperatorToolsTests {
    static let deploy = ExampleConfigTests.root.appendingPathComponent("deploy")

    /// An executable on PATH or in /usr/bin, or nil.
    static func tool(_ name: String) -> String? {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin"]
        return dirs.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static let promtool = tool("promtool")
    static let alertmanager = tool("prometheus-alertmanager") ?? tool("alertmanager")

    @Test(.enabled(if: promtool != nil, "promtool is not installed (Debian package prometheus; scripts/install-deps.sh installs it)"))
    func alertingRulesPassPromtoolCheckAndTheirUnitTests() throws {
        let dir = Self.deploy.appendingPathComponent("prometheus")
        var (status, out) = try DaemonProcess.runToExit(["check", "rules", dir.appendingPathComponent("cfensembled-rules.yml").path],
                                                        executable: URL(fileURLWithPath: Self.promtool!), timeout: 60)
        #expect(status == 0, "\(out)")
        #expect(out.contains("SUCCESS: 24 rules found"), "\(out)")
        (status, out) = try DaemonProcess.runToExit(["test", "rules", dir.appendingPathComponent("cfensembled-rules.test.yml").path],
                                                    executable: URL(fileURLWithPath: Self.promtool!), timeout: 60)
        #expect(status == 0, "\(out)")
        #expect(out.contains("SUCCESS"), "\(out)")
    }

    /// Every health condition the daemon knows has a rule, with the daemon's severity.
    @Test func everyHealthConditionHasARule() throws {
        let rules = try String(contentsOf: Self.deploy.appendingPathComponent("prometheus/cfensembled-rules.yml"), encoding: .utf8)
        let perClassifier: [HealthAlert.Name: String] = [.classifierSilent: "cfensembled_classifier_silent",
                                                         .classifierDrift: "cfensembled_classifier_drifting"]
        for condition in HealthAlert.Name.allCases {
            if let gauge = perClassifier[condition] {
                // One alert per classifier, named by the per-classifier gauge.
                #expect(rules.contains("max by (job, instance, classifier) (\(gauge)) == 1"), "no rule for \(condition)")
            } else {
                #expect(rules.contains(#"cfensembled_health_condition_firing{condition="\#(condition.rawValue)"}"#), "no rule for \(condition)")
            }
        }
    }

    // MARK: Alertmanager

    /// A free TCP port on 127.0.0.1 (bound, read, released).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                bind(fd, p, len) == 0 && getsockname(fd, p, &len) == 0
            }
        }
        guard bound else { throw DaemonError("cannot find a free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// A real Alertmanager on 127.0.0.1:`port`, its files under `directory`, routing to no
    /// receiver (the test reads its API).
    static func startAlertmanager(in directory: URL, port: Int) throws -> Process {
        let dir = directory.appendingPathComponent("alertmanager")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try "route:\n  receiver: none\nreceivers:\n  - name: none\n".write(to: dir.appendingPathComponent("am.yml"), atomically: true, encoding: .utf8)
        let m = Process()
        m.executableURL = URL(fileURLWithPath: alertmanager!)
        m.arguments = ["--config.file=\(dir.path)/am.yml", "--storage.path=\(dir.path)/data",
                       "--web.listen-address=127.0.0.1:\(port)", "--cluster.listen-address="]
        m.standardError = FileHandle(forWritingAtPath: "/dev/null")
        m.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try m.run()
        return m
    }

    /// Alertmanager's active alerts named `name`.
    static func activeAlerts(_ base: String, named name: String) -> [[String: Any]] {
        let (status, data) = httpGet(URL(string: base + "/api/v2/alerts")!)
        guard status == 200, let all = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else { return [] }
        return all.filter {
            ($0["labels"] as? [String: String])?["alertname"] == name && ($0["status"] as? [String: Any])?["state"] as? String == "active"
        }
    }

    /// A collapse reaches a real Alertmanager (started after it fired: the posts are
    /// retried) as an active alert with the daemon's labels, and leaves it when it resolves.
    @Test(.enabled(if: alertmanager != nil, "Alertmanager is not installed (Debian package prometheus-alertmanager; scripts/install-deps.sh installs it)"),
          .timeLimit(.minutes(3)))
    func aCollapseIsActiveInAlertmanagerAndResolvedAfterRecovery() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "health.interval_s=0.2", "--set", "health.min_firing_s=0", "--set", "health.resolve_after=1"])
        let port = try Self.freePort()
        let base = "http://127.0.0.1:\(port)"
        let forwarderLog = d.directory.appendingPathComponent("cfe-alertmanager.log").path
        _ = FileManager.default.createFile(atPath: forwarderLog, contents: nil)
        let forwarder = Process()
        forwarder.executableURL = WatchTests.cfe
        forwarder.arguments = ["alertmanager", "--url", base, d.output, "--instance", "test-daemon", "--resend-interval", "1",
                               "--timeout", "170"]
        forwarder.standardError = FileHandle(forWritingAtPath: forwarderLog)
        try forwarder.run()
        var manager: Process?
        defer {
            if forwarder.isRunning { forwarder.terminate(); forwarder.waitUntilExit() }
            if let m = manager, m.isRunning { m.terminate(); m.waitUntilExit() }
        }
        func forwarderSaid(_ text: String) -> Bool {
            ((try? String(contentsOfFile: forwarderLog, encoding: .utf8)) ?? "").contains(text)
        }

        // Constant scores: score_collapse (critical) fires while Alertmanager is not up yet.
        let push = try d.producer()
        for i in 0..<1200 { try push.send(strings: ["pred", predBody("c\(i)", ["a": 0.5, "b": 0.5])]) }
        var deadline = Date().addingTimeInterval(30)
        while Date() < deadline && !forwarderSaid("cannot post") { Thread.sleep(forTimeInterval: 0.1) }
        #expect(forwarderSaid("firing score_collapse [critical]"), "\((try? String(contentsOfFile: forwarderLog, encoding: .utf8)) ?? "")")
        #expect(forwarderSaid("cannot post"), "posted with no Alertmanager listening")

        manager = try Self.startAlertmanager(in: d.directory, port: port)

        deadline = Date().addingTimeInterval(60)
        var active: [[String: Any]] = []
        while Date() < deadline && active.isEmpty {
            Thread.sleep(forTimeInterval: 0.25)
            active = Self.activeAlerts(base, named: "score_collapse")
        }
        let alert = try #require(active.first, "score_collapse never became active in Alertmanager")
        let labels = try #require(alert["labels"] as? [String: String])
        #expect(labels["severity"] == "critical" && labels["instance"] == "test-daemon" && labels["service"] == "cfensembled")
        #expect(labels["classifier"] == nil)
        let annotations = try #require(alert["annotations"] as? [String: String])
        #expect(annotations["summary"]?.contains("standard deviation") == true, "\(annotations)")
        #expect(annotations["description"]?.contains("classifiers' inputs") == true)
        #expect(annotations["action"] == "fallback")
        #expect(forwarderSaid("Alertmanager reachable again"))

        // Re-posted while it fires: still active a few resend intervals later.
        Thread.sleep(forTimeInterval: 3)
        #expect(!Self.activeAlerts(base, named: "score_collapse").isEmpty)

        // Varied scores again: it resolves and leaves Alertmanager's active alerts.
        for i in 0..<1200 { try push.send(strings: ["pred", predBody("v\(i)", ["a": Double(i % 10) / 10, "b": Double(i % 7) / 7])]) }
        deadline = Date().addingTimeInterval(60)
        while Date() < deadline && !Self.activeAlerts(base, named: "score_collapse").isEmpty { Thread.sleep(forTimeInterval: 0.25) }
        #expect(Self.activeAlerts(base, named: "score_collapse").isEmpty, "still active after it resolved")
        #expect(forwarderSaid("resolved score_collapse"))
        #expect(try d.stop() == 0)
    }

    /// One classifier's outputs move (no label at all): classifier_drift names it, and
    /// the alert is active in a real Alertmanager with the classifier as a label.
    @Test(.enabled(if: alertmanager != nil, "Alertmanager is not installed (Debian package prometheus-alertmanager; scripts/install-deps.sh installs it)"),
          .timeLimit(.minutes(3)))
    func aDriftingClassifierIsNamedInAlertmanager() throws {
        let d = try DaemonProcess()
        try d.start(["--set", "monitoring.drift_window=200", "--set", "monitoring.drift_reference=400",
                     "--set", "monitoring.drift_check_every=50"])
        let port = try Self.freePort()
        let base = "http://127.0.0.1:\(port)"
        let manager = try Self.startAlertmanager(in: d.directory, port: port)
        let forwarder = Process()
        forwarder.executableURL = WatchTests.cfe
        forwarder.arguments = ["alertmanager", "--url", base, d.output, "--instance", "drift-daemon", "--resend-interval", "1",
                               "--timeout", "170"]
        forwarder.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try forwarder.run()
        defer {
            for p in [forwarder, manager] where p.isRunning { p.terminate(); p.waitUntilExit() }
        }
        var g = SeededRandom(seed: 11)
        func squash(_ z: Double) -> Double { 1 / (1 + exp(-z)) }
        let push = try d.producer()
        // 800 instances as usual, then classifier "nn" reports 1.5 higher in log-odds.
        for i in 0..<1200 {
            let shift = i < 800 ? 0 : 1.5
            try push.send(strings: ["pred", predBody("d\(i)", ["gbm": squash(-2 + g.normal()), "rf": squash(-2 + g.normal()),
                                                             "nn": squash(-2 + g.normal() + shift)])])
        }
        let deadline = Date().addingTimeInterval(90)
        var active: [[String: Any]] = []
        while Date() < deadline && active.isEmpty {
            Thread.sleep(forTimeInterval: 0.25)
            active = Self.activeAlerts(base, named: "classifier_drift")
        }
        #expect(active.count == 1, "\(active)")
        let labels = try #require(active.first?["labels"] as? [String: String], "classifier_drift never became active")
        #expect(labels["classifier"] == "nn" && labels["severity"] == "warning" && labels["instance"] == "drift-daemon")
        let annotations = try #require(active.first?["annotations"] as? [String: String])
        #expect(annotations["description"]?.contains("pin-reference") == true, "\(annotations)")
        let status = try d.controlRequest(["cmd": "status"])
        let drift = try #require(status["drift"] as? [String: Any])
        let nn = try #require((drift["classifiers"] as? [String: Any])?["nn"] as? [String: Any])
        #expect(try #require(nn["psi"] as? Double) > 0.25)
        // After a deliberate change the operator pins the new outputs as the reference.
        let (code, out) = try DaemonProcess.runToExit(["pin-reference", "--state-dir", d.stateDir], executable: WatchTests.cfe,
                                                      timeout: 60)
        #expect(code == 0 && out.contains("drift references pinned"), "\(out)")
        let after = try d.controlRequest(["cmd": "status"])
        let pinned = ((after["drift"] as? [String: Any])?["classifiers"] as? [String: Any])?["nn"]
        #expect((pinned as? [String: Any])?["psi"] == nil, "the new reference fills first: \(String(describing: pinned))")
        #expect(try d.stop() == 0)
    }

    // MARK: Grafana

    /// The dashboard is JSON Grafana can import, and every metric its queries name is one
    /// a running daemon exposes.
    @Test func dashboardQueriesOnlyMetricsTheDaemonExposes() throws {
        let data = try Data(contentsOf: Self.deploy.appendingPathComponent("grafana/cfensembled.json"))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(dashboard["title"] as? String == "cfensembled")
        #expect((dashboard["uid"] as? String)?.isEmpty == false)
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let ids = panels.compactMap { $0["id"] as? Int }
        #expect(ids.count == panels.count && Set(ids).count == ids.count, "every panel needs a unique id")
        var expressions: [String] = []
        for panel in panels {
            for target in panel["targets"] as? [[String: Any]] ?? [] {
                if let e = target["expr"] as? String { expressions.append(e) }
            }
        }
        #expect(expressions.count >= 15)
        let regex = try NSRegularExpression(pattern: "cfensembled_[a-z_]+")
        var names = Set<String>()
        for e in expressions {
            for m in regex.matches(in: e, range: NSRange(e.startIndex..., in: e)) { names.insert(String(e[Range(m.range, in: e)!])) }
        }
        for required in ["cfensembled_scores_published_total", "cfensembled_messages_rejected_total",
                         "cfensembled_scoring_duration_seconds_bucket", "cfensembled_pending_instances",
                         "cfensembled_labels_learnt_total", "cfensembled_labels_unmatched_total", "cfensembled_model_version",
                         "cfensembled_aggregator_weight", "cfensembled_class_count", "cfensembled_health_condition_firing",
                         "cfensembled_checkpoints_total"] {
            #expect(names.contains(required), "the dashboard does not show \(required)")
        }

        // A daemon that has scored, learnt, rejected and checkpointed exposes every series.
        let d = try DaemonProcess()
        try d.start(["--set", "learning.batch_size=10", "--set", "health.interval_s=0.2"])
        let url = try #require(d.metricsURL, "no metrics URL in the log")
        let push = try d.producer()
        for i in 0..<30 { try push.send(strings: ["pred", predBody("m\(i)", ["xgb": Double(i % 10) / 10, "rf": 0.5])]) }
        for i in 0..<20 { try push.send(strings: ["label", #"{"id":"m\#(i)","label":\#(i % 2)}"#]) }
        try push.send(strings: ["pred", #"{"id":"bad","preds":{"xgb":7}}"#])
        try d.waitForStatus("labelled", atLeast: 20)
        _ = try d.controlRequest(["cmd": "checkpoint"])
        Thread.sleep(forTimeInterval: 0.5)
        let (status, body) = httpGet(url)
        #expect(status == 200)
        let exposed = Set(String(decoding: body, as: UTF8.self).split(separator: "\n").compactMap { line -> String? in
            guard !line.hasPrefix("#") else { return nil }
            return line.split(whereSeparator: { $0 == "{" || $0 == " " }).first.map(String.init)
        })
        for name in names.sorted() {
            #expect(exposed.contains(name), "the dashboard queries \(name), which the daemon does not expose")
        }
        #expect(try d.stop() == 0)
    }
}
