#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Running class counts over the labelled stream (optionally decayed) and the
/// inverse-frequency weights omega_c = n / (2 n_c) they give. Running counts keep the
/// weights stable even when a mini-batch holds no positive at all.
public struct ClassWeights: Sendable, Equatable, Codable {
    public private(set) var positives = 0.0
    public private(set) var negatives = 0.0
    /// Per-label decay factor (1: plain counts).
    public let decay: Double

    /// - Parameter halfLife: labels after which an old label counts half (0: never decays).
    public init(halfLife: Double) {
        decay = halfLife > 0 ? exp2(-1 / halfLife) : 1
    }

    public mutating func observe(_ label: Int8) {
        positives *= decay
        negatives *= decay
        if label == 1 { positives += 1 } else { negatives += 1 }
    }

    /// omega for `label`; 1 while either class has not been seen (no ratio to correct yet).
    public func weight(for label: Int8) -> Double {
        guard positives > 0, negatives > 0 else { return 1 }
        let n = positives + negatives
        return label == 1 ? n / (2 * positives) : n / (2 * negatives)
    }
}
