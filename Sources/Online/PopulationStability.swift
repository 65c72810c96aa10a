#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The population stability index between two windows' bin counts
/// (`ProbabilityBins`), and what sampling alone gives for windows of their sizes.
public enum PopulationStability {
    /// Σ (r − q) ln(r / q) over the bins, r and q the recent and reference shares (each
    /// count + 0.5, so an empty bin is finite), with the noise (k − 1)(1/n_recent +
    /// 1/n_reference), k the bins either window uses (PSI is then about χ²(k − 1) / n_eff).
    public static func index(recent: UnsafeBufferPointer<Int32>, reference: UnsafeBufferPointer<Int32>,
                             recentTotal: Int, referenceTotal: Int) -> (psi: Double, noise: Double) {
        let k = Double(recent.count)
        let nr = Double(recentTotal) + 0.5 * k, nq = Double(referenceTotal) + 0.5 * k
        var psi = 0.0
        var used = 0
        for i in 0..<recent.count {
            if recent[i] > 0 || reference[i] > 0 { used += 1 }
            let r = (Double(recent[i]) + 0.5) / nr
            let q = (Double(reference[i]) + 0.5) / nq
            psi += (r - q) * log(r / q)
        }
        let noise = Double(max(1, used - 1)) * (1 / Double(recentTotal) + 1 / Double(referenceTotal))
        return (psi, noise)
    }
}
