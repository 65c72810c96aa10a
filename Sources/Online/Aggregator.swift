#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The logistic aggregator score = sigmoid(w . rhat + b), learnt by class-weighted
/// (optionally focal) cross-entropy gradient steps.
public struct Aggregator: Sendable, Equatable, Codable {
    public internal(set) var w: [Double] = []
    public internal(set) var b = 0.0
    var optimizer: Optimizer

    public init(stepRule: StepRule) { optimizer = Optimizer(rule: stepRule) }

    /// Adds a classifier. Before any learning every weight is 1/m (the simple average's
    /// ranking); afterwards a newcomer starts at the mean of the learnt weights.
    mutating func append(learnt: Bool) {
        if learnt && !w.isEmpty {
            w.append(w.reduce(0, +) / Double(w.count))
        } else {
            w.append(0)
            for i in w.indices { w[i] = 1 / Double(w.count) }
        }
        optimizer.resize(w.count + 1)
    }

    @inline(__always)
    public func logit(_ rhat: UnsafePointer<Double>) -> Double {
        var z = b
        w.withUnsafeBufferPointer { wb in for u in 0..<wb.count { z += wb[u] * rhat[u] } }
        return z
    }

    @inline(__always)
    public static func sigmoid(_ z: Double) -> Double {
        z >= 0 ? 1 / (1 + exp(-z)) : { let e = exp(z); return e / (1 + e) }()
    }

    /// d loss / d z of the focal loss FL = -(1 - p_t)^gamma log p_t at logit z for label y
    /// (gamma 0: plain cross-entropy, p - y). The exact derivative, not the batch
    /// reference's fixed-weight approximation.
    @inline(__always)
    public static func lossGradient(z: Double, label: Int8, gamma: Double) -> Double {
        let p = sigmoid(z)
        if gamma == 0 { return p - Double(label) }
        let pt = label == 1 ? p : 1 - p
        let q = 1 - pt
        let sign = label == 1 ? 1.0 : -1.0
        let logPt = pt > 0 ? log(pt) : -745.0
        return sign * (gamma * pow(q, gamma) * pt * logPt - pow(q, gamma + 1))
    }

    /// The focal (gamma 0: cross-entropy) loss at logit z for label y.
    public static func loss(z: Double, label: Int8, gamma: Double) -> Double {
        // log p_t computed stably from the logit.
        let s = label == 1 ? z : -z
        let logPt = s >= 0 ? -log1p(exp(-s)) : s - log1p(exp(s))
        let pt = exp(logPt)
        return -pow(1 - pt, gamma) * logPt
    }

    /// Gradient of the weighted mean loss sum_i omega_i FL_i / sum_i omega_i (+ l2/2 |w|^2)
    /// over n rows of `rhat` (row-major n x m), written into `grad` (m weights, then b).
    public func gradient(rhat: [Double], labels: [Int8], omega: [Double], gamma: Double, l2: Double,
                         into grad: inout [Double]) {
        let m = w.count
        for i in grad.indices { grad[i] = 0 }
        var total = 0.0
        rhat.withUnsafeBufferPointer { rb in
            for i in labels.indices {
                let row = rb.baseAddress! + i * m
                let gz = omega[i] * Aggregator.lossGradient(z: logit(row), label: labels[i], gamma: gamma)
                for u in 0..<m { grad[u] += gz * row[u] }
                grad[m] += gz
                total += omega[i]
            }
        }
        if total > 0 { for i in grad.indices { grad[i] /= total } }
        for u in 0..<m { grad[u] += l2 * w[u] }
    }

    /// The weighted mean loss that `gradient` differentiates.
    public func objective(rhat: [Double], labels: [Int8], omega: [Double], gamma: Double, l2: Double) -> Double {
        let m = w.count
        var sum = 0.0, total = 0.0
        rhat.withUnsafeBufferPointer { rb in
            for i in labels.indices {
                sum += omega[i] * Aggregator.loss(z: logit(rb.baseAddress! + i * m), label: labels[i], gamma: gamma)
                total += omega[i]
            }
        }
        var reg = 0.0
        for v in w { reg += v * v }
        return (total > 0 ? sum / total : 0) + 0.5 * l2 * reg
    }

    /// Applies one step of the configured rule along `grad`.
    mutating func step(_ grad: [Double], learningRate: Double) {
        optimizer.step(params: &w, bias: &b, grad: grad, learningRate: learningRate)
    }

    /// For tests and research: sets the parameters directly.
    public mutating func set(weights: [Double], bias: Double) {
        precondition(weights.count == w.count)
        w = weights
        b = bias
    }
}
