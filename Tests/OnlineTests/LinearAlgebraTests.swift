import Foundation
import Testing
import TestSupport
@testable import Online

@Suite struct LinearAlgebraTests {
    @Test func choleskyMatchesGaussianElimination() {
        var rng = SeededRandom(seed: 1)
        for n in [1, 2, 5, 8, 20] {
            // A = B B^T + n I is symmetric positive definite.
            let b = (0..<n).map { _ in (0..<n).map { _ in rng.normal() } }
            var a = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
            for i in 0..<n { for j in 0..<n { for k in 0..<n { a[i][j] += b[i][k] * b[j][k] } }; a[i][i] += Double(n) }
            let rhs = (0..<n).map { _ in rng.normal() }
            let expected = Reference.gaussianSolve(a, rhs)
            var flat = a.flatMap { $0 }
            var x = rhs
            let ok = flat.withUnsafeMutableBufferPointer { fb in
                x.withUnsafeMutableBufferPointer { Cholesky.solve(fb.baseAddress!, $0.baseAddress!, n: n) }
            }
            #expect(ok)
            for i in 0..<n { #expect(abs(x[i] - expected[i]) < 1e-9 * max(1, abs(expected[i]))) }
        }
    }

    @Test func choleskyRefusesIndefiniteMatrix() {
        var a: [Double] = [1, 2, 2, 1]
        var b: [Double] = [1, 1]
        let ok = a.withUnsafeMutableBufferPointer { ab in b.withUnsafeMutableBufferPointer { Cholesky.solve(ab.baseAddress!, $0.baseAddress!, n: 2) } }
        #expect(!ok)
    }

    /// Check 1 of docs/algorithm.md: with X fixed, fold-in equals the normal-equation solution.
    @Test func foldInEqualsNormalEquationSolution() {
        var rng = SeededRandom(seed: 2)
        let d = 6, m = 9
        var factors = ClassifierFactors(dim: d)
        for _ in 0..<m { factors.append() }
        // Arbitrary classifier factors, not the structured start.
        factors.x = (0..<(m * d)).map { _ in rng.normal() }
        for trial in 0..<20 {
            let observed = (0..<m).filter { _ in rng.uniform() < 0.7 || trial == 0 }
            guard !observed.isEmpty else { continue }
            let entries = observed.map { Entry(classifier: $0, value: rng.uniform()) }
            let conf = entries.map { Confidence.base(Double($0.value), alpha: 1.5) }
            var fold = InstanceFactors(dim: d)
            entries.withUnsafeBufferPointer { eb in
                conf.withUnsafeBufferPointer { fold.fold(eb, confidences: $0, factors: factors, lambda: 0.05) }
            }
            let features = entries.map { e in (0..<d).map { factors.x[Int(e.classifier) * d + $0] } }
            let expected = Reference.ridge(features: features, targets: entries.map { Double($0.value) }, weights: conf, lambda: 0.05)
            for k in 0..<d { #expect(abs(fold.y[k] - expected[k]) < 1e-8 * max(1, abs(expected[k]))) }
        }
    }

    @Test func confidenceHasFloorAndFollowsLabels() {
        #expect(Confidence.base(0.5, alpha: 1) == 1)
        #expect(Confidence.base(1, alpha: 1) == 2)
        #expect(Confidence.base(0, alpha: 1) == 2)
        let agree = Confidence.labelled(0.9, label: 1, alpha: 1, strength: 0.5)
        let disagree = Confidence.labelled(0.9, label: 0, alpha: 1, strength: 0.5)
        #expect(agree > Confidence.base(0.9, alpha: 1))
        #expect(disagree < Confidence.base(0.9, alpha: 1))
        #expect(disagree > 0)
    }
}
