import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL

/// The JSON gateway client (`/v3/...` POSTs; keys and values in base64, 64-bit integers
/// as strings) over AsyncHTTPClient, with etcd's TLS (a CA, a client certificate) and
/// auth (user and password, for a token) when configured. Synchronous with a deadline:
/// it runs on the election's own thread, never on the event loop or Swift's pool.
/// Several endpoints: the next one is tried when one fails.
final class EtcdClient: EtcdAPI, @unchecked Sendable {
    private let endpoints: [URL]
    private let timeout: Double
    private let http: HTTPClient
    private let credentials: (user: String, password: String)?
    /// Guarded by `lock`: the endpoint that answered last, the auth token.
    private let lock = NSLock()
    private var current = 0
    private var token: String?

    init(endpoints: [String], timeout: Double, username: String = "", password: String = "",
         caFile: String = "", certFile: String = "", keyFile: String = "") throws(EtcdError) {
        var urls: [URL] = []
        for e in endpoints {
            guard let u = URL(string: e), let s = u.scheme, ["http", "https"].contains(s), u.host != nil else {
                throw EtcdError("cluster.etcd_endpoints: expected http:// or https:// URLs, got '\(e)'")
            }
            urls.append(u)
        }
        guard !urls.isEmpty else { throw EtcdError("cluster.etcd_endpoints is empty") }
        self.endpoints = urls
        self.timeout = timeout
        credentials = username.isEmpty ? nil : (username, password)
        var tls = TLSConfiguration.makeClientConfiguration()
        if !caFile.isEmpty { tls.trustRoots = .file(caFile) }
        if !certFile.isEmpty { tls.certificateChain = (try? NIOSSLCertificate.fromPEMFile(certFile))?.map { .certificate($0) } ?? [] }
        if !keyFile.isEmpty { tls.privateKey = (try? NIOSSLPrivateKey(file: keyFile, format: .pem)).map { .privateKey($0) } }
        var c = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow,
                                         timeout: .init(connect: .milliseconds(Int64(timeout * 1000)), read: .milliseconds(Int64(timeout * 1000))))
        c.connectionPool = .init(idleTimeout: .seconds(30))
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: c)
    }

    // MARK: EtcdAPI

    func grant(ttl: Int) throws(EtcdError) -> Int64 {
        let r = try call("/v3/lease/grant", ["TTL": "\(ttl)"])
        guard let id = Self.int(r["ID"]), id != 0 else { throw EtcdError("lease grant: no ID in \(Self.text(r))") }
        return id
    }

    func keepAlive(_ lease: Int64) throws(EtcdError) -> Int {
        let r = try call("/v3/lease/keepalive", ["ID": "\(lease)"])
        // One answer of the stream: {"result": {...}}; TTL is omitted (0) for a lease that is gone.
        let result = r["result"] as? [String: Any] ?? r
        return Int(Self.int(result["TTL"]) ?? 0)
    }

    func revoke(_ lease: Int64) throws(EtcdError) {
        _ = try call("/v3/lease/revoke", ["ID": "\(lease)"])
    }

    func create(_ key: String, value: [UInt8], lease: Int64) throws(EtcdError) -> EtcdCreate {
        let k = Self.b64(key)
        let r = try call("/v3/kv/txn", [
            "compare": [["target": "CREATE", "key": k, "result": "EQUAL", "createRevision": "0"]],
            "success": [["requestPut": ["key": k, "value": Data(value).base64EncodedString(), "lease": "\(lease)"]]],
            "failure": [["requestRange": ["key": k]]],
        ])
        if r["succeeded"] as? Bool == true {
            guard let header = r["header"] as? [String: Any], let rev = Self.int(header["revision"]) else {
                throw EtcdError("txn: no revision in \(Self.text(r))")
            }
            return .won(revision: rev)
        }
        let responses = r["responses"] as? [[String: Any]] ?? []
        let range = responses.first?["response_range"] as? [String: Any] ?? [:]
        guard let kv = (range["kvs"] as? [[String: Any]])?.first.flatMap(Self.keyValue) else {
            // Deleted between the compare and now: the caller campaigns again.
            throw EtcdError("txn: the key was held but is gone")
        }
        return .held(kv)
    }

    func get(_ key: String) throws(EtcdError) -> EtcdKeyValue? {
        let r = try call("/v3/kv/range", ["key": Self.b64(key)])
        return (r["kvs"] as? [[String: Any]])?.first.flatMap(Self.keyValue)
    }

    func list(prefix: String) throws(EtcdError) -> [EtcdKeyValue] {
        var end = Array(prefix.utf8)
        end[end.count - 1] &+= 1
        let r = try call("/v3/kv/range", ["key": Self.b64(prefix), "range_end": Data(end).base64EncodedString()])
        return (r["kvs"] as? [[String: Any]] ?? []).compactMap(Self.keyValue)
    }

    func put(_ key: String, value: [UInt8], lease: Int64, ifCreated guardKey: String?, at guardRevision: Int64) throws(EtcdError) -> Bool {
        var put: [String: Any] = ["key": Self.b64(key), "value": Data(value).base64EncodedString()]
        if lease != 0 { put["lease"] = "\(lease)" }
        var body: [String: Any] = ["success": [["requestPut": put]]]
        if let guardKey {
            body["compare"] = [["target": "CREATE", "key": Self.b64(guardKey), "result": "EQUAL", "createRevision": "\(guardRevision)"]]
        }
        return try call("/v3/kv/txn", body)["succeeded"] as? Bool ?? false
    }

    func delete(_ key: String, ifCreatedAt revision: Int64) throws(EtcdError) {
        let k = Self.b64(key)
        _ = try call("/v3/kv/txn", [
            "compare": [["target": "CREATE", "key": k, "result": "EQUAL", "createRevision": "\(revision)"]],
            "success": [["requestDeleteRange": ["key": k]]],
        ])
    }

    // MARK: HTTP

    /// POSTs `body` to `path`, trying each endpoint once from the last that answered.
    private func call(_ path: String, _ body: [String: Any]) throws(EtcdError) -> [String: Any] {
        let start = lock.withLock { current }
        var last = EtcdError("no etcd endpoint")
        for k in 0..<endpoints.count {
            let index = (start + k) % endpoints.count
            do {
                let r = try post(endpoints[index], path, body, retryAuth: true)
                lock.withLock { current = index }
                return r
            } catch let a as Answered {
                throw a.error
            } catch let e as EtcdError {
                last = e
            } catch {
                last = EtcdError("\(error)")
            }
        }
        throw last
    }

    private func post(_ base: URL, _ path: String, _ body: [String: Any], retryAuth: Bool) throws -> [String: Any] {
        if credentials != nil, lock.withLock({ token }) == nil { try authenticate(base) }
        let (status, answer) = try send(base, path, body, token: lock.withLock { token })
        if status == 401 || (answer["error"] as? String)?.contains("token") == true, retryAuth, credentials != nil {
            lock.withLock { token = nil }
            return try post(base, path, body, retryAuth: false)
        }
        guard (200..<300).contains(status) else {
            // etcd answered: a request error (not a reason to try another member).
            let message = answer["message"] as? String ?? answer["error"] as? String ?? Self.text(answer)
            throw Answered(error: EtcdError("\(path): HTTP \(status): \(message)"))
        }
        return answer
    }

    private func authenticate(_ base: URL) throws {
        guard let credentials else { return }
        let (status, answer) = try send(base, "/v3/auth/authenticate", ["name": credentials.user, "password": credentials.password], token: nil)
        guard status == 200, let t = answer["token"] as? String else {
            throw Answered(error: EtcdError("etcd authentication as '\(credentials.user)' failed: HTTP \(status) \(answer["message"] as? String ?? "")"))
        }
        lock.withLock { token = t }
    }

    private func send(_ base: URL, _ path: String, _ body: [String: Any], token: String?) throws -> (Int, [String: Any]) {
        var request = try HTTPClient.Request(url: base.appendingPathComponent(String(path.dropFirst())).absoluteString, method: .POST)
        request.headers.add(name: "Content-Type", value: "application/json")
        if let token { request.headers.add(name: "Authorization", value: token) }
        request.body = .bytes(try JSONSerialization.data(withJSONObject: body))
        let response: HTTPClient.Response
        do {
            response = try http.execute(request: request, deadline: .now() + .milliseconds(Int64(timeout * 1000))).wait()
        } catch {
            throw EtcdError("\(base.absoluteString): \(error)")
        }
        let data = response.body.map { Data($0.readableBytesView) } ?? Data()
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return (Int(response.status.code), object)
    }

    deinit { try? http.syncShutdown() }

    /// An error etcd itself answered with (another endpoint would answer the same).
    private struct Answered: Error {
        let error: EtcdError
    }

    // MARK: JSON

    private static func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }

    private static func int(_ v: Any?) -> Int64? {
        if let s = v as? String { return Int64(s) }
        if let n = v as? NSNumber { return n.int64Value }
        return nil
    }

    private static func keyValue(_ kv: [String: Any]) -> EtcdKeyValue? {
        guard let k = (kv["key"] as? String).flatMap({ Data(base64Encoded: $0) }) else { return nil }
        let v = (kv["value"] as? String).flatMap { Data(base64Encoded: $0) } ?? Data()
        return EtcdKeyValue(key: String(decoding: k, as: UTF8.self), value: Array(v),
                            createRevision: int(kv["create_revision"]) ?? 0, lease: int(kv["lease"]) ?? 0)
    }

    private static func text(_ o: [String: Any]) -> String {
        (try? JSONSerialization.data(withJSONObject: o)).map { String(decoding: $0.prefix(300), as: UTF8.self) } ?? "?"
    }
}
