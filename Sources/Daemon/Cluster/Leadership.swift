/// What a learner's election knows at one moment (written by the `Elector`'s thread, read
/// by the event loop each turn).
struct Leadership: Sendable, Equatable {
    enum Role: String, Sendable {
        /// No answer from etcd yet.
        case starting
        case standby
        case leader
    }

    var role: Role = .starting
    /// While leader: the epoch of our leadership (the etcd revision at which we won).
    var epoch: Int64 = 0
    /// While leader: the monotonic time before which our lease cannot have expired
    /// (measured from when the last renewal was sent, less a margin). Nothing is
    /// published or checkpointed by a leader at or after it.
    var deadline = -Double.infinity
    /// The cluster's lineage of model versions (kept in etcd, shared by all learners).
    var lineage: String?
    /// While leader: versions up to here may be published (reserved in etcd); the first
    /// one this leadership publishes is `base + 1`.
    var base: Int64 = 0
    var reserved: Int64 = 0
    /// The leader as etcd last showed it (possibly us), and its epoch.
    var leaderName: String?
    var leaderEpoch: Int64 = 0
    /// The other learners registered (standbys, and a leader that is not us).
    var members: [String] = []
    /// The last failure to reach etcd, nil once it answers again.
    var etcdError: String?

    /// May a state (or heartbeat, snapshot reply or checkpoint) go out now?
    func isActive(now: Double) -> Bool { role == .leader && now < deadline }

    /// A leader whose lease may have lapsed and that does not yet know whether it kept
    /// it: it neither publishes nor checkpoints.
    func inDoubt(now: Double) -> Bool { role == .leader && now >= deadline }
}

/// The value a learner writes under its member key and, once elected, under the
/// leader key: where scorers reach it.
struct LearnerAddress: Codable, Sendable, Equatable {
    var name: String
    /// Where scorers connect their SUB (model states) and DEALER (snapshots).
    var model: String
    var snapshot: String
    /// Where scorers connect a PUSH for it (every learner gets every forward).
    var forward: String
}

/// The cluster's version reservation in etcd: `{"lineage": ..., "reserved": N}`.
struct VersionReservation: Codable, Sendable, Equatable {
    var lineage: String
    var reserved: Int64
}
