import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One HTTP GET on loopback, waited for up to `timeout` seconds: the status (0 when no
/// answer) and the body. For the metrics endpoint and Alertmanager's API.
func httpGet(_ url: URL, timeout: Double = 10) -> (status: Int, body: Data) {
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result: (Int, Data) = (0, Data())
    URLSession.shared.dataTask(with: url) { data, response, _ in
        result = ((response as? HTTPURLResponse)?.statusCode ?? 0, data ?? Data())
        done.signal()
    }.resume()
    _ = done.wait(timeout: .now() + timeout)
    return result
}
