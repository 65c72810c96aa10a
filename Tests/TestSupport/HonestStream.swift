#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Six classifiers that lean toward instance i's label (m0 ... m5), deterministic in i:
/// a healthy stream for the health tests, in process and through the real daemon.
public func honestPreds(_ i: Int, truth: Int) -> [String: Double] {
    var out: [String: Double] = [:]
    for u in 0..<6 {
        let noise = Double((i * 7919 + u * 104_729) % 1000) / 1000 - 0.5
        out["m\(u)"] = 1 / (1 + exp(-((truth == 1 ? 1.5 : -1.5) + 2 * noise)))
    }
    return out
}
