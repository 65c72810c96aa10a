/// A checkpoint that cannot be restored, and why.
public struct SnapshotError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}
