/// Folds an instance into latent space: y = (sum_u c_u x_u x_u^T + lambda I)^-1 sum_u c_u r_u x_u
/// over its observed entries, with X fixed. Owns its scratch so steady-state calls allocate nothing.
public struct InstanceFactors {
    public let dim: Int
    private var m: [Double]
    /// The last solved y.
    public private(set) var y: [Double]

    public init(dim: Int) {
        self.dim = dim
        m = [Double](repeating: 0, count: dim * dim)
        y = [Double](repeating: 0, count: dim)
    }

    /// Solves for y given the entries and their confidences (same order).
    public mutating func fold(_ entries: UnsafeBufferPointer<Entry>, confidences: UnsafeBufferPointer<Double>,
                              factors: ClassifierFactors, lambda: Double) {
        let d = dim
        m.withUnsafeMutableBufferPointer { mb in
            y.withUnsafeMutableBufferPointer { yb in
                factors.x.withUnsafeBufferPointer { xb in
                    let M = mb.baseAddress!, b = yb.baseAddress!, X = xb.baseAddress!
                    for i in 0..<(d * d) { M[i] = 0 }
                    for i in 0..<d { M[i * d + i] = lambda; b[i] = 0 }
                    for (k, e) in entries.enumerated() {
                        let xu = X + Int(e.classifier) * d
                        let c = confidences[k]
                        let cr = c * Double(e.value)
                        for i in 0..<d {
                            let cx = c * xu[i]
                            b[i] += cr * xu[i]
                            // Upper triangle only; mirrored below.
                            for j in i..<d { M[i * d + j] += cx * xu[j] }
                        }
                    }
                    for i in 0..<d { for j in 0..<i { M[i * d + j] = M[j * d + i] } }
                    if !Cholesky.solve(M, b, n: d) {
                        for i in 0..<d { b[i] = 0 }
                    }
                }
            }
        }
    }

    /// Copies the last solved y into `out`.
    public func copy(to out: UnsafeMutablePointer<Double>) {
        y.withUnsafeBufferPointer { for i in 0..<dim { out[i] = $0[i] } }
    }
}
