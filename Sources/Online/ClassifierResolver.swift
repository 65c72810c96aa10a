/// Maps a message's classifier names to the model's indices, registering new names, and
/// remembers when each classifier last reported (for `classifier_silent`).
///
/// Producers send the same names in the same order, so each position's last name and
/// index are kept and compared before the registry's hash lookup: the common message
/// costs one string comparison per classifier and allocates nothing.
public struct ClassifierResolver: Sendable {
    public enum Outcome: Equatable, Sendable {
        case resolved
        /// Registering the message's `newNames` unknown names would exceed
        /// `model.max_classifiers`; nothing was registered.
        case tooMany(newNames: Int)
        /// `name` is unknown and not in the allow-list; nothing was registered.
        case notAllowed(name: String)
    }

    /// The only names that may be registered (nil: any). Names already registered
    /// (restored from a checkpoint) are kept either way.
    public var allowed: Set<String>?

    /// A classifier index no model can have (max_classifiers <= 4096).
    @usableFromInline static let unregistered = Int(UInt16.max)

    @usableFromInline var cache: [(name: String, index: Int)] = []
    /// When each classifier (by index) last reported, on the caller's clock.
    public var lastSeen: [Double] { seen }
    @usableFromInline var seen: [Double] = []

    public init() {}

    /// Sets when each classifier (by index) last reported, e.g. from a restored state.
    public mutating func restoreLastSeen(_ times: [Double]) { seen = times }

    /// Forgets the cached positions (the model was replaced; indices may differ).
    public mutating func forgetPositions() { cache.removeAll() }

    /// Fills `entries` with the readings' indices and values, registering unknown names
    /// in order (`registered` is told each one), or registers nothing and returns
    /// `.tooMany` when they would not fit. Inlinable: specialised for the caller's
    /// collection and closures, it allocates nothing (unspecialised across the module
    /// boundary it cost one allocation per classifier).
    @inlinable
    public mutating func resolve<C: Collection>(_ readings: C, name: (C.Element) -> String, value: (C.Element) -> Double,
                                                model: CFEnsemble, into entries: inout [Entry], now: Double,
                                                registered: (String) -> Void) -> Outcome {
        entries.removeAll(keepingCapacity: true)
        var newNames = 0
        for (k, r) in readings.enumerated() {
            let n = name(r)
            if k < cache.count, cache[k].name == n {
                entries.append(Entry(classifier: cache[k].index, value: value(r)))
            } else if let u = model.classifier(named: n, register: false) {
                if k < cache.count { cache[k] = (n, u) } else { cache.append((n, u)) }
                entries.append(Entry(classifier: u, value: value(r)))
            } else {
                newNames += 1
                entries.append(Entry(classifier: Self.unregistered, value: value(r)))
            }
        }
        if newNames > 0 {
            if let allowed {
                for (k, r) in readings.enumerated() where Int(entries[k].classifier) == Self.unregistered && !allowed.contains(name(r)) {
                    return .notAllowed(name: name(r))
                }
            }
            guard model.hasRoom(for: newNames) else { return .tooMany(newNames: newNames) }
            for (k, r) in readings.enumerated() where Int(entries[k].classifier) == Self.unregistered {
                let before = model.classifierCount
                entries[k] = Entry(classifier: model.classifier(named: name(r))!, value: value(r))
                if model.classifierCount > before { registered(name(r)) }
            }
        }
        for e in entries {
            let u = Int(e.classifier)
            while seen.count <= u { seen.append(now) }
            seen[u] = now
        }
        return .resolved
    }
}
