import ArgumentParser
import Foundation
import Wire

/// `cfe alertmanager --url URL [ENDPOINT]`: forwards a daemon's health conditions to
/// Alertmanager (see `AlertForwarder` for what is posted when).
struct AlertmanagerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alertmanager",
        abstract: "Forward a daemon's alerts to Alertmanager (POST /api/v2/alerts).",
        discussion: """
        Subscribes to the alert and health topics of the daemon's output socket and posts every change \
        to Alertmanager: labels alertname (the condition), severity, instance, service=cfensembled and \
        classifier where set; annotations summary (the daemon's reason), description (what to do), \
        model_version; startsAt; endsAt when it resolves. Firing alerts are re-posted every \
        --resend-interval seconds. When Alertmanager is down the latest state of each alert is kept and \
        retried with a back-off (1 s doubling to 60 s); the daemon never waits for this process. \
        --hold-down S posts a condition only once it has fired for S seconds (as a Prometheus rule's \
        'for:'), so that this path and Prometheus's page on the same conditions.
        """
    )

    @Option(help: "Alertmanager's base URL, e.g. http://127.0.0.1:9093.")
    var url: String

    @OptionGroup var curve: CurveOptions

    @Argument(help: "The daemon's output endpoint, e.g. tcp://127.0.0.1:5556 (connects; '>' optional).")
    var endpoint: String = "tcp://127.0.0.1:5556"

    @Option(help: "The instance label (default: this host's name and the endpoint).")
    var instance: String?

    @Option(name: .customLong("resend-interval"), help: "Seconds between re-posts of firing alerts.")
    var resendInterval: Double = 60

    @Option(name: .customLong("hold-down"), help: "Post a condition only once it has fired this many seconds (0: at once).")
    var holdDown: Double = 0

    @Option(help: "Exit after this many seconds (0: run until interrupted).")
    var timeout: Double = 0

    func validate() throws {
        guard resendInterval > 0 else { throw ValidationError("--resend-interval must be > 0") }
        guard holdDown >= 0 else { throw ValidationError("--hold-down must be >= 0") }
    }

    func run() throws {
        let client = try AlertmanagerClient(base: url)
        let subscription = try OutputSubscription(endpoint, topics: ["alert", "health"], curve: curve)
        var forwarder = AlertForwarder(instance: instance ?? "\(ProcessInfo.processInfo.hostName) \(subscription.endpoint.address)",
                                       resendInterval: resendInterval, holdDown: holdDown)
        log("forwarding alerts from \(subscription.endpoint.address) to \(client.endpoint.absoluteString)")
        try subscription.poll(timeout: timeout) { frames in
            let now = Date().timeIntervalSince1970
            if let frames, frames.count == 2 {
                let topic = String(decoding: frames[0], as: UTF8.self)
                if topic == "alert", let body = try? WireJSON.decode(AlertBody.self, from: frames[1]) {
                    log("\(body.state) \(body.alert)\(body.classifier.map { " (\($0))" } ?? "") [\(body.severity)]: \(body.reason)")
                    for line in forwarder.alert(body, now: now) { log(line) }
                } else if topic == "health", let body = try? WireJSON.decode(HealthBody.self, from: frames[1]) {
                    for line in forwarder.health(body, now: now) { log(line) }
                }
            }
            guard let batch = forwarder.due(now: now) else { return }
            do {
                try client.post(batch)
                if forwarder.failuresInARow > 0 { log("Alertmanager reachable again: posted \(batch.count) alert(s)") }
                forwarder.delivered()
            } catch {
                forwarder.failed(now: now)
                // The first failures in full, then one line per 100.
                if forwarder.failuresInARow <= 3 || forwarder.failuresInARow % 100 == 0 {
                    log("cannot post \(batch.count) alert(s), retrying with back-off: \(error)")
                }
            }
        }
    }

    private func log(_ line: String) {
        FileHandle.standardError.write(Data("cfe alertmanager: \(line)\n".utf8))
    }
}
