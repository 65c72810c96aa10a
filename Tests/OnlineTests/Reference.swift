import Foundation
@testable import Online

/// Independent reference computations for the tests: plain Gaussian elimination with
/// partial pivoting on dense matrices, written without any of Online's code.
enum Reference {
    /// Solves a x = b (a is n x n, row-major as [[Double]]).
    static func gaussianSolve(_ a: [[Double]], _ b: [Double]) -> [Double] {
        let n = b.count
        var m = a
        var v = b
        for col in 0..<n {
            var pivot = col
            for r in col..<n where abs(m[r][col]) > abs(m[pivot][col]) { pivot = r }
            m.swapAt(col, pivot)
            v.swapAt(col, pivot)
            for r in (col + 1)..<max(n, col + 1) {
                let f = m[r][col] / m[col][col]
                for c in col..<n { m[r][c] -= f * m[col][c] }
                v[r] -= f * v[col]
            }
        }
        var x = [Double](repeating: 0, count: n)
        for r in stride(from: n - 1, through: 0, by: -1) {
            var s = v[r]
            for c in (r + 1)..<max(n, r + 1) { s -= m[r][c] * x[c] }
            x[r] = s / m[r][r]
        }
        return x
    }

    /// The ridge normal-equation solution argmin_y sum_k c_k (r_k - f_k . y)^2 + lambda |y|^2.
    static func ridge(features: [[Double]], targets: [Double], weights: [Double], lambda: Double) -> [Double] {
        let d = features.first?.count ?? 0
        var a = [[Double]](repeating: [Double](repeating: 0, count: d), count: d)
        var b = [Double](repeating: 0, count: d)
        for (k, f) in features.enumerated() {
            for i in 0..<d {
                b[i] += weights[k] * targets[k] * f[i]
                for j in 0..<d { a[i][j] += weights[k] * f[i] * f[j] }
            }
        }
        for i in 0..<d { a[i][i] += lambda }
        return gaussianSolve(a, b)
    }
}
