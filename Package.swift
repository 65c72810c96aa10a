// swift-tools-version:6.1
import PackageDescription

// Release builds of the per-message code skip Swift's run-time exclusivity checks
// (compile-time checks stay): the engine is confined to one thread, and the checks were
// about 10% of the learner's profile (swift_beginAccess and its thread-local lookups).
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "cfensembled",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cfensembled", targets: ["Daemon"]),
        .executable(name: "cfe", targets: ["CFE"]),
        .executable(name: "cfe-loadgen", targets: ["LoadGen"]),
        .library(name: "Online", targets: ["Online"]),
        .library(name: "Transport", targets: ["Transport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
    ],
    targets: [
        // libzmq, as Debian's libzmq3-dev ships it (zmq.h in /usr/include, so no
        // pkg-config: libzmq.pc's Cflags carry flags SwiftPM prohibits and warns about).
        .systemLibrary(
            name: "CZeroMQ",
            providers: [.apt(["libzmq3-dev"])]
        ),
        // The learning core: pure Swift, no I/O, no dependencies.
        .target(
            name: "Online",
            swiftSettings: hotPath
        ),
        // Message bodies shared by the daemon and cfe: health, alert, error, control
        // replies, model states (Codable both ways).
        .target(
            name: "Wire",
            dependencies: ["Online"]
        ),
        // ZeroMQ sockets and the wire codecs of docs/protocol.md.
        .target(
            name: "Transport",
            dependencies: ["CZeroMQ"],
            swiftSettings: hotPath
        ),
        // The cfensembled executable: configuration, wiring, lifecycle, state.
        .executableTarget(
            name: "Daemon",
            dependencies: [
                "Online",
                "Transport",
                "Wire",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: hotPath
        ),
        // The cfe operator tool: watch, status, checkpoint, rollback, tail, replay, keygen,
        // alertmanager.
        .executableTarget(
            name: "CFE",
            dependencies: [
                "Online",
                "Transport",
                "Wire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // bench/throughput: a do-nothing relay and a load generator (cfe-loadgen).
        .executableTarget(
            name: "LoadGen",
            dependencies: [
                "CZeroMQ",
                "Transport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // libFuzzer over the input decoder (scripts/fuzz.sh builds it with -sanitize=fuzzer).
        .target(name: "CFuzzerShim"),
        .executableTarget(name: "DecoderFuzz", dependencies: ["Transport", "CFuzzerShim"]),
        // What several test targets share: a seeded generator, a healthy synthetic stream.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "OnlineTests", dependencies: ["Online", "TestSupport"]),
        .testTarget(name: "TransportTests", dependencies: ["Transport"]),
        // The daemon's parts in process: its core on a manual clock, the control server,
        // the checkpoint coordinator, the threads' order.
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "Online", "Transport", "Wire", "TestSupport"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["Daemon", "CFE", "Transport", "Online", "Wire", "TestSupport",
                           .product(name: "InMemoryLogging", package: "swift-log")]
        ),
    ]
)
