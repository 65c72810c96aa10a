import Foundation

/// Owns the daemon's threads besides the event loop, and starts and stops them in one
/// documented order (docs/architecture.md):
///
/// - start: the ZAP handler first (it must answer before any CURVE socket accepts a
///   peer; the sockets are bound already, and refuse every handshake until it runs),
///   then the checkpoint writer, then the journal's writer and syncer, then the update worker;
/// - stop, after the final checkpoint is written (it waits for a running update): the
///   update worker and the checkpoint writer (nothing is left for them), the journal (its last writes and fdatasync, then its syncer and writer), then the
///   event loop's sockets close, and the ZAP handler last, so that every handshake up to
///   the last socket's close is checked against the allow-list.
///
/// The metrics server is a swift-service-lifecycle service of its own, started before
/// the event loop and shut down after it (the service group stops services in reverse).
final class BackgroundThreads {
    enum Step: String, Sendable {
        case zapStarted = "ZAP handler started"
        case writerStarted = "checkpoint writer started"
        case journalWriterStarted = "journal writer started"
        case syncerStarted = "journal syncer started"
        case updaterStarted = "update worker started"
        case updaterStopped = "update worker stopped"
        case writerStopped = "checkpoint writer stopped"
        case journalClosed = "journal closed (last sync)"
        case socketsClosed = "sockets closed"
        case zapStopped = "ZAP handler stopped"
    }

    private let zap: ZAPThread?
    private let writer: CheckpointWriter?
    private let journal: Journal?
    private let updater: UpdateWorker?
    /// What happened, in order (the shutdown-order test reads it).
    private(set) var steps: [Step] = []

    init(zap: ZAPThread?, writer: CheckpointWriter?, journal: Journal?, updater: UpdateWorker? = nil) {
        self.zap = zap
        self.writer = writer
        self.journal = journal
        self.updater = updater
    }

    func start() {
        if let zap { zap.start(); steps.append(.zapStarted) }
        if let writer { writer.start(); steps.append(.writerStarted) }
        if let journal { journal.writer.start(); steps.append(.journalWriterStarted) }
        if let syncer = journal?.syncer { syncer.start(); steps.append(.syncerStarted) }
        if let updater { updater.start(); steps.append(.updaterStarted) }
    }

    /// `closeSockets` runs between the journal and the ZAP handler.
    func stop(closeSockets: () -> Void) {
        if let updater { updater.stop(); steps.append(.updaterStopped) }
        if let writer { writer.stop(); steps.append(.writerStopped) }
        if let journal { journal.close(); steps.append(.journalClosed) }
        closeSockets()
        steps.append(.socketsClosed)
        if let zap { zap.stop(); steps.append(.zapStopped) }
    }
}

extension Thread {
    /// Starts `body` on a thread named `name` (as `ps -T` and `top -H` show it) with a
    /// stack of `stackSize` bytes: the checkpoint writer, the journal syncer and the
    /// update worker each run their loop on one.
    static func started(name: String, stackSize: Int, _ body: @escaping @Sendable () -> Void) -> Thread {
        let thread = Thread(block: body)
        thread.name = name
        thread.stackSize = stackSize
        thread.start()
        return thread
    }
}
