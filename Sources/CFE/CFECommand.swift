import ArgumentParser
import Foundation

/// `cfe`: command-line tools for operating cfensembled.
@main
struct CFECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cfe",
        abstract: "Tools for operating cfensembled.",
        discussion: """
        Exit status: 0 success; 1 the daemon refused the request (ok: false) or did not receive a replay; \
        64 usage error; 65 an input file that cannot be read or parsed; 69 no daemon (control socket missing, \
        nothing answering, or the CURVE key refused).
        """,
        subcommands: [Watch.self, Status.self, CheckpointCommand.self, RollbackCommand.self, PinReferenceCommand.self, Tail.self, Replay.self, Keygen.self,
                      AlertmanagerCommand.self]
    )

    /// Runs the chosen command; failures that are not usage errors print one line and
    /// exit with their own status (no usage text).
    static func main() {
        // A parent that ignores or blocks SIGTERM or SIGINT (a supervisor, a test runner
        // using dispatch signal sources) passes that on through exec: the long-running
        // tools (watch, tail, alertmanager) must still stop when told.
        signal(SIGTERM, SIG_DFL)
        signal(SIGINT, SIG_DFL)
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let failure as CFEFailure {
            CFEFailure.exit(failure)
        } catch {
            exit(withError: error)
        }
    }
}
