import Foundation
import Online
import Wire

/// The state machine behind `cfe alertmanager`: which of a daemon's conditions fire,
/// and what must be posted to Alertmanager when. No I/O and no clock of its own: the
/// caller feeds it the daemon's `alert` and `health` messages with the time, posts what
/// `due` returns and reports the outcome.
///
/// - a `firing` alert is posted at once and re-posted every `resendInterval` with an
///   `endsAt` four intervals ahead, so that Alertmanager keeps it active while the
///   daemon says it fires, and resolves it by itself if this process dies;
/// - a `resolved` alert is posted with `endsAt` set to the time it resolved;
/// - every `health` message lists the conditions firing: one this process never heard
///   fire (it started late, or a message was lost) is added, one it thinks firing that
///   the daemon no longer lists is resolved;
/// - when a post fails, the latest state of each alert waits and is retried after a
///   back-off that doubles from 1 s up to `maxBackoff`;
/// - with a `holdDown`, a condition is posted only once it has fired that long (as a
///   Prometheus rule's `for:`): one that resolves sooner is never posted.
///
/// `alert` and `health` return a line for each change that is not the daemon's own
/// alert event (reconciled from health, held down), for the log.
struct AlertForwarder {
    struct Key: Hashable, Comparable {
        var condition: String
        var classifier: String?
        static func < (a: Key, b: Key) -> Bool { (a.condition, a.classifier ?? "") < (b.condition, b.classifier ?? "") }
    }

    /// One alert as Alertmanager's `POST /api/v2/alerts` takes it.
    struct Postable: Equatable, Encodable {
        var labels: [String: String]
        var annotations: [String: String]
        var startsAt: String
        var endsAt: String
    }

    private struct Firing {
        var labels: [String: String]
        var annotations: [String: String]
        var startsAt: Double
        /// Posted (its hold-down is over).
        var announced = false
    }

    let instance: String
    let resendInterval: Double
    let maxBackoff: Double
    let holdDown: Double
    private var firing: [Key: Firing] = [:]
    /// The latest state of each alert not yet delivered.
    private var outbox: [Key: Postable] = [:]
    private var nextResend = 0.0
    private var retryAt = 0.0
    private var backoff = 1.0
    private(set) var failuresInARow = 0
    /// Malformed health entries already logged (each once).
    private var malformedSeen = Set<String>()

    init(instance: String, resendInterval: Double = 60, maxBackoff: Double = 60, holdDown: Double = 0) {
        self.instance = instance
        self.resendInterval = resendInterval
        self.maxBackoff = maxBackoff
        self.holdDown = holdDown
    }

    private func name(_ key: Key) -> String { key.condition + (key.classifier.map { " (\($0))" } ?? "") }

    /// The conditions firing as this forwarder knows them.
    var active: [Key] { firing.keys.sorted() }
    var waiting: Int { outbox.count }

    @discardableResult
    mutating func alert(_ a: AlertBody, now: Double) -> [String] {
        let key = Key(condition: a.alert, classifier: a.classifier)
        if a.state == "firing" {
            var annotations = ["summary": a.reason, "description": AlertAdvice.description(for: a.alert),
                               "model_version": "\(a.model_version)", "action": a.action]
            if a.action == "fallback" { annotations["fallback"] = "fallback scores are published while this fires" }
            var f = Firing(labels: labels(condition: a.alert, severity: a.severity, classifier: a.classifier),
                           annotations: annotations, startsAt: firing[key]?.startsAt ?? a.ts)
            f.announced = firing[key]?.announced ?? false
            firing[key] = f
            announceIfDue(key, now: now)
        } else if a.state == "resolved" {
            let f = firing.removeValue(forKey: key)
                ?? Firing(labels: labels(condition: a.alert, severity: a.severity, classifier: a.classifier),
                          annotations: ["summary": a.reason, "description": AlertAdvice.description(for: a.alert)], startsAt: a.ts,
                          announced: true)
            guard f.announced else {
                outbox[key] = nil
                return ["\(name(key)) resolved within the \(Int(holdDown)) s hold-down: not posted"]
            }
            var resolved = f
            resolved.annotations["summary"] = a.reason
            outbox[key] = postable(resolved, endsAt: max(a.ts, f.startsAt))
        }
        return []
    }

    /// Queues a firing condition's first post once its hold-down is over.
    private mutating func announceIfDue(_ key: Key, now: Double) {
        guard var f = firing[key] else { return }
        if f.announced || now - f.startsAt >= holdDown {
            f.announced = true
            firing[key] = f
            outbox[key] = postable(f, endsAt: now + 4 * resendInterval)
        }
    }

    @discardableResult
    mutating func health(_ h: HealthBody, now: Double) -> [String] {
        var lines: [String] = []
        var listed = Set<Key>()
        // Daemons that send `firing` say since when and why; earlier ones only the names.
        let details = Dictionary((h.firing ?? []).map { (Key(condition: $0.alert, classifier: $0.classifier), $0) },
                                 uniquingKeysWith: { a, _ in a })
        for entry in h.alerts_firing {
            // A malformed entry (empty, or naming no condition) is skipped, never trusted.
            let parts = entry.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard let condition = parts.first, !condition.isEmpty, parts.count == 1 || !parts[1].isEmpty else {
                if malformedSeen.insert(entry).inserted && malformedSeen.count <= 100 {
                    lines.append("ignored a malformed alerts_firing entry \"\(entry.prefix(80))\" in a health message")
                }
                continue
            }
            let key = Key(condition: condition, classifier: parts.count > 1 ? parts[1] : nil)
            listed.insert(key)
            guard firing[key] == nil else { continue }
            let severity = HealthAlert.Name(rawValue: key.condition)?.severity ?? "warning"
            let detail = details[key]
            // As the alert event would say: a critical condition with fallback scores published.
            let action = severity == "critical" && h.fallback_active ? "fallback" : "none"
            var annotations = ["summary": detail?.reason ?? "\(entry) is firing (reported by the daemon's health message)",
                               "description": AlertAdvice.description(for: key.condition),
                               "model_version": "\(h.model_version)", "action": action]
            if action == "fallback" { annotations["fallback"] = "fallback scores are published while this fires" }
            let f = Firing(labels: labels(condition: key.condition, severity: severity, classifier: key.classifier),
                           annotations: annotations, startsAt: detail?.since ?? h.ts)
            firing[key] = f
            announceIfDue(key, now: now)
            lines.append("firing \(name(key)) [\(severity)] (from the daemon's health message: its alert event was missed)")
        }
        for (key, f) in firing where !listed.contains(key) {
            firing[key] = nil
            guard f.announced else {
                outbox[key] = nil
                lines.append("\(name(key)) no longer fires (health message) within the \(Int(holdDown)) s hold-down: not posted")
                continue
            }
            var resolved = f
            resolved.annotations["summary"] = "\(key.condition) no longer fires (reported by the daemon's health message)"
            outbox[key] = postable(resolved, endsAt: max(h.ts, f.startsAt))
            lines.append("resolved \(name(key)) (from the daemon's health message: its alert event was missed)")
        }
        return lines
    }

    /// What to post now (nil: nothing), including the periodic re-post of what fires.
    mutating func due(now: Double) -> [Postable]? {
        for key in firing.keys where firing[key]?.announced == false { announceIfDue(key, now: now) }
        if now >= nextResend {
            for (key, f) in firing where f.announced { outbox[key] = postable(f, endsAt: now + 4 * resendInterval) }
            nextResend = now + resendInterval
        }
        guard !outbox.isEmpty, now >= retryAt else { return nil }
        return outbox.keys.sorted().map { outbox[$0]! }
    }

    /// The alerts `due` returned reached Alertmanager.
    mutating func delivered() {
        outbox.removeAll()
        backoff = 1
        failuresInARow = 0
        retryAt = 0
    }

    /// The post failed: keep everything and try again after the back-off.
    mutating func failed(now: Double) {
        failuresInARow += 1
        retryAt = now + backoff
        backoff = min(backoff * 2, maxBackoff)
    }

    private func labels(condition: String, severity: String, classifier: String?) -> [String: String] {
        var l = ["alertname": condition, "severity": severity, "instance": instance, "service": "cfensembled"]
        if let classifier { l["classifier"] = classifier }
        return l
    }

    private func postable(_ f: Firing, endsAt: Double) -> Postable {
        Postable(labels: f.labels, annotations: f.annotations, startsAt: Self.rfc3339(f.startsAt), endsAt: Self.rfc3339(endsAt))
    }

    static func rfc3339(_ t: Double) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date(timeIntervalSince1970: t))
    }
}
