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
    private let logger: Logger
    private var running: Task<Void, Error>?

    /// Parses `HOST:PORT` (IPv4 host) and prepares the server; does not bind yet.
    init(listen: String, registry: PrometheusCollectorRegistry, logger: Logger) throws(ConfigError) {
        self.logger = logger
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

    /// Serves until shutdown. If the HTTP server fails before that, the error is logged
    /// and this returns: scoring goes on without metrics (the service group ignores the
    /// return), and the scrape target's `up` goes to 0.
    func run() async throws {
        await withTaskCancellationOrGracefulShutdownHandler { [logger, host, port] in
            guard let result = await running?.result else { return }
            Self.report(result, endpoint: "\(host):\(port)", shuttingDown: Task.isShuttingDownGracefully || Task.isCancelled,
                        logger: logger)
        } onCancelOrGracefulShutdown: { [server] in
            Task { await server.stop(timeout: 0) }
        }
    }

    /// Logs how the HTTP server ended, unless it was stopped for shutdown.
    static func report(_ result: Result<Void, Error>, endpoint: String, shuttingDown: Bool, logger: Logger) {
        if shuttingDown { return }
        switch result {
        case .success:
            logger.error("metrics endpoint stopped serving; the daemon goes on without it", metadata: ["listen": "\(endpoint)"])
        case .failure(let error) where error is CancellationError:
            return
        case .failure(let error):
            logger.error("metrics endpoint failed; the daemon goes on without it: \(error)", metadata: ["listen": "\(endpoint)"])
        }
    }
}
