import CZeroMQ
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A CURVE key pair in Z85 text (40 characters each), as libzmq's CURVE options take them.
public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: String
    public let secretKey: String

    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A new random key pair (`zmq_curve_keypair`).
    public static func generate() throws(ZMQError) -> CurveKeyPair {
        var pub = [CChar](repeating: 0, count: 41)
        var sec = [CChar](repeating: 0, count: 41)
        if zmq_curve_keypair(&pub, &sec) != 0 { throw ZMQError.last("zmq_curve_keypair") }
        return CurveKeyPair(publicKey: z85String(pub), secretKey: z85String(sec))
    }

    /// The pair of a secret key, its public half derived (`zmq_curve_public`): a key
    /// file then only needs the secret.
    public init(secretKey: String) throws(CurveKeyError) {
        guard CurveKey.decode(secretKey) != nil else { throw CurveKeyError("not a 40-character Z85 key") }
        var pub = [CChar](repeating: 0, count: 41)
        if zmq_curve_public(&pub, secretKey) != 0 { throw CurveKeyError("zmq_curve_public failed") }
        self.init(publicKey: z85String(pub), secretKey: secretKey)
    }

    /// Reads a secret key file as written by `cfe keygen` and derives its public key.
    public static func load(secretKeyFile path: String) throws(CurveKeyError) -> CurveKeyPair {
        let text = try CurveKey.readOne(path)
        do { return try CurveKeyPair(secretKey: text) } catch { throw CurveKeyError("\(path): \(error.description)") }
    }

    /// Whether this libzmq was built with CURVE support.
    public static var isAvailable: Bool { zmq_has("curve") != 0 }
}

/// A key file that cannot be used, phrased for one log or exit line.
public struct CurveKeyError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// CURVE key text helpers: Z85 decoding and key files (one key per line, `#` comments).
public enum CurveKey {
    /// The 32 key bytes of a 40-character Z85 key, or nil if it is not one.
    public static func decode(_ z85: String) -> [UInt8]? {
        let utf8 = Array(z85.utf8)
        guard utf8.count == 40 else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        let ok = z85.withCString { zmq_z85_decode(&out, $0) != nil }
        return ok ? out : nil
    }

    /// The non-comment, non-blank lines of a key file.
    public static func readLines(_ path: String) throws(CurveKeyError) -> [String] {
        guard let fp = fopen(path, "r") else { throw CurveKeyError("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { fclose(fp) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, fp)
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
            if bytes.count > 16 << 20 { throw CurveKeyError("\(path): larger than 16 MiB") }
        }
        return String(decoding: bytes, as: UTF8.self)
            .split(whereSeparator: { $0 == "\n" || $0 == "\r" })
            .map { $0.trimmingCharacters(in: " \t") }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    /// The single key a key file holds (public or secret), checked to be Z85.
    public static func readOne(_ path: String) throws(CurveKeyError) -> String {
        let lines = try readLines(path)
        guard lines.count == 1 else { throw CurveKeyError("\(path): expected one key line, found \(lines.count)") }
        guard decode(lines[0]) != nil else { throw CurveKeyError("\(path): not a 40-character Z85 key") }
        return lines[0]
    }

    /// Reads an allow-list: a file of public keys (one per line), or a directory whose
    /// `*.pub` files each hold one. Every line must be a key: a typo is an error, not a
    /// silently shorter list.
    public static func readAllowList(_ path: String) throws(CurveKeyError) -> [[UInt8]] {
        if let dir = opendir(path) {
            var files: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name.hasSuffix(".pub") { files.append(path + "/" + name) }
            }
            closedir(dir)
            var keys: [[UInt8]] = []
            for file in files.sorted() {
                let text = try readOne(file)
                keys.append(decode(text)!)
            }
            return keys
        }
        var keys: [[UInt8]] = []
        for (i, line) in try readLines(path).enumerated() {
            guard let key = decode(line) else {
                throw CurveKeyError("\(path): key \(i + 1) is not a 40-character Z85 public key")
            }
            keys.append(key)
        }
        return keys
    }
}

private extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self[...]
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return String(s)
    }
}

/// The text of a NUL-terminated Z85 buffer filled by libzmq.
func z85String(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
