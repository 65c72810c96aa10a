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

    /// Adds a classifier. Before any learning every weight is scale/m and b = -scale/2
    /// (the simple average's ranking); afterwards a newcomer starts at the mean weight.
    mutating func append(learnt: Bool, scale: Double) {
        if learnt && !w.isEmpty {
            w.append(w.reduce(0, +) / Double(w.count))
        } else {
            w.append(0)
            for i in w.indices { w[i] = scale / Double(w.count) }
            b = -scale / 2
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
        if gamma == 0 { return -logPt }
        let pt = exp(logPt)
        return -pow(1 - pt, gamma) * logPt
    }

    /// The penalty term's target for w: `.zero` is plain L2; `.equal` pulls the weights
    /// toward their own mean (equal weights rank like the simple average, at any scale).
    public enum Prior: Sendable { case zero, equal }

    /// Gradient of the weighted mean loss sum_i omega_i FL_i / sum_i omega_i
    /// + l2/2 |w - target|^2 over n rows of `rhat` (row-major n x m), written into `grad`
    /// (m weights, then b). With `.equal`, target = mean(w) 1, whose gradient is w - mean(w).
    public func gradient(rhat: [Double], labels: [Int8], omega: [Double], gamma: Double, l2: Double,
                         prior: Prior = .zero, into grad: inout [Double]) {
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
        let target = prior == .equal && m > 0 ? w.reduce(0, +) / Double(m) : 0
        for u in 0..<m { grad[u] += l2 * (w[u] - target) }
    }

    /// The weighted mean loss that `gradient` differentiates.
    public func objective(rhat: [Double], labels: [Int8], omega: [Double], gamma: Double, l2: Double,
                          prior: Prior = .zero) -> Double {
        let m = w.count
        var sum = 0.0, total = 0.0
        rhat.withUnsafeBufferPointer { rb in
            for i in labels.indices {
                sum += omega[i] * Aggregator.loss(z: logit(rb.baseAddress! + i * m), label: labels[i], gamma: gamma)
                total += omega[i]
            }
        }
        var reg = 0.0
        let target = prior == .equal && !w.isEmpty ? w.reduce(0, +) / Double(w.count) : 0
        for v in w { reg += (v - target) * (v - target) }
        return (total > 0 ? sum / total : 0) + 0.5 * l2 * reg
    }

    /// Minimises the weighted cross-entropy (gamma 0) plus the prior by damped Newton
    /// (IRLS with a backtracking line search), at most `iterations` steps. Returns the
    /// number of steps taken.
    @discardableResult
    mutating func newtonSolve(rhat: [Double], labels: [Int8], omega: [Double], l2: Double, prior: Prior,
                              iterations: Int) -> Int {
        let m = w.count, k = m + 1
        var grad = [Double](repeating: 0, count: k)
        var h = [Double](repeating: 0, count: k * k)
        var row = [Double](repeating: 1, count: k)
        let total = omega.reduce(0, +)
        guard total > 0 else { return 0 }
        var current = objective(rhat: rhat, labels: labels, omega: omega, gamma: 0, l2: l2, prior: prior)
        for iteration in 0..<iterations {
            gradient(rhat: rhat, labels: labels, omega: omega, gamma: 0, l2: l2, prior: prior, into: &grad)
            for i in h.indices { h[i] = 0 }
            rhat.withUnsafeBufferPointer { rb in
                for i in labels.indices {
                    let x = rb.baseAddress! + i * m
                    for u in 0..<m { row[u] = x[u] }
                    row[m] = 1
                    let p = Aggregator.sigmoid(logit(x))
                    let c = omega[i] * p * (1 - p) / total
                    for a in 0..<k {
                        let ca = c * row[a]
                        for b2 in a..<k { h[a * k + b2] += ca * row[b2] }
                    }
                }
            }
            for a in 0..<k { for b2 in 0..<a { h[a * k + b2] = h[b2 * k + a] } }
            // The prior's curvature: l2 I (zero prior) or l2 (I - 11^T/m) (equal prior), on w only.
            for a in 0..<m {
                h[a * k + a] += l2
                if prior == .equal { for b2 in 0..<m { h[a * k + b2] -= l2 / Double(m) } }
            }
            for a in 0..<k { h[a * k + a] += 1e-9 }
            var step = grad
            let ok = h.withUnsafeMutableBufferPointer { hb in
                step.withUnsafeMutableBufferPointer { Cholesky.solve(hb.baseAddress!, $0.baseAddress!, n: k) }
            }
            guard ok else { return iteration }
            let w0 = w, b0 = b
            var t = 1.0
            var improved = false
            for _ in 0..<30 {
                for u in 0..<m { w[u] = w0[u] - t * step[u] }
                b = b0 - t * step[m]
                let next = objective(rhat: rhat, labels: labels, omega: omega, gamma: 0, l2: l2, prior: prior)
                if next <= current { improved = current - next > 1e-12; current = next; break }
                t /= 2
                w = w0; b = b0
            }
            if !improved { return iteration + 1 }
        }
        return iterations
    }

    /// Applies one step of the configured rule along `grad`.
    mutating func step(_ grad: [Double], learningRate: Double) {
        optimizer.step(params: &w, bias: &b, grad: grad, learningRate: learningRate)
    }

    /// Projects the weights onto w >= 0 (the bias is free).
    mutating func clampNegativeWeights() {
        for u in w.indices where w[u] < 0 { w[u] = 0 }
    }

    /// For tests and research: sets the parameters directly.
    public mutating func set(weights: [Double], bias: Double) {
        precondition(weights.count == w.count)
        w = weights
        b = bias
    }
}
