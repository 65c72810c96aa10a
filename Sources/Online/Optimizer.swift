#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// State of the aggregator's step rule (SGD, AdaGrad or Adam) over m weights and a bias.
struct Optimizer: Sendable, Equatable, Codable {
    let rule: StepRule
    var first: [Double] = []
    var second: [Double] = []
    var steps = 0

    init(rule: StepRule) { self.rule = rule }

    mutating func resize(_ n: Int) {
        while first.count < n { first.append(0); second.append(0) }
    }

    mutating func step(params w: inout [Double], bias b: inout Double, grad: [Double], learningRate lr: Double) {
        let n = w.count + 1
        resize(n)
        steps += 1
        for i in 0..<n {
            let gi = grad[i]
            let delta: Double
            switch rule {
            case .sgd:
                delta = lr * gi
            case .adagrad:
                second[i] += gi * gi
                delta = lr * gi / (second[i].squareRoot() + 1e-8)
            case .adam, .newton:   // newton's gradient fallback (focal loss) is Adam
                let b1 = 0.9, b2 = 0.999
                first[i] = b1 * first[i] + (1 - b1) * gi
                second[i] = b2 * second[i] + (1 - b2) * gi * gi
                let mHat = first[i] / (1 - pow(b1, Double(steps)))
                let vHat = second[i] / (1 - pow(b2, Double(steps)))
                delta = lr * mHat / (vHat.squareRoot() + 1e-8)
            }
            if i < n - 1 { w[i] -= delta } else { b -= delta }
        }
    }
}
