import Foundation
import Wire

/// What `cfe watch` knows: the latest health snapshot and the recent alert events.
struct WatchState {
    var health: HealthBody?
    var alerts: [AlertBody] = []
    var messages = 0

    mutating func apply(health body: HealthBody) {
        messages += 1
        health = body
    }

    mutating func apply(alert body: AlertBody) {
        messages += 1
        alerts.append(body)
        if alerts.count > 10 { alerts.removeFirst(alerts.count - 10) }
    }

    /// A readable snapshot: status, counters, quality, weights as bars, recent alerts.
    /// `color` adds ANSI colours (terminals only).
    func render(color: Bool, width: Int = 80, recentAlerts: Bool = true, now: Double = Date().timeIntervalSince1970) -> String {
        func paint(_ s: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
        func num(_ v: Double?) -> String {
            guard let v else { return "-" }
            return v == v.rounded() && abs(v) < 1e15 ? "\(Int64(v))" : String(format: "%.4f", v)
        }
        var lines: [String] = []
        guard let h = health else {
            lines.append("cfensembled  status: unknown (no health message yet)")
            return lines.joined(separator: "\n") + "\n" + alertLines(paint).joined(separator: "\n") + "\n"
        }
        let statusText = switch h.status {
        case "healthy": paint(h.status, "32")
        case "warning": paint(h.status, "33")
        case "critical": paint(h.status, "1;31")
        default: h.status
        }
        lines.append("cfensembled  status: \(statusText)  model_version: \(h.model_version)"
                     + (h.fallback_active ? "  " + paint("FALLBACK SCORES", "1;31") : ""))
        lines.append("scored \(h.scored)  labelled \(h.labelled)  pending \(h.pending)  "
                     + "unmatched \(h.unmatched_labels)  rejected \(h.rejected)")
        lines.append("PR-AUC \(num(h.pr_auc)) (simple average \(num(h.baseline_pr_auc)), window \(h.quality_window))")
        if let c = h.calibration {
            let rate = c.positive_rate.map { String(format: "%.4g", $0) } ?? "-"
            lines.append("probability: " + (c.fitted ? "calibrated" : "simple average (not enough labels of each class yet)")
                         + "  positive rate \(rate)  ECE \(num(c.ece)) (map now \(num(c.ece_now)), noise \(num(c.ece_noise)))"
                         + "  Brier \(num(c.brier))")
        }
        for p in h.operating_points ?? [] {
            lines.append("top \(String(format: "%g", p.alert_rate * 100))%: score >= \(num(p.threshold))  "
                         + "precision \(num(p.precision))  recall \(num(p.recall))")
        }
        if let t = h.precision_target {
            let share = t.alert_rate.map { String(format: "%.3g%%", $0 * 100) } ?? "-"
            lines.append("precision \(String(format: "%g", t.precision_target)): score >= \(num(t.threshold))  "
                         + "recall \(num(t.recall))  flags \(share) of traffic")
        }
        if let d = h.drift { lines += driftLines(d, paint, num) }
        if let e = h.estimate {
            let points = e.operating_points.map { "top \(String(format: "%g", $0.alert_rate * 100))% precision \(num($0.precision)) recall \(num($0.recall))" }
            lines.append("expected without labels (last \(e.window)): PR-AUC \(num(e.pr_auc)) (before \(num(e.pr_auc_before)), "
                         + "on the labelled window \(num(e.labelled_pr_auc)) vs realised \(num(h.pr_auc)))"
                         + (points.isEmpty ? "" : "  " + points.joined(separator: "  ")))
        }
        if !h.weights.isEmpty {
            // A poisoned model's NaN or infinite weights are listed without a bar.
            let scale = max(h.weights.values.filter(\.isFinite).map(abs).max() ?? 1, 1e-9)
            let nameWidth = min(24, h.weights.keys.map(\.count).max() ?? 4)
            let barWidth = max(10, width - nameWidth - 20)
            lines.append("weights (bias \(num(h.bias))):")
            for (name, w) in h.weights.sorted(by: { $0.key < $1.key }) {
                let n = w.isFinite ? Int(min(abs(w) / scale, 1) * Double(barWidth)) : 0
                let bar = String(repeating: w >= 0 ? "#" : "-", count: n)
                let label = name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                lines.append("  \(label) \(String(format: "%9.4f", w)) " + (w >= 0 ? paint(bar, "36") : paint(bar, "31")))
            }
        }
        lines += firingLines(h, paint, now: now)
        if recentAlerts { lines += alertLines(paint) }
        return lines.joined(separator: "\n") + "\n"
    }

    /// What fires now, from the health body (with since when and why, where the daemon
    /// says; earlier daemons send the names only).
    private func firingLines(_ h: HealthBody, _ paint: (String, String) -> String, now: Double) -> [String] {
        if let firing = h.firing {
            var lines = ["firing:" + (firing.isEmpty ? " none" : "")]
            for f in firing {
                let who = f.classifier.map { " (\($0))" } ?? ""
                let text = "  \(f.alert)\(who) [\(f.severity)] for \(Self.duration(max(0, now - f.since))): \(f.reason)"
                lines.append(paint(text, f.severity == "critical" ? "31" : "33"))
            }
            return lines
        }
        return ["firing: " + (h.alerts_firing.isEmpty ? "none" : h.alerts_firing.joined(separator: ", "))]
    }

    /// The label-free drift statistics: the score's and the predicted positive rate on
    /// one line, each classifier's PSI on the next (above its bound in colour; a reference
    /// still filling as n/size).
    private func driftLines(_ d: DriftBody, _ paint: (String, String) -> String, _ num: (Double?) -> String) -> [String] {
        func rate(_ v: Double?) -> String { v.map { String(format: "%.4g", $0) } ?? "-" }
        func stream(_ s: DriftBody.Stream) -> String {
            guard let psi = s.psi else { return "filling \(s.reference)" }
            let text = num(psi)
            return psi > (s.bound ?? .infinity) ? paint(text + "!", "33") : text
        }
        var lines = ["drift: score PSI " + (d.score.map(stream) ?? "-") + "  predicted positive rate \(rate(d.predicted_positive_rate))"
                     + " (before \(rate(d.reference_positive_rate)), labelled \(rate(d.labelled_positive_rate)))"]
        if !d.classifiers.isEmpty {
            lines.append("  classifier PSI: " + d.classifiers.sorted { $0.key < $1.key }.map { "\($0.key) \(stream($0.value))" }
                .joined(separator: "  "))
        }
        return lines
    }

    /// 42 s, 3 min 5 s, 2 h 10 min, 3 d 4 h.
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds)
        if s < 60 { return "\(s) s" }
        if s < 3600 { return "\(s / 60) min \(s % 60) s" }
        if s < 86400 { return "\(s / 3600) h \(s % 3600 / 60) min" }
        return "\(s / 86400) d \(s % 86400 / 3600) h"
    }

    private func alertLines(_ paint: (String, String) -> String) -> [String] {
        var lines = ["recent alerts:" + (alerts.isEmpty ? " none" : "")]
        for a in alerts.reversed() {
            let who = a.classifier.map { " (\($0))" } ?? ""
            let text = "  \(a.state.uppercased()) \(a.alert)\(who) [\(a.severity)] v\(a.model_version): \(a.reason)"
            lines.append(a.state == "resolved" ? paint(text, "32") : a.severity == "critical" ? paint(text, "31") : paint(text, "33"))
        }
        return lines
    }
}
