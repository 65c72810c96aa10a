import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// `cfensembled`: the daemon's command line (docs/cli.md).
@main
struct CFEnsembledCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cfensembled",
        abstract: "Online CF-Ensemble daemon: ensembles base-classifier predictions streamed over ZeroMQ.",
        discussion: """
        Precedence: built-in defaults < --config file < CFENSEMBLED_* environment < --set < dedicated flags.
        Exit status: 0 after a clean shutdown, 78 for bad configuration, 1 for other failures.
        """,
        version: cfensembledVersion
    )

    @Option(name: .long, help: "YAML configuration file (config/cfensembled.yaml documents every key).")
    var config: String?

    @Option(name: .customLong("input"), help: "Input endpoint (@bind, >connect); repeatable. Default @tcp://127.0.0.1:5555.")
    var inputs: [String] = []

    @Option(name: .customLong("input-type"), help: "Input socket type: sub or pull.")
    var inputType: String?

    @Option(name: .long, help: "Output PUB endpoint. Default @tcp://127.0.0.1:5556.")
    var output: String?

    @Option(name: .long, help: "Control endpoint (REQ clients). Default @ipc://$STATE_DIR/control.sock.")
    var control: String?

    @Option(name: .customLong("state-dir"), help: "Directory for checkpoints; restored from at start.")
    var stateDir: String?

    @Option(name: .customLong("set"), help: "Override a key: --set section.key=value; repeatable.")
    var sets: [String] = []

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?

    @Option(name: .long, help: "all (default), learner or scorer: see docs/scale-out.md (same as cluster.role).")
    var role: String?

    @Option(name: .customLong("check-config"), help: "Validate FILE, print the effective configuration and exit.")
    var checkConfig: String?

    @Option(name: .customLong("cost-floor"),
            help: "Measure the per-instance cost without sockets: N synthetic instances through the daemon's own path (decode to encode) on one thread, in a temporary state directory; print one JSON line and exit.")
    var costFloor: Int?

    @Option(name: .customLong("cost-floor-batch"), help: "Instances per message for --cost-floor (1: pred messages; more: pred_batch).")
    var costFloorBatch: Int = 1

    @Option(name: .customLong("cost-floor-classifiers"), help: "Classifiers per instance for --cost-floor.")
    var costFloorClassifiers: Int = 10

    @Option(name: .customLong("cost-floor-labels"), help: "Labels per instance for --cost-floor (0 to 1), for instances 1,000 earlier: learning on the same thread.")
    var costFloorLabels: Double = 0

    func run() async throws {
        var flags: [(String, String)] = []
        if !inputs.isEmpty { flags.append(("input.endpoints", inputs.joined(separator: ","))) }
        if let inputType { flags.append(("input.type", inputType)) }
        if let output { flags.append(("output.endpoint", output)) }
        if let control { flags.append(("control.endpoint", control)) }
        if let stateDir { flags.append(("state.dir", stateDir)) }
        if let logLevel { flags.append(("log.level", logLevel)) }
        if let role { flags.append(("cluster.role", role)) }

        var loader = ConfigLoader(file: checkConfig ?? config, environment: ProcessInfo.processInfo.environment,
                                  sets: sets, flags: flags)
        let effective: DaemonConfiguration
        do {
            effective = try loader.load()
        } catch {
            Self.fail("\(error)", code: 78)
        }

        // Connections cost descriptors: the soft limit goes up to the hard one at once.
        let nofile = DescriptorLimit.raiseToHard()
        if checkConfig != nil {
            // The same warning the running daemon logs: a misspelt variable is ignored.
            for name in loader.ignoredEnvironment {
                FileHandle.standardError.write(Data("cfensembled: warning: ignoring environment variable that names no configuration key: \(name)\n".utf8))
            }
            let wanted = SocketSetup.connectionLimits(effective).map(\.cap)
            if DescriptorLimit.fit(wanted, limit: nofile) != wanted {
                FileHandle.standardError.write(Data("cfensembled: warning: the open-file limit (\(nofile)) cannot hold input.max_connections and output.max_subscribers with \(DescriptorLimit.reserve) descriptors to spare; they would be lowered to \(DescriptorLimit.fit(wanted, limit: nofile)) (raise LimitNOFILE)\n".utf8))
            }
            print("# effective configuration (defaults < \(checkConfig!) < environment < --set < flags)")
            print(ConfigLoader.render(effective), terminator: "")
            return
        }

        // glibc raises its mmap threshold after large blocks are freed; the per-update
        // temporaries (the replay buffer's rows, ~200 KB) then come from the heap, between
        // long-lived pending entries, and the heap can never shrink: RSS grew ~4 MB/s in a
        // soak. A fixed threshold keeps large blocks in mmap (flat at 43 MB in the same run).
        #if os(Linux)
        _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD, <malloc.h> */, 128 * 1024)
        #endif

        if let costFloor {
            guard costFloor >= 1, (1...65_536).contains(costFloorBatch), (1...64).contains(costFloorClassifiers),
                  costFloorLabels >= 0 && costFloorLabels <= 1 else {
                Self.fail("--cost-floor needs N >= 1, --cost-floor-batch in 1...65536, --cost-floor-classifiers in 1...64 and --cost-floor-labels in [0, 1]", code: 64)
            }
            var quiet = Logger(label: "cfensembled")
            quiet.logLevel = .error
            do {
                let result = try CostFloor(config: effective, logger: quiet)
                    .run(count: costFloor, batch: costFloorBatch, classifiers: costFloorClassifiers, labels: costFloorLabels)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(result), as: UTF8.self))
            } catch {
                Self.fail("cost floor: \(error)", code: 1)
            }
            return
        }

        let level = effective.logLevelValue ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "cfensembled")
        logger.logLevel = level
        for name in loader.ignoredEnvironment {
            logger.warning("ignoring environment variable that names no configuration key", metadata: ["variable": "\(name)"])
        }

        var metricsServer: MetricsServer?
        if effective.metricsEnabled {
            let registry = PrometheusCollectorRegistry()
            var factory = PrometheusMetricsFactory(registry: registry)
            factory.durationHistogramBuckets = [
                "cfensembled_scoring_duration_seconds": [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 20000].map { Duration.microseconds($0) },
                "cfensembled_model_update_duration_seconds": [0.1, 0.5, 1, 2, 5, 10, 50, 100, 500, 1000].map { Duration.microseconds(Int64($0 * 1000)) },
            ]
            MetricsSystem.bootstrap(factory)
            do {
                let limits = MetricsServer.Limits(maxConnections: effective.metricsMaxConnections, idleSeconds: effective.metricsIdleSeconds,
                                                  maxConnectionSeconds: effective.metricsConnectionDeadlineSeconds)
                metricsServer = try MetricsServer(listen: effective.metricsListen, registry: registry, logger: logger, limits: limits)
            } catch {
                Self.fail(error.description, code: 78)
            }
        }
        let loop: EventLoop
        do {
            loop = try EventLoop(config: effective, logger: logger)
        } catch {
            Self.fail(error.description, code: 78)
        }
        if let metricsServer {
            do {
                let url = try await metricsServer.start()
                logger.info("metrics endpoint ready", metadata: ["url": "\(url)"])
            } catch {
                Self.fail("\(error)", code: 78)
            }
        }
        // The metrics server first: the group shuts services down in reverse order, so it
        // is still serving while the loop writes its final checkpoint.
        let group = ServiceGroup(configuration: .init(
            services: (metricsServer.map {
                // A failed metrics endpoint is logged by the server and does not stop scoring.
                [ServiceGroupConfiguration.ServiceConfiguration(service: $0, successTerminationBehavior: .ignore)]
            } ?? []) + [.init(service: DaemonService(loop: loop, reload: { [loader] in
                var again = loader
                let config = try again.load()
                guard config.logLevelValue != nil else { throw ConfigError("log.level: invalid") }
                return config
            }, logger: logger))],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
        do {
            try await group.run()
        } catch {
            Self.fail("\(error)", code: 1)
        }
    }

    static func fail(_ message: String, code: Int32) -> Never {
        // One line, whatever the underlying error text looks like.
        let line = message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: "; ")
        FileHandle.standardError.write(Data("cfensembled: error: \(line)\n".utf8))
        Foundation.exit(code)
    }
}

#if os(Linux)
/// glibc's `mallopt` (declared in <malloc.h>, which the Glibc module does not export).
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif
