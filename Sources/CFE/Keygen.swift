import ArgumentParser
import Foundation
import Transport

/// `cfe keygen`: writes a CURVE key pair for the daemon or a client.
struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a CURVE key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub (public).",
        discussion: "Each file holds one line: the 40-character Z85 key. Give the .pub file to peers; keep the .key file private."
    )

    @Argument(help: "Path prefix of the two files.")
    var prefix: String

    @Flag(help: "Overwrite existing files.")
    var force = false

    func run() throws {
        guard CurveKeyPair.isAvailable else { throw ValidationError("this libzmq was built without CURVE") }
        let secretPath = prefix + ".key", publicPath = prefix + ".pub"
        for path in [secretPath, publicPath] where !force && FileManager.default.fileExists(atPath: path) {
            throw ValidationError("\(path) exists (use --force to overwrite)")
        }
        let pair = try CurveKeyPair.generate()
        // The secret file is created 0600 before anything is written into it.
        let fd = open(secretPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw ValidationError("cannot create \(secretPath): \(String(cString: strerror(errno)))") }
        fchmod(fd, 0o600)
        let line = Array((pair.secretKey + "\n").utf8)
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == line.count else { throw ValidationError("cannot write \(secretPath)") }
        try (pair.publicKey + "\n").write(toFile: publicPath, atomically: true, encoding: .utf8)
        print("wrote \(secretPath) (secret, 0600) and \(publicPath) (public: \(pair.publicKey))")
    }
}
