import Online

/// One configuration value as it arrives from YAML, the environment or `--set`.
enum RawValue {
    case yaml(Any)
    case text(String)
}

/// A configuration key: its dotted name, type, and how it is applied.
struct ConfigKey: Sendable {
    enum Kind: Sendable, Equatable {
        case int, double, bool, string, stringList, doubleList
        case choice([String])

        var expected: String {
            switch self {
            case .int: "an integer"
            case .double: "a number"
            case .bool: "true or false"
            case .string: "a string"
            case .stringList: "a list of strings"
            case .doubleList: "a list of numbers"
            case .choice(let c): "one of " + c.joined(separator: ", ")
            }
        }
    }

    let name: String
    let kind: Kind
    let set: @Sendable (inout DaemonConfiguration, Value) -> Void
    let get: @Sendable (DaemonConfiguration) -> Value

    /// A parsed, well-typed value.
    enum Value: Equatable, CustomStringConvertible {
        case int(Int), double(Double), bool(Bool), string(String), list([String]), numbers([Double])

        var description: String {
            switch self {
            case .int(let v): String(v)
            case .double(let v): v == v.rounded() && abs(v) < 1e15 ? String(format: "%.1f", v) : "\(v)"
            case .bool(let v): String(v)
            case .string(let v): v.isEmpty || v.contains(where: { ":#@>$'\"{}[],&*!|%`".contains($0) }) ? "\"\(v)\"" : v
            case .list(let v): "[" + v.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
            case .numbers(let v): "[" + v.map { Value.double($0).description }.joined(separator: ", ") + "]"
            }
        }
    }

    /// The environment variable that overrides this key: `CFENSEMBLED_LEARNING_BATCH_SIZE`.
    var environmentName: String {
        "CFENSEMBLED_" + name.uppercased().replacingOccurrences(of: ".", with: "_")
    }

    /// Parses `raw` into this key's type, or says why it cannot be.
    func parse(_ raw: RawValue) throws(ConfigError) -> Value {
        func wrong(_ got: String) -> ConfigError { ConfigError("\(name): expected \(kind.expected), got \(got)") }
        switch raw {
        case .text(let t):
            let s = t.trimmingCharacters(in: .whitespaces)
            switch kind {
            case .int:
                guard let v = Int(s) else { throw wrong("\"\(t)\"") }
                return .int(v)
            case .double:
                guard let v = Double(s), v.isFinite else { throw wrong("\"\(t)\"") }
                return .double(v)
            case .bool:
                switch s.lowercased() {
                case "true", "yes", "on", "1": return .bool(true)
                case "false", "no", "off", "0": return .bool(false)
                default: throw wrong("\"\(t)\"")
                }
            case .string:
                return .string(t)
            case .stringList:
                let items = t.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                return .list(items)
            case .doubleList:
                let items = t.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                var out: [Double] = []
                for item in items {
                    guard let v = Double(item), v.isFinite else { throw wrong("\"\(t)\"") }
                    out.append(v)
                }
                return .numbers(out)
            case .choice(let options):
                guard options.contains(s) else { throw wrong("\"\(t)\"") }
                return .string(s)
            }
        case .yaml(let any):
            switch kind {
            case .int:
                if let v = any as? Int, !(any is Bool) { return .int(v) }
                throw wrong(describe(any))
            case .double:
                if let v = any as? Int, !(any is Bool) { return .double(Double(v)) }
                if let v = any as? Double, v.isFinite { return .double(v) }
                throw wrong(describe(any))
            case .bool:
                if let v = any as? Bool { return .bool(v) }
                throw wrong(describe(any))
            case .string:
                if let v = any as? String { return .string(v) }
                throw wrong(describe(any))
            case .stringList:
                if let v = any as? String { return .list([v]) }
                if let v = any as? [Any] {
                    var out: [String] = []
                    for item in v {
                        guard let s = item as? String else { throw wrong("a list containing \(describe(item))") }
                        out.append(s)
                    }
                    return .list(out)
                }
                throw wrong(describe(any))
            case .doubleList:
                let items: [Any] = (any as? [Any]) ?? [any]
                var out: [Double] = []
                for item in items {
                    if let v = item as? Int, !(item is Bool) { out.append(Double(v)); continue }
                    if let v = item as? Double, v.isFinite { out.append(v); continue }
                    throw wrong(any is [Any] ? "a list containing \(describe(item))" : describe(item))
                }
                return .numbers(out)
            case .choice(let options):
                if let v = any as? String, options.contains(v) { return .string(v) }
                throw wrong(describe(any))
            }
        }
    }

    private func describe(_ any: Any) -> String {
        switch any {
        case let b as Bool: "the boolean \(b)"
        case let i as Int: "the integer \(i)"
        case let d as Double: "the number \(d)"
        case let s as String: "the string \"\(s)\""
        case is [Any]: "a list"
        case is [String: Any], is [AnyHashable: Any]: "a mapping"
        case is NSNull: "null"
        default: "\(type(of: any))"
        }
    }
}

import Foundation

extension ConfigKey {
    static func int(_ name: String, _ kp: WritableKeyPath<DaemonConfiguration, Int> & Sendable) -> ConfigKey {
        ConfigKey(name: name, kind: .int,
                  set: { c, v in if case .int(let x) = v { c[keyPath: kp] = x } },
                  get: { .int($0[keyPath: kp]) })
    }
    static func double(_ name: String, _ kp: WritableKeyPath<DaemonConfiguration, Double> & Sendable) -> ConfigKey {
        ConfigKey(name: name, kind: .double,
                  set: { c, v in if case .double(let x) = v { c[keyPath: kp] = x } },
                  get: { .double($0[keyPath: kp]) })
    }
    static func bool(_ name: String, _ kp: WritableKeyPath<DaemonConfiguration, Bool> & Sendable) -> ConfigKey {
        ConfigKey(name: name, kind: .bool,
                  set: { c, v in if case .bool(let x) = v { c[keyPath: kp] = x } },
                  get: { .bool($0[keyPath: kp]) })
    }
    static func string(_ name: String, _ kp: WritableKeyPath<DaemonConfiguration, String> & Sendable) -> ConfigKey {
        ConfigKey(name: name, kind: .string,
                  set: { c, v in if case .string(let x) = v { c[keyPath: kp] = x } },
                  get: { .string($0[keyPath: kp]) })
    }
    static func strings(_ name: String, _ kp: WritableKeyPath<DaemonConfiguration, [String]> & Sendable) -> ConfigKey {
        ConfigKey(name: name, kind: .stringList,
                  set: { c, v in if case .list(let x) = v { c[keyPath: kp] = x } },
                  get: { .list($0[keyPath: kp]) })
    }
    static func choice<E: RawRepresentable<String> & CaseIterable & SendableMetatype>(
        _ name: String, _ kp: WritableKeyPath<DaemonConfiguration, E> & Sendable
    ) -> ConfigKey {
        ConfigKey(name: name, kind: .choice(E.allCases.map(\.rawValue)),
                  set: { c, v in if case .string(let x) = v, let e = E(rawValue: x) { c[keyPath: kp] = e } },
                  get: { .string($0[keyPath: kp].rawValue) })
    }
}

/// Every configuration key, in the order `--check-config` prints them.
enum ConfigSchema {
    static let keys: [ConfigKey] = [
        ConfigKey(name: "input.endpoints", kind: .stringList,
                  set: { c, v in if case .list(let x) = v { c.inputEndpoints = x } },
                  get: { .list($0.inputEndpoints) }),
        .choice("input.type", \.inputType),
        .int("input.rcvhwm", \.inputReceiveHWM),
        .int("input.max_connections", \.inputMaxConnections),
        .int("input.max_message_bytes", \.maxMessageBytes),
        .int("input.max_batch", \.maxBatchEntries),
        .int("input.max_batch_bytes", \.maxBatchBytes),
        .int("input.join_window_ms", \.joinWindowMs),
        .int("input.max_joining", \.maxJoining),
        .string("output.endpoint", \.outputEndpoint),
        .int("output.sndhwm", \.outputSendHWM),
        .int("output.max_subscribers", \.outputMaxSubscribers),
        .double("output.error_rate_per_s", \.errorRatePerSecond),
        .bool("output.explain", \.explain),
        .string("control.endpoint", \.controlEndpoint),
        .string("state.dir", \.stateDir),
        .double("state.pending_ttl_s", \.pendingTTLSeconds),
        .int("state.max_pending", \.maxPending),
        .double("state.checkpoint_interval_s", \.checkpointIntervalSeconds),
        .int("state.checkpoint_generations", \.checkpointGenerations),
        .bool("state.journal", \.journal),
        .double("state.journal_flush_ms", \.journalFlushMs),
        .double("state.journal_fsync_ms", \.journalFsyncMs),
        .int("state.journal_max_mb", \.journalMaxMB),
        .int("model.latent_dim", \.model.latentDim),
        .double("model.lambda", \.model.lambda),
        .int("model.max_classifiers", \.model.maxClassifiers),
        ConfigKey(name: "model.allowed_classifiers", kind: .stringList,
                  set: { c, v in if case .list(let x) = v { c.allowedClassifiers = x } },
                  get: { .list($0.allowedClassifiers) }),
        .double("model.confidence_alpha", \.model.confidenceAlpha),
        .choice("model.aggregator_input", \.model.aggregatorInput),
        .double("model.initial_scale", \.model.initialScale),
        .choice("model.missing_fill", \.model.missingFill),
        .choice("model.score_output", \.model.scoreOutput),
        .int("learning.batch_size", \.batchSize),
        .double("learning.max_batch_delay_s", \.maxBatchDelaySeconds),
        .bool("learning.update_thread", \.updateThread),
        .bool("learning.class_weights", \.model.classWeights),
        .double("learning.class_count_half_life", \.model.classCountHalfLife),
        .double("learning.forgetting", \.model.forgetting),
        .double("learning.label_confidence", \.model.labelConfidence),
        .int("learning.inner_sweeps", \.model.innerSweeps),
        .bool("learning.unlabelled_factors", \.model.unlabelledFactors),
        .int("learning.factor_refresh_interval", \.model.factorRefreshInterval),
        .bool("learning.calibrate_prior", \.model.calibratePrior),
        .double("learning.focal_gamma", \.model.focalGamma),
        .double("learning.lr", \.model.learningRate),
        .choice("learning.step_rule", \.model.stepRule),
        .double("learning.l2", \.model.l2),
        .bool("learning.nonnegative_weights", \.model.nonnegativeWeights),
        .int("learning.aggregator_steps", \.model.aggregatorSteps),
        .bool("learning.expert_selection", \.model.expertSelection),
        .double("learning.expert_z", \.model.expertZ),
        .double("learning.expert_eta", \.model.expertEta),
        .int("learning.replay_positives", \.model.replayPositives),
        .int("learning.replay_negatives", \.model.replayNegatives),
        .int("calibration.positives", \.calibration.positives),
        .int("calibration.negatives", \.calibration.negatives),
        .int("calibration.min_per_class", \.calibration.minimumPerClass),
        .double("calibration.prior_labels", \.calibration.priorLabels),
        .double("calibration.ridge", \.calibration.ridge),
        .double("calibration.rate_half_life", \.calibration.rateHalfLife),
        .double("calibration.evidence_half_life", \.calibration.evidenceHalfLife),
        .int("calibration.mix_until", \.calibration.mixUntil),
        ConfigKey(name: "monitoring.alert_rates", kind: .doubleList,
                  set: { c, v in if case .numbers(let x) = v { c.alertRates = x } },
                  get: { .numbers($0.alertRates) }),
        .double("monitoring.precision_target", \.precisionTarget),
        .int("monitoring.score_window", \.scoreWindow),
        .int("monitoring.drift_window", \.driftWindows.recent),
        .int("monitoring.drift_reference", \.driftWindows.reference),
        .int("monitoring.drift_check_every", \.driftWindows.checkEvery),
        .int("monitoring.estimate_window", \.driftWindows.estimate),
        .double("health.interval_s", \.healthIntervalSeconds),
        .int("health.window", \.healthWindow),
        .choice("health.fallback", \.fallback),
        .double("health.min_weight_sum_ratio", \.health.minWeightSumRatio),
        .int("health.drift_updates", \.health.driftUpdates),
        .double("health.drift_ratio", \.health.driftRatio),
        .double("health.min_score_std", \.health.minScoreStd),
        .double("health.quality_margin", \.health.qualityMargin),
        .int("health.quality_min_labels", \.health.qualityMinLabels),
        .int("health.quality_min_positives", \.health.qualityMinPositives),
        .double("health.max_ece", \.health.maxECE),
        .double("health.ece_noise_ratio", \.health.eceNoiseRatio),
        .double("health.max_psi", \.health.maxPSI),
        .double("health.psi_noise_ratio", \.health.psiNoiseRatio),
        .double("health.rate_shift_ratio", \.health.rateShiftRatio),
        .double("health.rate_shift_z", \.health.rateShiftZ),
        .double("health.estimate_margin", \.health.estimateMargin),
        .double("health.silent_after_s", \.health.silentAfterSeconds),
        .double("health.outage_expected_positives", \.health.outageExpectedPositives),
        .int("health.fire_after", \.health.fireAfter),
        .int("health.resolve_after", \.health.resolveAfter),
        .double("health.min_firing_s", \.health.minFiringSeconds),
        .string("log.level", \.logLevel),
        .string("metrics.listen", \.metricsListen),
        .int("metrics.max_connections", \.metricsMaxConnections),
        .double("metrics.idle_timeout_s", \.metricsIdleSeconds),
        .double("metrics.connection_deadline_s", \.metricsConnectionDeadlineSeconds),
        .string("security.curve_secret_key_file", \.curveSecretKeyFile),
        .string("security.allowed_clients", \.allowedClients),
        .string("security.server_public_key_file", \.serverPublicKeyFile),
        .choice("cluster.role", \.role),
        .string("cluster.model_endpoint", \.modelEndpoint),
        .string("cluster.snapshot_endpoint", \.snapshotEndpoint),
        .string("cluster.forward_endpoint", \.forwardEndpoint),
        .double("cluster.heartbeat_interval_s", \.heartbeatIntervalSeconds),
        .double("cluster.snapshot_wait_s", \.snapshotWaitSeconds),
        .int("cluster.forward_sndhwm", \.forwardSendHWM),
        .double("cluster.label_wait_s", \.labelWaitSeconds),
        .strings("cluster.forward_endpoints", \.forwardEndpoints),
        .string("cluster.name", \.clusterName),
        .string("cluster.advertise_host", \.advertiseHost),
        .strings("cluster.etcd_endpoints", \.etcdEndpoints),
        .string("cluster.etcd_prefix", \.etcdPrefix),
        .int("cluster.etcd_ttl_s", \.etcdTTLSeconds),
        .double("cluster.etcd_poll_s", \.etcdPollSeconds),
        .string("cluster.etcd_username", \.etcdUsername),
        .string("cluster.etcd_password_file", \.etcdPasswordFile),
        .string("cluster.etcd_ca_file", \.etcdCAFile),
        .string("cluster.etcd_cert_file", \.etcdCertFile),
        .string("cluster.etcd_key_file", \.etcdKeyFile),
    ]

    static let byName: [String: ConfigKey] = Dictionary(uniqueKeysWithValues: keys.map { ($0.name, $0) })
    static let byEnvironment: [String: ConfigKey] = Dictionary(uniqueKeysWithValues: keys.map { ($0.environmentName, $0) })

    static func key(_ name: String) throws(ConfigError) -> ConfigKey {
        guard let k = byName[name] else {
            let section = name.split(separator: ".").first.map(String.init) ?? name
            let known = keys.map(\.name).filter { $0.hasPrefix(section + ".") }
            let hint = known.isEmpty
                ? "known sections: " + Set(keys.map { String($0.name.split(separator: ".")[0]) }).sorted().joined(separator: ", ")
                : "known keys in '\(section)': " + known.map { String($0.dropFirst(section.count + 1)) }.joined(separator: ", ")
            throw ConfigError("unknown configuration key '\(name)' (\(hint))")
        }
        return k
    }
}
