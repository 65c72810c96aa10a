
/// A scored instance waiting for its label.
public struct PendingInstance: Sendable, Equatable, Codable {
    /// The observed entries (classifier, probability).
    public var entries: [Entry]
    /// When it was first scored, in seconds since the Unix epoch.
    public var arrival: Double
    /// The model's score, the simple average and the calibrated probability published at
    /// scoring time (prequential quality and calibration); the probability is NaN for an
    /// instance stored by a build without it.
    public var score: Float
    public var average: Float
    public var probability: Float

    public init(entries: [Entry], arrival: Double, score: Double, average: Double, probability: Double = .nan) {
        self.entries = entries
        self.arrival = arrival
        self.score = Float(score)
        self.average = Float(average)
        self.probability = Float(probability)
    }

    /// Equal when every field is, an absent probability (NaN) equal to another absent one.
    public static func == (l: PendingInstance, r: PendingInstance) -> Bool {
        l.entries == r.entries && l.arrival == r.arrival && l.score == r.score && l.average == r.average
            && (l.probability == r.probability || (l.probability.isNaN && r.probability.isNaN))
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
    // The slabs are paged (see `frozen()`).
    private var ids: PagedColumn<String>
    private var arrival: PagedColumn<Double>
    /// score, average and probability, three per row.
    private var scores: PagedColumn<Float>
    private var seqs: PagedColumn<UInt32>
    /// Entries per row; `freeRow` marks a row on the free list.
    private var counts: PagedColumn<UInt16>
    /// `inlineEntries` per row.
    private var classifiers: PagedColumn<UInt16>
    private var values: PagedColumn<Float>
    /// Rows whose instance has more entries than fit inline: all of its entries.
    private var overflow: [Int32: [Entry]] = [:]
    private var free: [Int32] = []
    /// Arrival order as (row << 32 | seq); entries whose row was taken or reused are skipped lazily.
    private var order: PagedColumn<UInt64>
    private var nextSeq: UInt32 = 0

    public let capacity: Int
    private let pageShift: Int
    public let ttl: Double
    /// Instances dropped to stay within `capacity`.
    public private(set) var evicted: UInt64 = 0
    /// Instances dropped after `ttl` seconds without a label.
    public private(set) var expired: UInt64 = 0

    public init(capacity: Int, ttl: Double, inlineEntries: Int = 12) {
        self.init(capacity: capacity, ttl: ttl, inlineEntries: inlineEntries, pageShift: 14)
    }

    /// `pageShift`: log2 of the rows per slab page (tests use tiny pages).
    init(capacity: Int, ttl: Double, inlineEntries: Int, pageShift: Int) {
        self.capacity = capacity
        self.ttl = ttl
        self.inlineEntries = max(1, inlineEntries)
        self.pageShift = pageShift
        ids = PagedColumn(pageShift: pageShift)
        arrival = PagedColumn(pageShift: pageShift)
        scores = PagedColumn(stride: 3, pageShift: pageShift)
        seqs = PagedColumn(pageShift: pageShift)
        counts = PagedColumn(pageShift: pageShift)
        classifiers = PagedColumn(stride: self.inlineEntries, pageShift: pageShift)
        values = PagedColumn(stride: self.inlineEntries, pageShift: pageShift)
        order = PagedColumn(pageShift: pageShift)
        // Sized for the cap at once (up to 4M rows): growing a hash table of hundreds of
        // thousands of ids rehashes all of them in one go, a stall of tens of milliseconds
        // on the scoring path. Untouched pages of a reservation cost address space, not
        // memory. The slabs grow a page at a time and never move.
        let rows = min(capacity, 4 << 20)
        index.reserveCapacity(rows)
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
            scores[Int(row), 0] = instance.score
            scores[Int(row), 1] = instance.average
            scores[Int(row), 2] = instance.probability
            return
        }
        let seq = nextSeq
        nextSeq &+= 1
        let row: Int
        if let reused = free.popLast() {
            row = Int(reused)
            ids[row] = id
            arrival[row] = instance.arrival
            scores[row, 0] = instance.score
            scores[row, 1] = instance.average
            scores[row, 2] = instance.probability
            seqs[row] = seq
        } else {
            row = ids.count
            ids.append(id)
            arrival.append(instance.arrival)
            scores.append(instance.score)
            scores[row, 1] = instance.average
            scores[row, 2] = instance.probability
            seqs.append(seq)
            counts.append(0)
            classifiers.append(0)
            values.append(0)
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
            guard let row = live(head) else { _ = order.popFirst(); continue }
            guard now - arrival[row] > ttl else { break }
            _ = order.popFirst()
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

    /// The pending instances as of now, for a checkpoint written on another thread. O(1):
    /// the slabs are shared copy-on-write a page at a time, so a later change to the store
    /// copies the one page it touches; the id table is left out, so it is never copied.
    public func frozen() -> Frozen {
        var copy = self
        copy.index = [:]
        return Frozen(store: copy, count: index.count)
    }

    /// A point-in-time copy of the pending instances (see `frozen()`).
    public struct Frozen: Sendable {
        fileprivate let store: PendingStore
        /// Instances it holds.
        public let count: Int

        /// All of them, oldest first.
        public func snapshot() -> [(id: String, instance: PendingInstance)] { store.snapshot() }

        /// Each of them, oldest first, as stored, without collecting them (a checkpoint
        /// encodes them one at a time instead of holding a second copy of the table): the
        /// row's columns lent to `body` for the call, nothing built.
        public func forEachRow(_ body: (borrowing Row) throws -> Void) rethrows {
            for o in store.order {
                guard let row = store.live(o) else { continue }
                try store.withRow(row, body)
            }
        }
    }

    /// One stored instance's columns (`Frozen.forEachRow`); the buffers are valid during
    /// the call only.
    public struct Row: ~Copyable {
        public let id: String
        public let arrival: Double
        public let score: Float
        public let average: Float
        public let probability: Float
        /// Classifier indices and probabilities, in the order they were stored.
        public let classifiers: UnsafeBufferPointer<UInt16>
        public let values: UnsafeBufferPointer<Float>
    }

    private func withRow(_ row: Int, _ body: (borrowing Row) throws -> Void) rethrows {
        let id = ids[row], at = arrival[row]
        let score = scores[row, 0], average = scores[row, 1], probability = scores[row, 2]
        if let spilled = overflow[Int32(row)] {
            let c = spilled.map(\.classifier), v = spilled.map(\.value)
            try c.withUnsafeBufferPointer { c in
                try v.withUnsafeBufferPointer { v in
                    try body(Row(id: id, arrival: at, score: score, average: average, probability: probability, classifiers: c, values: v))
                }
            }
            return
        }
        let n = Int(counts[row])
        try classifiers.withRow(row) { c in
            try values.withRow(row) { v in
                try body(Row(id: id, arrival: at, score: score, average: average, probability: probability,
                             classifiers: UnsafeBufferPointer(rebasing: c[0..<n]), values: UnsafeBufferPointer(rebasing: v[0..<n])))
            }
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
        let n = Int(counts[row])
        return classifiers.withRow(row) { c in
            values.withRow(row) { v in (0..<n).map { Entry(classifier: Int(c[$0]), value: Double(v[$0])) } }
        }
    }

    private func instance(_ row: Int) -> PendingInstance {
        var p = PendingInstance(entries: entries(row), arrival: arrival[row], score: 0, average: 0)
        p.score = scores[row, 0]
        p.average = scores[row, 1]
        p.probability = scores[row, 2]
        return p
    }

    private mutating func write(_ row: Int, entries: [Entry]) {
        counts[row] = UInt16(clamping: min(entries.count, Int(Self.freeRow) - 1))
        if entries.count > inlineEntries {
            overflow[Int32(row)] = entries.withUnsafeBufferPointer { [Entry]($0) }   // exact size, not the caller's buffer
            return
        }
        if !overflow.isEmpty { overflow.removeValue(forKey: Int32(row)) }
        classifiers.withMutableRow(row) { c in
            for (k, e) in entries.enumerated() { c[k] = e.classifier }
        }
        values.withMutableRow(row) { v in
            for (k, e) in entries.enumerated() { v[k] = e.value }
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
        var kept = PagedColumn<UInt64>(pageShift: pageShift)
        for o in order where live(o) != nil { kept.append(o) }
        order = kept
    }
}
