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
///
/// Stored as a slab (one row per instance in parallel arrays, rows reused through a free
/// list) so that a pending instance costs no heap allocation of its own: with 10
/// classifiers about 170 bytes each, where a struct with its own entry array cost 270.
/// Instances with more than `inlineEntries` entries keep the rest in a side table.
public struct PendingStore: Sendable {
    /// Entries kept inline per row.
    public let inlineEntries: Int

    private var index: [String: Int32] = [:]
    private var ids: [String] = []
    private var arrival: [Double] = []
    /// score and average, two per row.
    private var scores: [Float] = []
    private var seqs: [UInt32] = []
    /// Entries per row; `freeRow` marks a row on the free list.
    private var counts: [UInt16] = []
    /// `inlineEntries` per row.
    private var classifiers: [UInt16] = []
    private var values: [Float] = []
    /// Rows whose instance has more entries than fit inline: all of its entries.
    private var overflow: [Int32: [Entry]] = [:]
    private var free: [Int32] = []
    /// Arrival order as (row << 32 | seq); entries whose row was taken or reused are skipped lazily.
    private var order: Deque<UInt64> = []
    private var nextSeq: UInt32 = 0

    public let capacity: Int
    public let ttl: Double
    /// Instances dropped to stay within `capacity`.
    public private(set) var evicted: UInt64 = 0
    /// Instances dropped after `ttl` seconds without a label.
    public private(set) var expired: UInt64 = 0

    public init(capacity: Int, ttl: Double, inlineEntries: Int = 12) {
        self.capacity = capacity
        self.ttl = ttl
        self.inlineEntries = max(1, inlineEntries)
        // Sized for the cap at once (up to 4M rows): growing a hash table of hundreds of
        // thousands of ids rehashes all of them in one go, a stall of tens of milliseconds
        // on the scoring path. Untouched pages of a reservation cost address space, not memory.
        let rows = min(capacity, 4 << 20)
        index.reserveCapacity(rows)
        ids.reserveCapacity(rows)
        arrival.reserveCapacity(rows)
        scores.reserveCapacity(rows * 2)
        seqs.reserveCapacity(rows)
        counts.reserveCapacity(rows)
        classifiers.reserveCapacity(rows * self.inlineEntries)
        values.reserveCapacity(rows * self.inlineEntries)
        order.reserveCapacity(rows + 1024)
    }

    public var count: Int { index.count }

    public func contains(_ id: String) -> Bool { index[id] != nil }

    /// Stores an instance; a second one with the same id is merged into the first
    /// (its entries added or replaced, its latest score kept, its arrival unchanged).
    public mutating func insert(id: String, _ instance: PendingInstance) {
        if let row = index[id] {
            var entries = self.entries(Int(row))
            for e in instance.entries {
                if let k = entries.firstIndex(where: { $0.classifier == e.classifier }) {
                    entries[k] = e
                } else {
                    entries.append(e)
                }
            }
            write(Int(row), entries: entries)
            scores[Int(row) * 2] = instance.score
            scores[Int(row) * 2 + 1] = instance.average
            return
        }
        let seq = nextSeq
        nextSeq &+= 1
        let row: Int
        if let reused = free.popLast() {
            row = Int(reused)
            ids[row] = id
            arrival[row] = instance.arrival
            scores[row * 2] = instance.score
            scores[row * 2 + 1] = instance.average
            seqs[row] = seq
        } else {
            row = ids.count
            ids.append(id)
            arrival.append(instance.arrival)
            scores.append(instance.score)
            scores.append(instance.average)
            seqs.append(seq)
            counts.append(0)
            classifiers.append(contentsOf: repeatElement(0, count: inlineEntries))
            values.append(contentsOf: repeatElement(0, count: inlineEntries))
        }
        write(row, entries: instance.entries)
        index[id] = Int32(row)
        order.append(UInt64(row) << 32 | UInt64(seq))
        while index.count > capacity, popOldest() {
            evicted += 1
        }
        compactIfNeeded()
    }

    /// Removes and returns the instance for `id`, if still pending.
    public mutating func take(_ id: String) -> PendingInstance? {
        guard let row = index.removeValue(forKey: id) else { return nil }
        let instance = self.instance(Int(row))
        release(Int(row))
        return instance
    }

    /// Drops instances that arrived more than `ttl` seconds before `now`.
    @discardableResult
    public mutating func expire(now: Double) -> Int {
        var n = 0
        while let head = order.first {
            guard let row = live(head) else { order.removeFirst(); continue }
            guard now - arrival[row] > ttl else { break }
            order.removeFirst()
            index.removeValue(forKey: ids[row])
            release(row)
            n += 1
        }
        expired += UInt64(n)
        return n
    }

    /// All pending instances, oldest first (for checkpoints).
    public func snapshot() -> [(id: String, instance: PendingInstance)] {
        order.compactMap { o in
            guard let row = live(o) else { return nil }
            return (ids[row], instance(row))
        }
    }

    /// Restores counters after a checkpoint; instances are re-inserted with `insert`.
    public mutating func restoreCounters(evicted: UInt64, expired: UInt64) {
        self.evicted = evicted
        self.expired = expired
    }

    // MARK: Rows

    /// A row's count while it is on the free list (instances have at most 4096 entries).
    private static let freeRow = UInt16.max

    /// The row an order entry points to, if that row still holds the same instance: a
    /// taken or evicted row is marked free, and a reused one has a new sequence number.
    private func live(_ o: UInt64) -> Int? {
        let row = Int(o >> 32), seq = UInt32(truncatingIfNeeded: o)
        guard row < seqs.count, seqs[row] == seq, counts[row] != Self.freeRow else { return nil }
        return row
    }

    private func entries(_ row: Int) -> [Entry] {
        if let spilled = overflow[Int32(row)] { return spilled }
        let n = Int(counts[row]), base = row * inlineEntries
        return (0..<n).map { Entry(classifier: Int(classifiers[base + $0]), value: Double(values[base + $0])) }
    }

    private func instance(_ row: Int) -> PendingInstance {
        var p = PendingInstance(entries: entries(row), arrival: arrival[row], score: 0, average: 0)
        p.score = scores[row * 2]
        p.average = scores[row * 2 + 1]
        return p
    }

    private mutating func write(_ row: Int, entries: [Entry]) {
        counts[row] = UInt16(clamping: min(entries.count, Int(Self.freeRow) - 1))
        if entries.count > inlineEntries {
            overflow[Int32(row)] = entries.withUnsafeBufferPointer { [Entry]($0) }   // exact size, not the caller's buffer
            return
        }
        overflow.removeValue(forKey: Int32(row))
        let base = row * inlineEntries
        for (k, e) in entries.enumerated() {
            classifiers[base + k] = e.classifier
            values[base + k] = e.value
        }
    }

    /// Frees a row whose id is already out of the index.
    private mutating func release(_ row: Int) {
        counts[row] = Self.freeRow
        if !overflow.isEmpty { overflow.removeValue(forKey: Int32(row)) }
        ids[row] = ""
        free.append(Int32(row))
    }

    /// Evicts the oldest live instance; false when none is left.
    private mutating func popOldest() -> Bool {
        while let head = order.popFirst() {
            if let row = live(head) {
                index.removeValue(forKey: ids[row])
                release(row)
                return true
            }
        }
        return false
    }

    private mutating func compactIfNeeded() {
        guard order.count > 1024 && order.count > 2 * index.count else { return }
        var kept = Deque<UInt64>()
        kept.reserveCapacity(max(order.count, min(capacity, 4 << 20) + 1024))
        for o in order where live(o) != nil { kept.append(o) }
        order = kept
    }
}
