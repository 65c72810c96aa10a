import Foundation
import Online
import Testing
@testable import Daemon

/// The update worker runs an update's aggregator part on its thread and hands back
/// what running it in place gives; it waits for a running update and stops cleanly.
@Suite struct UpdateWorkerTests {
    /// A model with a begun update (both classes in its buffer), and the same model updated in place.
    private func begun() throws -> (split: CFEnsemble, job: AggregatorUpdate, inPlace: CFEnsemble) {
        var config = ModelConfiguration()
        config.expertSelection = true
        let split = CFEnsemble(config: config), inPlace = CFEnsemble(config: config)
        for name in ["a", "b", "c"] { _ = split.classifier(named: name); _ = inPlace.classifier(named: name) }
        let batch = (0..<64).map { i -> LabelledInstance in
            let label: Int8 = i % 4 == 0 ? 1 : 0
            return LabelledInstance(entries: (0..<3).map { Entry(classifier: $0, value: (label == 1 ? 0.6 : 0.4) + 0.01 * Double((i * 7 + $0) % 9)) },
                                    label: label)
        }
        inPlace.update(batch)
        let job = try #require(split.beginUpdate(batch)?.aggregator)
        return (split, job, inPlace)
    }

    @Test func theResultIsWhatRunningInPlaceGives() throws {
        let worker = UpdateWorker()
        worker.start()
        defer { worker.stop() }
        #expect(worker.poll() == nil && worker.wait() == nil, "nothing submitted")
        let (split, job, inPlace) = try begun()
        var calibrator = ScoreCalibrator()
        for k in 0..<200 { calibrator.record(score: Double(k % 10) / 10 + 0.05, average: 0.3, label: k % 7 == 0 ? 1 : 0) }
        worker.submit(UpdateJob(aggregator: job, calibration: calibrator.fit()))
        let result = try #require(worker.wait())
        #expect(worker.poll() == nil, "a result is taken once")
        split.finishUpdate(try #require(result.aggregator))
        #expect(split.aggregator == inPlace.aggregator && split.experts == inPlace.experts && split.version == inPlace.version)
        #expect(result.calibration == calibrator.fit().run() && result.calibration.fitted)
    }

    @Test func aWorkerThatIsNotRunningRunsTheUpdateInPlace() throws {
        let worker = UpdateWorker()
        let (split, job, inPlace) = try begun()
        worker.submit(UpdateJob(aggregator: job, calibration: { var c = ScoreCalibrator(); return c.fit() }()))
        split.finishUpdate(try #require(worker.poll()?.aggregator))
        #expect(split.aggregator == inPlace.aggregator)
        worker.stop()
    }

    @Test func stopWaitsForTheRunningUpdateAndLeavesItsResult() throws {
        let worker = UpdateWorker()
        worker.start()
        let (_, job, _) = try begun()
        worker.submit(UpdateJob(aggregator: job, calibration: { var c = ScoreCalibrator(); return c.fit() }()))
        worker.stop()
        #expect(worker.poll() != nil)
    }
}
