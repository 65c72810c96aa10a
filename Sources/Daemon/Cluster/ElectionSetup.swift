import Foundation
import Logging
import Transport

/// Builds the etcd side of a cluster from the configuration: the client, and the
/// learner's campaign or the scorer's watch, each on its own thread.
struct ElectionSetup {
    let elector: Elector?
    let watcher: LeaderWatcher?
    let thread: ClusterThread

    init(config: DaemonConfiguration, logger: Logger) throws(StartupError) {
        var password = ""
        if !config.etcdPasswordFile.isEmpty {
            guard let p = try? String(contentsOfFile: config.etcdPasswordFile, encoding: .utf8) else {
                throw StartupError("cluster.etcd_password_file: cannot read \(config.etcdPasswordFile)")
            }
            password = p.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let client: EtcdClient
        do {
            // Half the lease: a slow answer (a loaded host, a TLS handshake) still counts, and
            // safety does not depend on it (a leader's deadline runs from when a renewal was
            // sent, not from its answer).
            client = try EtcdClient(endpoints: config.etcdEndpoints, timeout: max(1, Double(config.etcdTTLSeconds) / 2),
                                    username: config.etcdUsername, password: password,
                                    caFile: config.etcdCAFile, certFile: config.etcdCertFile, keyFile: config.etcdKeyFile)
        } catch {
            throw StartupError(error.description)
        }
        let clock: @Sendable () -> Double = { Clock.monotonic() }
        if config.role == .learner {
            let address = try Self.address(config)
            let settings = Elector.Settings(name: address.name, prefix: config.etcdPrefix, ttl: config.etcdTTLSeconds,
                                            poll: config.etcdPollSeconds)
            let e = Elector(settings: settings, api: client, address: address, clock: clock, logger: logger)
            elector = e
            watcher = nil
            thread = ClusterThread(name: "election", clock: clock, step: { e.step() }, finish: { e.resign() })
            logger.info("election through etcd", metadata: ["name": "\(address.name)", "endpoints": "\(config.etcdEndpoints.joined(separator: ","))",
                                                             "ttl_s": "\(config.etcdTTLSeconds)"])
        } else {
            let w = LeaderWatcher(api: client, prefix: config.etcdPrefix, poll: config.etcdPollSeconds, clock: clock, logger: logger)
            watcher = w
            elector = nil
            thread = ClusterThread(name: "leader-watch", clock: clock, step: { w.step() })
        }
    }

    /// Where scorers reach this learner: its bound endpoints, with `cluster.advertise_host`
    /// for tcp:// ones (required when they bind a wildcard address).
    static func address(_ config: DaemonConfiguration) throws(StartupError) -> LearnerAddress {
        func advertised(_ text: String, key: String) throws(StartupError) -> String {
            guard let e = try? Endpoint(parsing: text, defaultMode: .bind) else { throw StartupError("\(key): cannot parse '\(text)'") }
            guard e.address.hasPrefix("tcp://") else { return e.address }
            let rest = e.address.dropFirst("tcp://".count)
            guard let colon = rest.lastIndex(of: ":") else { return e.address }
            let host = String(rest[..<colon]), port = rest[rest.index(after: colon)...]
            if !config.advertiseHost.isEmpty { return "tcp://\(config.advertiseHost):\(port)" }
            if ["*", "0.0.0.0", "[::]", "::"].contains(host) || port == "*" {
                throw StartupError("\(key) binds \(text): set cluster.advertise_host to the address scorers reach this learner at (and a fixed port)")
            }
            return e.address
        }
        var name = config.clusterName
        if name.isEmpty {
            name = (ProcessInfo.processInfo.hostName) + ":" + config.stateDir
        }
        return LearnerAddress(name: name, model: try advertised(config.modelEndpoint, key: "cluster.model_endpoint"),
                              snapshot: try advertised(config.snapshotEndpoint, key: "cluster.snapshot_endpoint"),
                              forward: try advertised(config.forwardEndpoint, key: "cluster.forward_endpoint"))
    }
}
