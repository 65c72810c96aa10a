import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Posts alerts to Alertmanager's v2 API (`POST /api/v2/alerts`), synchronously with a
/// timeout: `cfe alertmanager` is a subscriber of its own, so a slow or absent
/// Alertmanager delays only it, never the daemon.
struct AlertmanagerClient {
    let endpoint: URL
    let timeout: Double

    /// `base`: Alertmanager's URL, e.g. http://127.0.0.1:9093 (a path prefix is kept).
    init(base: String, timeout: Double = 5) throws {
        guard var url = URL(string: base), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw ValidationError("--url must be an http:// or https:// URL, got '\(base)'")
        }
        url.appendPathComponent("api/v2/alerts")
        endpoint = url
        self.timeout = timeout
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    func post(_ alerts: [AlertForwarder.Postable]) throws(Failure) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var request = URLRequest(url: endpoint, timeoutInterval: timeout)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        do { request.httpBody = try encoder.encode(alerts) } catch { throw Failure(description: "cannot encode alerts: \(error)") }
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: Result<Int, Failure> = .failure(Failure(description: "no answer within \(timeout) s"))
        nonisolated(unsafe) var body = ""
        let task = URLSession.shared.dataTask(with: request) { data, response, error in
            if let error {
                outcome = .failure(Failure(description: error.localizedDescription))
            } else {
                outcome = .success((response as? HTTPURLResponse)?.statusCode ?? 0)
                body = data.map { String(decoding: $0.prefix(300), as: UTF8.self) } ?? ""
            }
            done.signal()
        }
        task.resume()
        if done.wait(timeout: .now() + timeout + 1) == .timedOut {
            task.cancel()
            throw Failure(description: "no answer from \(endpoint.absoluteString) within \(timeout) s")
        }
        switch outcome {
        case let .failure(f): throw f
        case let .success(status) where (200..<300).contains(status): return
        case let .success(status): throw Failure(description: "\(endpoint.absoluteString) answered HTTP \(status): \(body)")
        }
    }
}
