import Foundation
import Online
import Testing
import Transport

/// Learning quality as a property of the real daemon: a seeded 10%-positive stream with
/// delayed labels, scored prequentially over ZeroMQ with the shipped defaults.
@Suite(.serialized) struct QualityTests {
    /// Ten correlated classifiers of mixed skill (seeded; independent of the benchmark code).
    private struct Stream {
        var state: UInt64
        var rate = 0.1
        mutating func uniform() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
        mutating func normal() -> Double {
            (-2 * log(max(uniform(), 1e-300))).squareRoot() * cos(2 * .pi * uniform())
        }
        mutating func next() -> (label: Int, preds: [String: Double]) {
            let label = uniform() < rate ? 1 : 0
            let shared = normal()
            var preds: [String: Double] = [:]
            for u in 0..<10 {
                let skill = 0.3 + 0.2 * Double(u)
                let logit = (label == 1 ? skill : -skill) + 0.8 * shared + 0.8 * normal() - 1
                preds["m\(u)"] = 1 / (1 + exp(-logit))
            }
            return (label, preds)
        }
    }

    @Test func tenPercentStreamKeepsWeightsHealthyAndBeatsTheAverage() throws {
        let d = try DaemonProcess()
        try d.start()
        let sub = try d.subscriber(["score"])
        let push = try d.producer()
        try d.waitForSubscription(sub, via: push)
        var stream = Stream(state: 2024)
        let n = 6000, delay = 200
        var labels: [Int] = [], averages: [Double] = [], scores = [Double](repeating: .nan, count: n)
        for t in 0..<n {
            if t >= delay { try push.send(strings: ["label", #"{"id":"q\#(t - delay)","label":\#(labels[t - delay])}"#]) }
            let item = stream.next()
            labels.append(item.label)
            averages.append(item.preds.values.reduce(0, +) / 10)
            try push.send(strings: ["pred", predBody("q\(t)", item.preds)])
            if t % 500 == 499 || t == n - 1 {
                // Lockstep: every score of this chunk before the next labels are sent.
                let chunk = t % 500 + 1
                let got = try DaemonProcess.collect(sub, timeout: 20) { out in
                    out.filter { ($0.1["id"] as? String)?.hasPrefix("q") == true }.count >= chunk
                }
                for (_, body) in got {
                    if let id = body["id"] as? String, id.hasPrefix("q"), let s = body["score"] as? Double { scores[Int(id.dropFirst())!] = s }
                }
            }
        }
        #expect(!scores.contains { $0.isNaN }, "some preds got no score")
        let y = labels.map { Int8($0) }
        let daemonAP = try #require(RollingQuality.averagePrecision(scores, y))
        let averageAP = try #require(RollingQuality.averagePrecision(averages, y))
        #expect(daemonAP >= averageAP, "daemon PR-AUC \(daemonAP) below the simple average's \(averageAP)")
        let status = try d.status()
        let weights = try #require(status["weights"] as? [String: Double])
        #expect((status["model_version"] as? Int ?? 0) > 10)
        #expect(weights.values.reduce(0, +) > 4, "weight sum fell below its start: \(weights)")
        #expect(weights.values.filter { $0 > 0 }.count > 5, "most weights should stay positive: \(weights)")
        #expect(try d.stop() == 0)
    }

    /// No false alarms: healthy streams at 50%, 10% and 1% positives, labels delayed,
    /// raise no critical alert and no fallback score through the real daemon.
    @Test(arguments: [0.5, 0.1, 0.01])
    func healthyStreamsRaiseNoCriticalAlert(rate: Double) throws {
        let d = try DaemonProcess()
        try d.start(["--set", "health.interval_s=0.2"])
        let sub = try d.subscriber(["alert", "score"])
        let push = try d.producer()
        try d.waitForSubscription(sub, via: push)
        var stream = Stream(state: 77, rate: rate)
        var labels: [Int] = []
        var seen: [(String, [String: Any])] = []
        for t in 0..<8000 {
            if t >= 300 { try push.send(strings: ["label", #"{"id":"f\#(t - 300)","label":\#(labels[t - 300])}"#]) }
            let item = stream.next()
            labels.append(item.label)
            try push.send(strings: ["pred", predBody("f\(t)", item.preds)])
            if t % 1000 == 999 {
                let chunk = t
                seen += try DaemonProcess.collect(sub, timeout: 20) { out in out.contains { $0.1["id"] as? String == "f\(chunk)" } }
            }
        }
        let critical = seen.filter { $0.0 == "alert" && $0.1["severity"] as? String == "critical" }
        #expect(critical.isEmpty, "\(critical.map(\.1))")
        #expect(!seen.contains { $0.0 == "score" && $0.1["fallback"] as? Bool == true })
        #expect(try d.status()["status"] as? String != "critical")
        #expect(try d.stop() == 0)
    }
}
