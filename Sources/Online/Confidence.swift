/// Confidence c_ui of an observed entry: how much the reconstruction should trust it.
public enum Confidence {
    /// Certainty-based, with a floor of 1 so a 0.5 output still counts.
    @inline(__always)
    public static func base(_ r: Double, alpha: Double) -> Double {
        1 + alpha * abs(2 * r - 1)
    }

    /// Label-aware: raised where the entry agrees with the label, lowered where it
    /// disagrees, by at most the factor `strength` (in [0, 1)) either way.
    @inline(__always)
    public static func labelled(_ r: Double, label: Int8, alpha: Double, strength: Double) -> Double {
        let agreement = label == 1 ? r : 1 - r
        return base(r, alpha: alpha) * (1 + strength * (2 * agreement - 1))
    }
}
