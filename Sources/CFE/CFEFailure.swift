import ArgumentParser
import Foundation

/// A failure that is not a usage error: printed as one line on standard error, and the
/// process exits with `code` (docs/cli.md lists them). Usage errors stay ArgumentParser's
/// (usage text, exit 64).
struct CFEFailure: Error, CustomStringConvertible {
    /// The daemon answered but refused (`ok: false`), or a replay was not received.
    static let refused: Int32 = 1
    /// An input file that cannot be read or parsed (EX_DATAERR).
    static let badInput: Int32 = 65
    /// No daemon: its control socket does not exist, nothing answers, or it refused our
    /// CURVE key (EX_UNAVAILABLE).
    static let unavailable: Int32 = 69

    let code: Int32
    let description: String
}

extension CFEFailure {
    /// Prints the message and exits with the failure's code (ArgumentParser would print
    /// the usage text for an error it does not know).
    static func exit(_ failure: CFEFailure) -> Never {
        FileHandle.standardError.write(Data("cfe: error: \(failure.description)\n".utf8))
        Foundation.exit(failure.code)
    }
}
