import Online

/// What a model update computes away from the event loop: the aggregator's part
/// (`AggregatorUpdate`, absent when the update needs none) and the calibrator's fit.
struct UpdateJob: Sendable {
    var aggregator: AggregatorUpdate?
    var calibration: CalibrationFit

    struct Result: Sendable {
        var aggregator: AggregatorUpdate.Result?
        var calibration: Calibration
    }

    func run() -> Result {
        Result(aggregator: aggregator?.run(), calibration: calibration.run())
    }
}
