import Foundation
import Yams

/// Builds the effective configuration with the precedence in docs/configuration.md:
/// built-in defaults < config file < `CFENSEMBLED_*` environment < `--set` < dedicated flags.
struct ConfigLoader: Sendable {
    var file: String?
    var environment: [String: String] = [:]
    var sets: [String] = []
    /// Dedicated command-line flags, already as (key, value) pairs (lists comma-separated).
    var flags: [(String, String)] = []

    /// Environment variables with the `CFENSEMBLED_` prefix that name no key.
    private(set) var ignoredEnvironment: [String] = []

    mutating func load() throws(ConfigError) -> DaemonConfiguration {
        var config = DaemonConfiguration()
        if let file { try applyFile(file, to: &config) }
        ignoredEnvironment = []
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix("CFENSEMBLED_") {
            guard let key = ConfigSchema.byEnvironment[name] else {
                ignoredEnvironment.append(name)
                continue
            }
            try apply(key, .text(value), source: "environment variable \(name)", to: &config)
        }
        for assignment in sets {
            guard let eq = assignment.firstIndex(of: "="), eq != assignment.startIndex else {
                throw ConfigError("--set \(assignment): expected SECTION.KEY=VALUE")
            }
            let name = String(assignment[..<eq]).trimmingCharacters(in: .whitespaces)
            let value = String(assignment[assignment.index(after: eq)...])
            try apply(try ConfigSchema.key(name), .text(value), source: "--set", to: &config)
        }
        for (name, value) in flags {
            try apply(try ConfigSchema.key(name), .text(value), source: "command line", to: &config)
        }
        try config.validate()
        return config
    }

    private func apply(_ key: ConfigKey, _ raw: RawValue, source: String, to config: inout DaemonConfiguration) throws(ConfigError) {
        do {
            key.set(&config, try key.parse(raw))
        } catch {
            throw ConfigError("\(source): \(error.description)")
        }
    }

    private func applyFile(_ path: String, to config: inout DaemonConfiguration) throws(ConfigError) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError("cannot read config file \(path): \((error as NSError).localizedDescription)")
        }
        let root: Any?
        do {
            root = try Yams.load(yaml: text)
        } catch {
            throw ConfigError("\(path): invalid YAML: \(error)")
        }
        guard let root, !(root is NSNull) else { return }
        guard let sections = root as? [String: Any] else {
            throw ConfigError("\(path): the top level must be a mapping of sections (input, output, control, state, model, learning, health, log)")
        }
        for (section, body) in sections.sorted(by: { $0.key < $1.key }) {
            if body is NSNull { continue }
            guard let keys = body as? [String: Any] else {
                if ConfigSchema.keys.contains(where: { $0.name.hasPrefix(section + ".") }) {
                    throw ConfigError("\(path): section '\(section)' must be a mapping of keys")
                }
                _ = try ConfigSchema.key(section) // throws "unknown configuration key"
                continue
            }
            for (name, value) in keys.sorted(by: { $0.key < $1.key }) {
                let key: ConfigKey
                do {
                    key = try ConfigSchema.key("\(section).\(name)")
                } catch {
                    throw ConfigError("\(path): \(error.description)")
                }
                try apply(key, .yaml(value), source: path, to: &config)
            }
        }
    }

    /// The effective configuration as YAML, every key, for `--check-config`.
    static func render(_ config: DaemonConfiguration) -> String {
        var out = ""
        var section = ""
        for key in ConfigSchema.keys {
            let parts = key.name.split(separator: ".", maxSplits: 1).map(String.init)
            if parts[0] != section {
                section = parts[0]
                out += "\(section):\n"
            }
            out += "  \(parts[1]): \(key.get(config))\n"
        }
        return out
    }
}
