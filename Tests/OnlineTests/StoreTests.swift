import Testing
@testable import Online

@Suite struct StoreTests {
    private func instance(_ t: Double, _ v: Double = 0.5) -> PendingInstance {
        PendingInstance(entries: [Entry(classifier: 0, value: v)], arrival: t, score: v, average: v)
    }

    @Test func pendingStoreEvictsOldestOverCapacity() {
        var store = PendingStore(capacity: 3, ttl: 100)
        for i in 0..<5 { store.insert(id: "i\(i)", instance(Double(i))) }
        #expect(store.count == 3)
        #expect(store.evicted == 2)
        #expect(store.take("i0") == nil && store.take("i1") == nil)
        #expect(store.take("i4") != nil)
        #expect(store.count == 2)
    }

    @Test func pendingStoreExpiresByTTL() {
        var store = PendingStore(capacity: 100, ttl: 10)
        store.insert(id: "old", instance(0))
        store.insert(id: "new", instance(8))
        #expect(store.expire(now: 12) == 1)
        #expect(store.expired == 1)
        #expect(!store.contains("old") && store.contains("new"))
    }

    @Test func pendingStoreMergesSameId() {
        var store = PendingStore(capacity: 10, ttl: 10)
        store.insert(id: "x", PendingInstance(entries: [Entry(classifier: 0, value: 0.1)], arrival: 1, score: 0.2, average: 0.1))
        store.insert(id: "x", PendingInstance(entries: [Entry(classifier: 1, value: 0.9), Entry(classifier: 0, value: 0.3)],
                                              arrival: 5, score: 0.7, average: 0.6))
        let merged = store.take("x")!
        #expect(merged.entries.count == 2)
        #expect(merged.entries.first { $0.classifier == 0 }!.value == 0.3)
        #expect(merged.arrival == 1)
        #expect(store.count == 0)
    }

    @Test func takenIdsDoNotCountAsEvictions() {
        var store = PendingStore(capacity: 2, ttl: 100)
        for i in 0..<2000 {
            store.insert(id: "i\(i)", instance(Double(i)))
            _ = store.take("i\(i)")
        }
        #expect(store.evicted == 0 && store.count == 0)
        #expect(store.snapshot().isEmpty)
    }

    /// The slab store against a plain reference (a dictionary and an arrival list) over a
    /// long random mix of inserts (some repeated ids, some with more entries than fit
    /// inline), takes, expiries and evictions; with pages of 4 rows too, so that rows and
    /// the arrival queue cross pages. Frozen copies taken along the way (as for a
    /// background checkpoint) must still give the snapshot of their moment after the store
    /// has gone on changing.
    @Test(arguments: [14, 2])
    func slabStoreMatchesAPlainReference(pageShift: Int) {
        var store = PendingStore(capacity: 50, ttl: 30, inlineEntries: 3, pageShift: pageShift)
        var frozen: [(PendingStore.Frozen, [(id: String, instance: PendingInstance)])] = []
        var ref: [String: PendingInstance] = [:]
        var arrivals: [String] = []
        var evicted = 0, expired = 0
        var state: UInt64 = 42
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 33) % n
        }
        for step in 0..<20_000 {
            let now = Double(step) / 10
            let id = "id\(next(120))"
            switch next(10) {
            case 0..<5:
                let n = 1 + next(6)
                let entries = (0..<n).map { Entry(classifier: ($0 * 7 + next(3)) % 9, value: Double(next(1000)) / 1000) }
                var unique: [Entry] = []
                for e in entries where !unique.contains(where: { $0.classifier == e.classifier }) { unique.append(e) }
                let inst = PendingInstance(entries: unique, arrival: now, score: Double(next(100)) / 100, average: 0.5)
                store.insert(id: id, inst)
                if var old = ref[id] {
                    for e in unique {
                        if let k = old.entries.firstIndex(where: { $0.classifier == e.classifier }) { old.entries[k] = e } else { old.entries.append(e) }
                    }
                    old.score = inst.score
                    old.average = inst.average
                    ref[id] = old
                } else {
                    ref[id] = inst
                    arrivals.append(id)
                    while ref.count > 50 {
                        let victim = arrivals.removeFirst()
                        if ref.removeValue(forKey: victim) != nil { evicted += 1 }
                    }
                }
            case 5..<8:
                let got = store.take(id)
                let want = ref.removeValue(forKey: id)
                #expect(got == want, "step \(step) id \(id)")
                arrivals.removeAll { $0 == id }
            default:
                let n = store.expire(now: now)
                var m = 0
                while let head = arrivals.first, let inst = ref[head], now - inst.arrival > 30 {
                    ref.removeValue(forKey: head); arrivals.removeFirst(); m += 1
                }
                #expect(n == m, "step \(step)")
                expired += m
            }
            #expect(store.count == ref.count)
            if step % 997 == 0 { frozen.append((store.frozen(), store.snapshot())) }
        }
        #expect(frozen.count > 10)
        for (copy, then) in frozen {
            let now = copy.snapshot()
            #expect(copy.count == then.count)
            #expect(now.map(\.id) == then.map(\.id))
            #expect(now.map(\.instance) == then.map(\.instance))
        }
        #expect(store.evicted == UInt64(evicted) && store.expired == UInt64(expired))
        let snap = store.snapshot()
        #expect(snap.map(\.id) == arrivals.filter { ref[$0] != nil })
        for (id, inst) in snap { #expect(ref[id] == inst) }
    }

    @Test func averagePrecisionMatchesHandComputation() {
        // Ranked labels 1,0,1,0: AP = 1/2 * 1 + 1/2 * 2/3.
        let ap = RollingQuality.averagePrecision([0.9, 0.8, 0.7, 0.6] as [Double], [1, 0, 1, 0])!
        #expect(abs(ap - (0.5 + 1.0 / 3.0)) < 1e-12)
        // Ties form one threshold: all tied gives the positive rate.
        let tied = RollingQuality.averagePrecision([0.5, 0.5, 0.5, 0.5] as [Double], [1, 0, 0, 0])!
        #expect(abs(tied - 0.25) < 1e-12)
        #expect(RollingQuality.averagePrecision([0.1, 0.2] as [Double], [0, 0]) == nil)
    }

    @Test func rollingQualityKeepsOnlyTheWindow() {
        var q = RollingQuality(window: 4)
        for i in 0..<10 { q.record(score: Double(i), baseline: 0, label: i % 2 == 0 ? 1 : 0) }
        #expect(q.count == 4)
        // Window holds 6..9: labels 1,0,1,0 with scores increasing: positives ranked 2nd and 4th.
        #expect(abs(q.prAUC! - (0.5 * 0.5 + 0.5 * 0.5)) < 1e-12)
    }

    @Test func replayBufferKeepsTheMostRecentOfEachClass() {
        var buffer = ReplayBuffer(positives: 2, negatives: 3)
        #expect(!buffer.hasBothClasses)
        for i in 0..<10 {
            buffer.add(LabelledInstance(entries: [Entry(classifier: 0, value: Double(i) / 10)], label: i % 5 == 0 ? 1 : 0))
        }
        #expect(buffer.hasBothClasses)
        #expect(buffer.positives.count == 2 && buffer.negatives.count == 3)
        #expect(Set(buffer.positives.map { $0.entries[0].value }) == [0.0, 0.5])
        #expect(Set(buffer.negatives.map { $0.entries[0].value }) == [Float(0.7), Float(0.8), Float(0.9)])
    }
}

@Suite struct PagedColumnTests {
    /// Against a plain array: appends across pages, rows of several elements, writes,
    /// removals from the front, and copies that must not see later writes.
    @Test func matchesAnArrayAndCopiesArePointInTime() {
        var column = PagedColumn<Int>(stride: 3, pageShift: 2)
        var model: [[Int]] = []
        var copies: [(PagedColumn<Int>, [[Int]])] = []
        var state: UInt64 = 9
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 33) % n
        }
        for step in 0..<5_000 {
            switch next(10) {
            case 0..<4:
                let v = next(1000)
                column.append(v)
                model.append([v, v, v])
            case 4..<7 where !model.isEmpty:
                let row = next(model.count), k = next(3), v = next(1000)
                if next(2) == 0 {
                    column[row, k] = v
                } else {
                    column.withMutableRow(row) { $0[k] = v }
                }
                model[row][k] = v
            case 7..<9:
                #expect(column.popFirst() == model.first?[0])
                if !model.isEmpty { model.removeFirst() }
            default:
                copies.append((column, model))
            }
            #expect(column.count == model.count, "step \(step)")
        }
        for (copy, then) in copies + [(column, model)] {
            #expect(copy.count == then.count)
            for row in 0..<then.count {
                #expect(copy.withRow(row) { Array($0) } == then[row])
                #expect(copy[row] == then[row][0])
            }
            #expect(Array(copy) == then.map { $0[0] })
        }
    }
}
