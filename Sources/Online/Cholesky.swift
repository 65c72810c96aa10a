/// Solves symmetric positive definite systems in place by Cholesky factorisation.
/// At the sizes of latent factors (d <= ~32) a plain loop beats a LAPACK call.
public enum Cholesky {
    /// Solves `a * x = b` for row-major `a` (n x n, overwritten by its factor) and
    /// `b` (overwritten by x). Returns false when `a` is not positive definite.
    @discardableResult
    public static func solve(_ a: UnsafeMutablePointer<Double>, _ b: UnsafeMutablePointer<Double>, n: Int) -> Bool {
        // Factor: a = L L^T, L stored in the lower triangle.
        for j in 0..<n {
            var diag = a[j * n + j]
            for k in 0..<j { diag -= a[j * n + k] * a[j * n + k] }
            guard diag > 0, diag.isFinite else { return false }
            let ljj = diag.squareRoot()
            a[j * n + j] = ljj
            let inv = 1 / ljj
            for i in (j + 1)..<max(n, j + 1) {
                var s = a[i * n + j]
                for k in 0..<j { s -= a[i * n + k] * a[j * n + k] }
                a[i * n + j] = s * inv
            }
        }
        // Forward: L z = b.
        for i in 0..<n {
            var s = b[i]
            for k in 0..<i { s -= a[i * n + k] * b[k] }
            b[i] = s / a[i * n + i]
        }
        // Back: L^T x = z.
        var i = n - 1
        while i >= 0 {
            var s = b[i]
            for k in (i + 1)..<max(n, i + 1) { s -= a[k * n + i] * b[k] }
            b[i] = s / a[i * n + i]
            i -= 1
        }
        return true
    }
}
