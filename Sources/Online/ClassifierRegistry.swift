/// Maps classifier names to dense indices, registering names on first sight up to a cap.
public struct ClassifierRegistry: Sendable, Equatable {
    public private(set) var names: [String] = []
    private var index: [String: Int] = [:]
    public let capacity: Int

    public init(capacity: Int) { self.capacity = capacity }

    public var count: Int { names.count }

    /// The index of a known classifier.
    public func lookup(_ name: String) -> Int? { index[name] }

    /// Whether registering `newNames` more classifiers would exceed the cap.
    public func hasRoom(for newNames: Int) -> Bool { names.count + newNames <= capacity }

    /// Registers `name` (which must be new and fit) and returns its index.
    public mutating func register(_ name: String) -> Int {
        precondition(index[name] == nil && names.count < capacity)
        names.append(name)
        index[name] = names.count - 1
        return names.count - 1
    }
}
