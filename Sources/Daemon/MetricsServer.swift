import FlyingFox
import Foundation
import Logging
import Prometheus
import ServiceLifecycle

/// Serves the Prometheus registry at `GET /metrics` (FlyingFox), as a lifecycle service.
final class MetricsServer: Service, @unchecked Sendable {
    let server: HTTPServer
    let host: String
    let port: UInt16
    private let registry: PrometheusCollectorRegistry
    private var running: Task<Void, Error>?

    /// Parses `HOST:PORT` (IPv4 host) and prepares the server; does not bind yet.
    init(listen: String, registry: PrometheusCollectorRegistry) throws(ConfigError) {
        guard let colon = listen.lastIndex(of: ":"), let port = UInt16(listen[listen.index(after: colon)...]) else {
            throw ConfigError("metrics.listen: expected HOST:PORT (e.g. 127.0.0.1:9464) or off, got \"\(listen)\"")
        }
        host = String(listen[..<colon])
        self.port = port
        self.registry = registry
        do {
            server = HTTPServer(address: try .inet(ip4: host, port: port), logger: .disabled)
        } catch {
            throw ConfigError("metrics.listen: \"\(host)\" is not an IPv4 address (\(error))")
        }
    }

    /// Binds and starts serving; throws a configuration error when the address cannot be used.
    func start() async throws -> String {
        await server.appendRoute("GET /metrics") { [registry] _ in
            HTTPResponse(statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                         body: Data(registry.emitToBuffer()))
        }
        let task = Task { [server] in try await server.run() }
        running = task
        do {
            try await server.waitUntilListening(timeout: 3)
        } catch {
            task.cancel()
            if case .failure(let why) = await task.result { throw ConfigError("metrics.listen \(host):\(port): cannot listen: \(why)") }
            throw ConfigError("metrics.listen \(host):\(port): cannot listen: \(error)")
        }
        var bound = "\(host):\(port)"
        if case .ip4(let ip, let p) = await server.listeningAddress { bound = "\(ip):\(p)" }
        return "http://\(bound)/metrics"
    }

    func run() async throws {
        await withTaskCancellationOrGracefulShutdownHandler {
            _ = await running?.result
        } onCancelOrGracefulShutdown: { [server] in
            Task { await server.stop(timeout: 0) }
        }
    }
}
