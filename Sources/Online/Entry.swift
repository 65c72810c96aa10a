/// One observed entry of the rating matrix: classifier `classifier` gave probability `value`.
/// Compact (8 bytes) because the pending store keeps many of them.
public struct Entry: Sendable, Equatable, Codable {
    public var classifier: UInt16
    public var value: Float

    public init(classifier: Int, value: Double) {
        self.classifier = UInt16(classifier)
        self.value = Float(value)
    }
}
