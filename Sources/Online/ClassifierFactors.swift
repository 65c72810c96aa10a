/// The classifier factors X (one d-vector x_u per classifier) and, per classifier, the
/// exponentially forgotten sufficient statistics A_u = sum c y y^T, g_u = sum c r y
/// from which x_u = (A_u + lambda I)^-1 g_u is exact ALS over the weighted window.
public struct ClassifierFactors: Sendable, Equatable, Codable {
    public let dim: Int
    /// Row-major m x d: x_u is `x[u*d ..< (u+1)*d]`.
    public internal(set) var x: [Double] = []
    /// m blocks of d x d.
    public internal(set) var a: [Double] = []
    /// m blocks of d.
    public internal(set) var g: [Double] = []
    /// Forgotten count of entries behind each classifier's statistics.
    public internal(set) var weight: [Double] = []

    public init(dim: Int) { self.dim = dim }

    public var count: Int { weight.count }

    /// Adds a classifier whose factor reconstructs its own output before any learning:
    /// x_u = (1, e_k) with k cycling over the other dimensions, so rhat_u = y_0 + y_k.
    /// Classifiers sharing k are reconstructed from each other; y_0 carries the mean,
    /// which fills classifiers that did not report. With d > m the start is exact.
    public mutating func append() {
        let u = count
        var row = [Double](repeating: 0, count: dim)
        row[0] = 1
        if dim > 1 { row[1 + u % (dim - 1)] = 1 }
        x.append(contentsOf: row)
        a.append(contentsOf: repeatElement(0, count: dim * dim))
        g.append(contentsOf: repeatElement(0, count: dim))
        weight.append(0)
    }

    /// rhat_u = x_u . y
    @inline(__always)
    public func reconstruct(_ u: Int, _ y: UnsafePointer<Double>) -> Double {
        x.withUnsafeBufferPointer { xb in
            let xu = xb.baseAddress! + u * dim
            var s = 0.0
            for k in 0..<dim { s += xu[k] * y[k] }
            return s
        }
    }

    /// Multiplies every classifier's statistics by `beta`.
    mutating func forget(_ beta: Double) {
        guard beta < 1 else { return }
        for i in a.indices { a[i] *= beta }
        for i in g.indices { g[i] *= beta }
        for i in weight.indices { weight[i] *= beta }
    }

    /// Adds c * y y^T and c * r * y to classifier u's statistics.
    mutating func accumulate(_ u: Int, y: UnsafePointer<Double>, r: Double, c: Double) {
        let d = dim
        a.withUnsafeMutableBufferPointer { ab in
            let au = ab.baseAddress! + u * d * d
            for i in 0..<d {
                let cy = c * y[i]
                for j in 0..<d { au[i * d + j] += cy * y[j] }
            }
        }
        g.withUnsafeMutableBufferPointer { gb in
            let gu = gb.baseAddress! + u * d
            for i in 0..<d { gu[i] += c * r * y[i] }
        }
        weight[u] += c
    }

    /// Solves x_u = (A_u + extraA + lambda I)^-1 (g_u + extraG) for every classifier with
    /// data; `extraA`/`extraG` are the current batch's contributions (same layout).
    mutating func solve(lambda: Double, extraA: [Double], extraG: [Double], extraWeight: [Double]) {
        let d = dim
        // Stack scratch: this runs on the scoring path every factor_refresh_interval instances.
        withUnsafeTemporaryAllocation(of: Double.self, capacity: d * d + d) { scratch in
            let m = scratch.baseAddress!, rhs = m + d * d
            for u in 0..<count where weight[u] + extraWeight[u] > 0 {
                for i in 0..<(d * d) { m[i] = a[u * d * d + i] + extraA[u * d * d + i] }
                for i in 0..<d { m[i * d + i] += lambda; rhs[i] = g[u * d + i] + extraG[u * d + i] }
                if Cholesky.solve(m, rhs, n: d) { for i in 0..<d { x[u * d + i] = rhs[i] } }
            }
        }
    }
}
