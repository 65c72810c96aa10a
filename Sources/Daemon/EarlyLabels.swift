import DequeModule

/// Learner: labels that arrived before their instance. With several scorers a label can
/// overtake its own pred (sent to another scorer a moment earlier); it waits here for a
/// short time instead of being counted unmatched at once.
struct EarlyLabels {
    private var labels: [String: Int8] = [:]
    private var order: Deque<(id: String, deadline: Double)> = []
    let wait: Double
    let capacity: Int

    init(wait: Double, capacity: Int) {
        self.wait = wait
        self.capacity = capacity
    }

    var count: Int { labels.count }

    /// Keeps `label` for `id` until `now + wait`; false when full (the caller counts it unmatched).
    mutating func add(id: String, label: Int8, now: Double) -> Bool {
        guard wait > 0, labels.count < capacity else { return false }
        if labels.updateValue(label, forKey: id) == nil { order.append((id, now + wait)) }
        return true
    }

    /// The waiting label for `id`, removed.
    mutating func take(_ id: String) -> Int8? {
        guard !labels.isEmpty else { return nil }
        return labels.removeValue(forKey: id)
    }

    /// Removes labels whose wait is over and returns how many of them were still waiting.
    mutating func expire(now: Double) -> Int {
        var n = 0
        while let first = order.first, first.deadline <= now {
            order.removeFirst()
            if labels.removeValue(forKey: first.id) != nil { n += 1 }
        }
        return n
    }
}
