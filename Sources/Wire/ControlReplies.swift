/// The control socket's requests (docs/protocol.md).
public enum ControlCommand: String, Sendable, CaseIterable {
    case status, checkpoint, rollback
    case pinReference = "pin_reference"
}

/// A summary of the running configuration, in the `status` reply.
public struct ConfigSummary: Codable, Sendable, Equatable {
    public var inputs: [String] = []
    public var input_type = "sub"
    public var output = ""
    public var control = ""
    public var state_dir = ""
    public var latent_dim = 0
    public var max_classifiers = 0
    public var batch_size = 0
    public var class_weights = true
    public var join_window_ms = 0
    public var classifiers: [String] = []
    public var version = ""
    public var role = "all"

    public init() {}
}

/// Checkpoints and the journal: when the state was last made durable.
public struct Persistence: Codable, Sendable, Equatable {
    public struct LastCheckpoint: Codable, Sendable, Equatable {
        public var at: Double
        public var bytes: Int
        public var model_version: Int64
        public var pending: Int
        public var ms: Int
        public var background: Bool
        /// True when it is the checkpoint this run started from (none written since).
        public var restored: Bool?

        public init(at: Double, bytes: Int, model_version: Int64, pending: Int, ms: Int, background: Bool, restored: Bool? = nil) {
            self.at = at
            self.bytes = bytes
            self.model_version = model_version
            self.pending = pending
            self.ms = ms
            self.background = background
            self.restored = restored
        }
    }

    /// The last checkpoint written, or the one this run was restored from (null: none yet).
    public var last_checkpoint: LastCheckpoint?
    public var checkpoints_written: UInt64 = 0
    public var checkpoints_failed: UInt64 = 0
    public var checkpoint_in_progress = false
    /// The journal file being appended to and its size (null: journal off).
    public var journal_file: UInt64?
    public var journal_bytes: Int?
    public var journal_error: String?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case last_checkpoint, checkpoints_written, checkpoints_failed, checkpoint_in_progress, journal_file, journal_bytes, journal_error
    }

    /// Absent values are written as null (the protocol documents them so), not left out.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(last_checkpoint, forKey: .last_checkpoint)
        try c.encode(checkpoints_written, forKey: .checkpoints_written)
        try c.encode(checkpoints_failed, forKey: .checkpoints_failed)
        try c.encode(checkpoint_in_progress, forKey: .checkpoint_in_progress)
        try c.encode(journal_file, forKey: .journal_file)
        try c.encode(journal_bytes, forKey: .journal_bytes)
        try c.encode(journal_error, forKey: .journal_error)
    }
}

/// The reply to `{"cmd": "status"}`: `ok`, the health body's fields at the top level,
/// `config` and `persistence`.
public struct StatusReply: Codable, Sendable, Equatable {
    public var health: HealthBody
    public var config: ConfigSummary
    public var persistence: Persistence

    public init(health: HealthBody, config: ConfigSummary, persistence: Persistence) {
        self.health = health
        self.config = config
        self.persistence = persistence
    }

    enum Keys: String, CodingKey { case ok, config, persistence }

    public func encode(to encoder: Encoder) throws {
        try health.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(true, forKey: .ok)
        try c.encode(config, forKey: .config)
        try c.encode(persistence, forKey: .persistence)
    }

    public init(from decoder: Decoder) throws {
        health = try HealthBody(from: decoder)
        let c = try decoder.container(keyedBy: Keys.self)
        config = try c.decode(ConfigSummary.self, forKey: .config)
        persistence = try c.decodeIfPresent(Persistence.self, forKey: .persistence) ?? Persistence()
    }
}

/// A control reply that is `ok` and an optional error or fields (`checkpoint`,
/// `rollback`, and every refusal).
public struct ControlReply: Codable, Sendable, Equatable {
    public var ok: Bool
    public var error: String?
    public var path: String?
    public var bytes: Int?
    public var model_version: Int64?

    public init(ok: Bool, error: String? = nil, path: String? = nil, bytes: Int? = nil, model_version: Int64? = nil) {
        self.ok = ok
        self.error = error
        self.path = path
        self.bytes = bytes
        self.model_version = model_version
    }
}
