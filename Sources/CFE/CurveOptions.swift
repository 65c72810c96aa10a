import ArgumentParser
import Transport

/// `--curve-key` and `--server-key`: connect as a CURVE client to a daemon that runs
/// with `security.curve_secret_key_file` (its allow-list must hold this client's public key).
struct CurveOptions: ParsableArguments {
    @Option(name: .customLong("curve-key"), help: "This client's CURVE secret key file (from 'cfe keygen').")
    var secretKeyFile: String?

    @Option(name: .customLong("server-key"), help: "The daemon's CURVE public key file.")
    var serverKeyFile: String?

    func validate() throws {
        if (secretKeyFile == nil) != (serverKeyFile == nil) {
            throw ValidationError("--curve-key and --server-key go together")
        }
    }

    /// Configures `socket` as a CURVE client if the options are given.
    func apply(to socket: ZMQSocket) throws {
        guard let secretKeyFile, let serverKeyFile else { return }
        do {
            let keys = try CurveKeyPair.load(secretKeyFile: secretKeyFile)
            let server = try CurveKey.readOne(serverKeyFile)
            try socket.makeCurveClient(serverKey: server, keys: keys)
        } catch let error as CurveKeyError {
            throw ValidationError(error.description)
        }
    }
}
