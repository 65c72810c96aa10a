import Foundation

/// What `cfe watch` knows: the latest health snapshot and the recent alert events.
struct WatchState {
    var health: [String: Any] = [:]
    var alerts: [[String: Any]] = []
    var messages = 0

    mutating func apply(topic: String, body: [String: Any]) {
        messages += 1
        switch topic {
        case "health": health = body
        case "alert":
            alerts.append(body)
            if alerts.count > 10 { alerts.removeFirst(alerts.count - 10) }
        default: break
        }
    }

    /// A readable snapshot: status, counters, quality, weights as bars, recent alerts.
    /// `color` adds ANSI colours (terminals only).
    func render(color: Bool, width: Int = 80) -> String {
        func paint(_ s: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
        func num(_ key: String) -> String {
            guard let v = health[key] else { return "-" }
            if let d = v as? Double, d != d.rounded() { return String(format: "%.4f", d) }
            return "\(v)"
        }
        var lines: [String] = []
        let status = health["status"] as? String ?? "unknown"
        let statusText = switch status {
        case "healthy": paint(status, "32")
        case "warning": paint(status, "33")
        case "critical": paint(status, "1;31")
        default: status
        }
        lines.append("cfensembled  status: \(statusText)  model_version: \(num("model_version"))"
                     + ((health["fallback_active"] as? Bool) == true ? "  " + paint("FALLBACK SCORES", "1;31") : ""))
        lines.append("scored \(num("scored"))  labelled \(num("labelled"))  pending \(num("pending"))  "
                     + "unmatched \(num("unmatched_labels"))  rejected \(num("rejected"))")
        lines.append("PR-AUC \(num("pr_auc")) (simple average \(num("baseline_pr_auc")), window \(num("quality_window")))")
        if let weights = health["weights"] as? [String: Any] {
            let values = weights.compactMapValues { ($0 as? NSNumber)?.doubleValue }
            let scale = max(values.values.map(abs).max() ?? 1, 1e-9)
            let nameWidth = min(24, values.keys.map(\.count).max() ?? 4)
            let barWidth = max(10, width - nameWidth - 20)
            lines.append("weights (bias \(num("bias"))):")
            for (name, w) in values.sorted(by: { $0.key < $1.key }) {
                let n = Int((abs(w) / scale * Double(barWidth)).rounded())
                let bar = String(repeating: w >= 0 ? "#" : "-", count: n)
                let label = name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                lines.append("  \(label) \(String(format: "%9.4f", w)) " + (w >= 0 ? paint(bar, "36") : paint(bar, "31")))
            }
        }
        lines.append("recent alerts:" + (alerts.isEmpty ? " none" : ""))
        for a in alerts.reversed() {
            let state = a["state"] as? String ?? "?"
            let severity = a["severity"] as? String ?? "?"
            let text = "  \(state.uppercased()) \(a["alert"] as? String ?? "?") [\(severity)] v\(a["model_version"] ?? "?"): \(a["reason"] as? String ?? "")"
            lines.append(state == "resolved" ? paint(text, "32") : severity == "critical" ? paint(text, "31") : paint(text, "33"))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
