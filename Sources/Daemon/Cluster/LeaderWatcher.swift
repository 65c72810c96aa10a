import Foundation
import Logging
import Synchronization

/// A scorer's view of who leads the cluster: reads `<prefix>/leader` from etcd every
/// `poll` seconds (docs/scale-out.md). The event loop follows its changes: reconnects to
/// the new leader and refuses states of lower epochs than the one etcd showed.
final class LeaderWatcher: @unchecked Sendable {
    struct View: Sendable, Equatable {
        /// The leader and its epoch; nil while the key is absent (no active learner).
        var leader: LearnerAddress?
        var epoch: Int64 = 0
        /// Clock time since which there has been no leader (nil while there is one).
        var vacantSince: Double?
        var etcdError: String?
        var members: [String] = []
    }

    private let api: EtcdAPI
    private let prefix: String
    let poll: Double
    private let clock: @Sendable () -> Double
    private let logger: Logger
    let shared = Mutex(View())
    private var view = View()
    private var polls = 0

    init(api: EtcdAPI, prefix: String, poll: Double, clock: @escaping @Sendable () -> Double, logger: Logger) {
        self.api = api
        self.prefix = prefix
        self.poll = poll
        self.clock = clock
        self.logger = logger
        view.vacantSince = clock()
        shared.withLock { $0 = view }
    }

    /// Reads the leader key once; returns when to read it again.
    func step() -> Double {
        do {
            let kv = try api.get(prefix + "/leader")
            if let kv, let address = try? JSONDecoder().decode(LearnerAddress.self, from: Data(kv.value)) {
                view.leader = address
                view.epoch = max(view.epoch, kv.createRevision)
                view.vacantSince = nil
            } else {
                if kv != nil { logger.error("ignored an unreadable leader key in etcd", metadata: ["key": "\(prefix)/leader"]) }
                if view.leader != nil || view.vacantSince == nil { view.vacantSince = clock() }
                view.leader = nil
            }
            if polls % 10 == 0 {
                view.members = try api.list(prefix: prefix + "/members/").compactMap {
                    try? JSONDecoder().decode(LearnerAddress.self, from: Data($0.value)).name
                }.sorted()
            }
            polls += 1
            if view.etcdError != nil { logger.notice("etcd answers again") }
            view.etcdError = nil
        } catch {
            if view.etcdError == nil { logger.error("etcd: \(error.description); scoring goes on with the current model") }
            view.etcdError = error.description
        }
        let v = view
        shared.withLock { $0 = v }
        return clock() + poll
    }
}
