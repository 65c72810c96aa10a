#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A small deterministic random generator (SplitMix64) so tests are reproducible: the
/// same seed gives the same sequence on every machine.
public struct SeededRandom: RandomNumberGenerator {
    public var state: UInt64
    static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= Self.golden
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1), 53 bits.
    public mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// Uniform in 0..<n.
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// Standard normal (Box-Muller).
    public mutating func normal() -> Double {
        let u1 = max(uniform(), 1e-300), u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }

    /// The k-th uniform of the sequence seeded 0 (k >= 1), without drawing the ones before:
    /// noise addressed by an index, e.g. per instance and classifier.
    public static func uniform(at k: UInt64) -> Double {
        var g = SeededRandom(seed: (k &- 1) &* golden)
        return g.uniform()
    }
}
