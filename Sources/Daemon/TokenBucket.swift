/// Allows `rate` events per second with bursts of up to `burst`, so rejected input can
/// never turn into an amplified stream of `error` events.
struct TokenBucket {
    let rate: Double
    let burst: Double
    private var tokens: Double
    private var last: Double

    init(rate: Double, burst: Double, now: Double) {
        self.rate = rate
        self.burst = max(burst, rate > 0 ? 1 : 0)
        tokens = self.burst
        last = now
    }

    mutating func take(now: Double) -> Bool {
        tokens = min(burst, tokens + (now - last) * rate)
        last = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
