import DequeModule

/// A scored instance waiting for its label.
public struct PendingInstance: Sendable, Equatable, Codable {
    /// The observed entries (classifier, probability).
    public var entries: [Entry]
    /// When it was first scored, in seconds since the Unix epoch.
    public var arrival: Double
    /// The published score and the simple average at scoring time (prequential quality).
    public var score: Float
    public var average: Float

    public init(entries: [Entry], arrival: Double, score: Double, average: Double) {
        self.entries = entries
        self.arrival = arrival
        self.score = Float(score)
        self.average = Float(average)
    }
}

/// Scored instances by id until their label arrives, bounded by a time to live and a
/// capacity; the oldest go first and every eviction is counted.
public struct PendingStore: Sendable {
    private struct Slot: Sendable {
        var instance: PendingInstance
        var seq: UInt64
    }

    private var slots: [String: Slot] = [:]
    /// Arrival order; entries whose id was taken (or re-inserted) are skipped lazily.
    private var order: Deque<(id: String, seq: UInt64)> = []
    private var nextSeq: UInt64 = 0

    public let capacity: Int
    public let ttl: Double
    /// Instances dropped to stay within `capacity`.
    public private(set) var evicted: UInt64 = 0
    /// Instances dropped after `ttl` seconds without a label.
    public private(set) var expired: UInt64 = 0

    public init(capacity: Int, ttl: Double) {
        self.capacity = capacity
        self.ttl = ttl
        // Sized for the cap at once: growing a hash table of hundreds of thousands of ids
        // rehashes all of them in one go, a stall of tens of milliseconds on the scoring
        // path. Untouched pages of the reservation cost address space, not memory.
        slots.reserveCapacity(capacity)
        order.reserveCapacity(min(capacity * 2, capacity + 1024))
    }

    public var count: Int { slots.count }

    public func contains(_ id: String) -> Bool { slots[id] != nil }

    /// Stores an instance; a second one with the same id is merged into the first
    /// (its entries added or replaced, its latest score kept, its arrival unchanged).
    public mutating func insert(id: String, _ instance: PendingInstance) {
        if var slot = slots[id] {
            for e in instance.entries {
                if let k = slot.instance.entries.firstIndex(where: { $0.classifier == e.classifier }) {
                    slot.instance.entries[k] = e
                } else {
                    slot.instance.entries.append(e)
                }
            }
            slot.instance.score = instance.score
            slot.instance.average = instance.average
            slots[id] = slot
            return
        }
        let seq = nextSeq
        nextSeq += 1
        slots[id] = Slot(instance: instance, seq: seq)
        order.append((id, seq))
        while slots.count > capacity, let victim = popOldest() {
            _ = victim
            evicted += 1
        }
        compactIfNeeded()
    }

    /// Removes and returns the instance for `id`, if still pending.
    public mutating func take(_ id: String) -> PendingInstance? {
        slots.removeValue(forKey: id)?.instance
    }

    /// Drops instances that arrived more than `ttl` seconds before `now`.
    @discardableResult
    public mutating func expire(now: Double) -> Int {
        var n = 0
        while let head = order.first {
            guard let slot = slots[head.id], slot.seq == head.seq else { order.removeFirst(); continue }
            guard now - slot.instance.arrival > ttl else { break }
            order.removeFirst()
            slots.removeValue(forKey: head.id)
            n += 1
        }
        expired += UInt64(n)
        return n
    }

    private mutating func popOldest() -> String? {
        while let head = order.popFirst() {
            if let slot = slots[head.id], slot.seq == head.seq {
                slots.removeValue(forKey: head.id)
                return head.id
            }
        }
        return nil
    }

    private mutating func compactIfNeeded() {
        guard order.count > 1024 && order.count > 2 * slots.count else { return }
        order = Deque(order.filter { slots[$0.id]?.seq == $0.seq })
    }

    /// All pending instances, oldest first (for checkpoints).
    public func snapshot() -> [(id: String, instance: PendingInstance)] {
        order.compactMap { o in
            guard let slot = slots[o.id], slot.seq == o.seq else { return nil }
            return (o.id, slot.instance)
        }
    }

    /// Restores counters after a checkpoint; instances are re-inserted with `insert`.
    public mutating func restoreCounters(evicted: UInt64, expired: UInt64) {
        self.evicted = evicted
        self.expired = expired
    }
}
