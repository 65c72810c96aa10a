/// What the daemon asks of etcd (v3), through etcd's JSON gateway over HTTP(S): leases,
/// a create-if-absent transaction for the election, fenced writes, reads. A protocol so
/// that the election can be tested in process against an in-memory etcd.
protocol EtcdAPI: Sendable {
    /// A lease of `ttl` seconds; its ID.
    func grant(ttl: Int) throws(EtcdError) -> Int64
    /// Renews the lease; the TTL etcd granted again, 0 when the lease no longer exists.
    func keepAlive(_ lease: Int64) throws(EtcdError) -> Int
    func revoke(_ lease: Int64) throws(EtcdError)
    /// Creates `key` under `lease` unless it exists: `.won(revision)` (the key's create
    /// revision), or `.held` with the holder's value and create revision.
    func create(_ key: String, value: [UInt8], lease: Int64) throws(EtcdError) -> EtcdCreate
    /// The key's value and create revision, nil when absent.
    func get(_ key: String) throws(EtcdError) -> EtcdKeyValue?
    /// Every key under `prefix`.
    func list(prefix: String) throws(EtcdError) -> [EtcdKeyValue]
    /// Puts `key` (under `lease`, 0: none), only while `guardKey` has create revision
    /// `guardRevision` (the writer still holds the leadership it won then); false when not.
    func put(_ key: String, value: [UInt8], lease: Int64, ifCreated guardKey: String?, at guardRevision: Int64) throws(EtcdError) -> Bool
    /// Deletes `key` only while its create revision is `revision`.
    func delete(_ key: String, ifCreatedAt revision: Int64) throws(EtcdError)
}

enum EtcdCreate: Equatable {
    case won(revision: Int64)
    case held(EtcdKeyValue)
}

struct EtcdKeyValue: Equatable, Sendable {
    var key: String
    var value: [UInt8]
    var createRevision: Int64
    var lease: Int64
}

struct EtcdError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
