// swift-tools-version:6.1
// Micro-benchmarks of the hot path with ordo-one/benchmark (wall clock and malloc counts).
// A separate package so that the product's build and CI do not compile the benchmark
// library. Run: cd Benchmarks && swift package benchmark
import PackageDescription

let package = Package(
    name: "cfensembled-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "cfensembled", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "Hotpath",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Online", package: "cfensembled"),
                .product(name: "Transport", package: "cfensembled"),
            ],
            path: "Benchmarks/Hotpath",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
