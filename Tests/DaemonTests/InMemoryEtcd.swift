import Foundation
import Synchronization
@testable import Daemon

/// A clock the test moves.
final class VirtualClock: Sendable {
    private let time = Mutex(100.0)
    var now: Double { time.withLock { $0 } }
    func advance(_ seconds: Double) { time.withLock { $0 += seconds } }
    var read: @Sendable () -> Double { { self.now } }
}

/// etcd's semantics as the election uses them, in memory and on a virtual clock: leases
/// expire `ttl` after their grant or last renewal *as etcd receives it*, and take their
/// keys with them; revisions count every write. `down` makes every call fail;
/// `loseAnswerOf` applies the next call of that name and then fails it (an answer lost
/// on the way back).
final class InMemoryEtcd: EtcdAPI, @unchecked Sendable {
    private struct Lease { var ttl: Int; var expiry: Double }
    private let lock = NSLock()
    private let clock: VirtualClock
    private var leases: [Int64: Lease] = [:]
    private var keys: [String: EtcdKeyValue] = [:]
    private var revision: Int64 = 1
    private var nextLease: Int64 = 7_000
    var down = false
    var loseAnswerOf: String?

    init(clock: VirtualClock) { self.clock = clock }

    private func call<R>(_ name: String = #function, _ body: () throws(EtcdError) -> R) throws(EtcdError) -> R {
        lock.lock()
        defer { lock.unlock() }
        if down { throw EtcdError("connection refused") }
        expire()
        let r = try body()
        if let lose = loseAnswerOf, name.hasPrefix(lose) {
            loseAnswerOf = nil
            throw EtcdError("no answer within 1 s")
        }
        return r
    }

    private func expire() {
        let now = clock.now
        for (id, l) in leases where l.expiry <= now {
            leases[id] = nil
            for (k, kv) in keys where kv.lease == id { keys[k] = nil; revision += 1 }
        }
    }

    /// Test access: the key as etcd holds it now.
    func value(_ key: String) -> EtcdKeyValue? { lock.withLock { expire(); return keys[key] } }
    func remove(_ key: String) { lock.withLock { keys[key] = nil; revision += 1 } }

    func grant(ttl: Int) throws(EtcdError) -> Int64 {
        try call { () throws(EtcdError) -> Int64 in
            nextLease += 1
            leases[nextLease] = Lease(ttl: ttl, expiry: clock.now + Double(ttl))
            return nextLease
        }
    }

    func keepAlive(_ lease: Int64) throws(EtcdError) -> Int {
        try call { () throws(EtcdError) -> Int in
            guard var l = leases[lease] else { return 0 }
            l.expiry = clock.now + Double(l.ttl)
            leases[lease] = l
            return l.ttl
        }
    }

    func revoke(_ lease: Int64) throws(EtcdError) {
        try call { () throws(EtcdError) in
            leases[lease] = nil
            for (k, kv) in keys where kv.lease == lease { keys[k] = nil }
        }
    }

    func create(_ key: String, value: [UInt8], lease: Int64) throws(EtcdError) -> EtcdCreate {
        try call { () throws(EtcdError) -> EtcdCreate in
            if let kv = keys[key] { return .held(kv) }
            guard lease == 0 || leases[lease] != nil else { throw EtcdError("requested lease not found") }
            revision += 1
            keys[key] = EtcdKeyValue(key: key, value: value, createRevision: revision, lease: lease)
            return .won(revision: revision)
        }
    }

    func get(_ key: String) throws(EtcdError) -> EtcdKeyValue? { try call { () throws(EtcdError) in keys[key] } }

    func list(prefix: String) throws(EtcdError) -> [EtcdKeyValue] {
        try call { () throws(EtcdError) in keys.values.filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key } }
    }

    func put(_ key: String, value: [UInt8], lease: Int64, ifCreated guardKey: String?, at guardRevision: Int64) throws(EtcdError) -> Bool {
        try call { () throws(EtcdError) -> Bool in
            if let guardKey, (keys[guardKey]?.createRevision ?? 0) != guardRevision { return false }
            guard lease == 0 || leases[lease] != nil else { throw EtcdError("requested lease not found") }
            revision += 1
            let created = keys[key]?.createRevision ?? revision
            keys[key] = EtcdKeyValue(key: key, value: value, createRevision: created, lease: lease)
            return true
        }
    }

    func delete(_ key: String, ifCreatedAt revision: Int64) throws(EtcdError) {
        try call { () throws(EtcdError) in
            if keys[key]?.createRevision == revision { keys[key] = nil; self.revision += 1 }
        }
    }
}
