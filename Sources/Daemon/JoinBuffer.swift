import DequeModule
import Online

/// `pred` messages for one id from several services, joined within `join_window_ms`
/// before the instance is scored once (docs/protocol.md).
struct JoinBuffer {
    struct Joining {
        var entries: [Entry]
        var ts: Double?
        var label: Int8?
        var deadline: Double
    }

    private var items: [String: Joining] = [:]
    private var order: Deque<(id: String, deadline: Double)> = []
    let window: Double
    let capacity: Int

    init(windowMs: Int, capacity: Int) {
        window = Double(windowMs) / 1000
        self.capacity = capacity
    }

    var isEnabled: Bool { window > 0 }
    var count: Int { items.count }

    func contains(_ id: String) -> Bool { items[id] != nil }

    /// Adds entries for `id`; returns the joined instance's entry count.
    mutating func add(id: String, entries: [Entry], ts: Double?, label: Int8?, now: Double) -> Int {
        if var j = items[id] {
            for e in entries {
                if let k = j.entries.firstIndex(where: { $0.classifier == e.classifier }) { j.entries[k] = e } else { j.entries.append(e) }
            }
            if j.ts == nil { j.ts = ts }
            if label != nil { j.label = label }
            items[id] = j
            return j.entries.count
        }
        items[id] = Joining(entries: entries, ts: ts, label: label, deadline: now + window)
        order.append((id, now + window))
        return entries.count
    }

    mutating func take(_ id: String) -> Joining? { items.removeValue(forKey: id) }

    /// The earliest deadline still waiting, if any.
    mutating func nextDeadline() -> Double? {
        while let head = order.first {
            if let j = items[head.id], j.deadline == head.deadline { return head.deadline }
            order.removeFirst()
        }
        return nil
    }

    /// Removes and returns the oldest instance whose window closed by `now`, or, when
    /// the buffer is over capacity, the oldest one regardless.
    mutating func popDue(now: Double) -> (id: String, joining: Joining)? {
        while let head = order.first {
            guard let j = items[head.id], j.deadline == head.deadline else { order.removeFirst(); continue }
            guard head.deadline <= now || items.count > capacity else { return nil }
            order.removeFirst()
            items.removeValue(forKey: head.id)
            return (head.id, j)
        }
        return nil
    }

    /// Everything still waiting, oldest first (at shutdown).
    mutating func drain() -> [(id: String, joining: Joining)] {
        var out: [(String, Joining)] = []
        while let head = order.popFirst() {
            if let j = items[head.id], j.deadline == head.deadline {
                items.removeValue(forKey: head.id)
                out.append((head.id, j))
            }
        }
        return out
    }
}
