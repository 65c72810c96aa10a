import ArgumentParser

/// `cfe-loadgen`: the throughput benchmark's two halves, a do-nothing relay (the
/// ceiling: one ZeroMQ hop) and a load generator that drives it or the daemon.
@main
struct LoadGenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cfe-loadgen",
        abstract: "Throughput and latency benchmark tools (bench/throughput/run.sh drives them).",
        subcommands: [Relay.self, Load.self, Feed.self]
    )
}
