import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle

/// Serves the Prometheus registry at `GET /metrics` (Hummingbird on SwiftNIO), as a
/// lifecycle service. What a client can make it hold is bounded (docs/security.md):
/// `Limits` caps the header size, the connections open at once (more wait in the
/// kernel's backlog, costing no descriptor), the idle time and the life of a
/// connection. It runs on one event-loop thread of its own, never on the threads that
/// score or that handle signals.
final class MetricsServer: Service, @unchecked Sendable {
    struct Limits: Sendable {
        /// Bytes of one header field, and of all of them.
        var maxHeaderFieldBytes = 8 << 10
        var maxHeaderBytes = 16 << 10
        var maxHeaderFields = 100
        /// Connections open at once.
        var maxConnections = 16
        /// A connection idle this long is closed...
        var idleSeconds = 10.0
        /// ...and every connection after this long, busy or not (a client that trickles
        /// a request byte by byte holds one no longer).
        var maxConnectionSeconds = 30.0
    }

    let host: String
    let port: Int
    let limits: Limits
    private let registry: PrometheusCollectorRegistry
    private let logger: Logger
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var running: Task<Void, Error>?
    /// The HTTP application's own service group: shut down gracefully with the daemon
    /// (a cancelled Hummingbird server logs an error).
    private var appGroup: ServiceGroup?

    /// Parses `HOST:PORT` (IPv4 host); binds in `start`.
    init(listen: String, registry: PrometheusCollectorRegistry, logger: Logger, limits: Limits = Limits()) throws(ConfigError) {
        self.logger = logger
        self.limits = limits
        guard let colon = listen.lastIndex(of: ":"), let port = UInt16(listen[listen.index(after: colon)...]) else {
            throw ConfigError("metrics.listen: expected HOST:PORT (e.g. 127.0.0.1:9464) or off, got \"\(listen)\"")
        }
        host = String(listen[..<colon])
        guard host.split(separator: ".").count == 4, host.split(separator: ".").allSatisfy({ UInt8($0) != nil }) else {
            throw ConfigError("metrics.listen: \"\(host)\" is not an IPv4 address")
        }
        self.port = Int(port)
        self.registry = registry
    }

    /// Binds and starts serving; returns the URL, or throws a configuration error when
    /// the address cannot be used.
    func start() async throws -> String {
        let router = Router()
        router.get("metrics") { [registry] _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        let (bound, boundContinuation) = AsyncStream<String>.makeStream()
        let lifetime = limits.maxConnectionSeconds
        let http = HTTP1Channel.Configuration(
            additionalChannelHandlers: [ConnectionDeadline(seconds: lifetime)],
            idleTimeout: .milliseconds(Int64(limits.idleSeconds * 1000)),
            httpDecoderConfiguration: .init(maxHeaderFieldSize: limits.maxHeaderFieldBytes, maxHeaderListSize: limits.maxHeaderBytes,
                                            maxHeaderFieldCount: limits.maxHeaderFields))
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .warning)
        let app = Application(
            router: router, server: .http1(configuration: http),
            configuration: .init(address: .hostname(host, port: port), serverName: nil, backlog: 64,
                                 availableConnectionsDelegate: .maximum(limits.maxConnections, logger: quiet)),
            onServerRunning: { channel in
                let address = channel.localAddress
                boundContinuation.yield("\(address?.ipAddress ?? "?"):\(address?.port ?? 0)")
                boundContinuation.finish()
            },
            eventLoopGroupProvider: .shared(group), logger: quiet)
        let appGroup = ServiceGroup(configuration: .init(services: [app], logger: quiet))
        self.appGroup = appGroup
        let task = Task {
            defer { boundContinuation.finish() }
            try await appGroup.run()
        }
        running = task
        // Either the server reports it listens, or its task ends (it could not bind).
        let timeout = Task {
            try await Task.sleep(for: .seconds(5))
            boundContinuation.finish()
        }
        defer { timeout.cancel() }
        var iterator = bound.makeAsyncIterator()
        if let address = await iterator.next() { return "http://\(address)/metrics" }
        task.cancel()
        if case .failure(let why) = await task.result { throw ConfigError("metrics.listen \(host):\(port): cannot listen: \(why)") }
        throw ConfigError("metrics.listen \(host):\(port): cannot listen (no answer within 5 s)")
    }

    /// Serves until shutdown. If the HTTP server fails before that, the error is logged
    /// and this returns: scoring goes on without metrics (the service group ignores the
    /// return), and the scrape target's `up` goes to 0.
    func run() async throws {
        await withTaskCancellationOrGracefulShutdownHandler { [logger, host, port] in
            guard let result = await running?.result else { return }
            Self.report(result, endpoint: "\(host):\(port)", shuttingDown: Task.isShuttingDownGracefully || Task.isCancelled,
                        logger: logger)
        } onCancelOrGracefulShutdown: { [appGroup, running] in
            // Graceful first; clients that hold connections open get one second.
            Task {
                await appGroup?.triggerGracefulShutdown()
                try? await Task.sleep(for: .seconds(1))
                running?.cancel()
            }
        }
        try? await group.shutdownGracefully()
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

/// Closes its connection a fixed time after it opened, whatever the client does.
final class ConnectionDeadline: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny
    let seconds: Double

    init(seconds: Double) { self.seconds = seconds }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        context.eventLoop.scheduleTask(in: .milliseconds(Int64(seconds * 1000))) { channel.close(promise: nil) }
    }
}
