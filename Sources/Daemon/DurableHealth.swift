import Online

/// The health supervisor's state as it is written to checkpoints and the journal, so
/// that a restart or a crash neither resolves nor re-fires an alert: the monitor's
/// conditions (firing, since how long, hysteresis counts), the healthy weight-sum
/// reference, how long each classifier has been silent, the run of negative labels,
/// and (in checkpoints) the recent scores and the last healthy model.
///
/// Times are ages at the moment it was taken, so the time the daemon was down counts
/// towards no timer: a classifier silent for 15 s at a stop is silent for 15 s at the
/// next start, and a condition that had fired 5 s before is 5 s into its
/// `min_firing_s` afterwards.
struct DurableHealth: Codable, Equatable, Sendable {
    var monitor = HealthMonitor.State()
    var negativesInARow = 0
    /// Seconds since each classifier (by name) last reported.
    var silentFor: [String: Double] = [:]
    /// Recent published scores, oldest first (checkpoints only).
    var recentScores: [Double]? = nil
    /// The label-free drift windows: each classifier's reference and recent outputs, the
    /// published scores' and the predicted positive rate's (checkpoints only; the journal's
    /// pending records bring back what came after).
    var drift: DriftWatch? = nil
    /// The model after the last update at which no critical condition fired
    /// (checkpoints only; the journal marks such updates instead).
    var lastHealthy: ModelSnapshot? = nil
}
