import ArgumentParser

/// `cfe`: command-line tools for operating cfensembled.
@main
struct CFECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cfe",
        abstract: "Tools for operating cfensembled.",
        subcommands: [Watch.self, Status.self, CheckpointCommand.self, RollbackCommand.self, Tail.self, Replay.self, Keygen.self]
    )
}
