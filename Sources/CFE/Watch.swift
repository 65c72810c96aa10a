import ArgumentParser
import Foundation
import Transport
import Wire

/// `cfe watch ENDPOINT`: a live view of a daemon's `alert` and `health` messages.
struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a live view of a daemon's health and alerts.",
        discussion: """
        Subscribes to the alert and health topics of the daemon's output socket. On a terminal the
        view is redrawn in colour; piped, each message prints a plain snapshot; --json prints every
        message as one JSON line: {"topic": ..., "body": {...}}.
        """
    )

    @OptionGroup var curve: CurveOptions

    @Argument(help: "The daemon's output endpoint, e.g. tcp://127.0.0.1:5556 (connects; '>' optional).")
    var endpoint: String = "tcp://127.0.0.1:5556"

    @Flag(help: "Print every message as a JSON line.")
    var json = false

    @Option(help: "Colour: auto (terminals only), always or never.")
    var color: String = "auto"

    @Option(help: "Exit after this many messages (0: run until interrupted).")
    var count: Int = 0

    @Option(help: "Exit after this many seconds (0: no limit).")
    var timeout: Double = 0

    func run() throws {
        let subscription = try OutputSubscription(endpoint, topics: ["alert", "health"], curve: curve)
        let terminal = isatty(STDOUT_FILENO) != 0
        let useColor = color == "always" || (color == "auto" && terminal)
        let redraw = terminal && !json
        var state = WatchState()
        if redraw { print("waiting for health and alerts from \(subscription.endpoint.address) ...") }
        // Messages that are not two frames of JSON are skipped, but count toward --count.
        try subscription.read(count: count, timeout: timeout) { frames in
            guard frames.count == 2 else { return }
            let topic = String(decoding: frames[0], as: UTF8.self)
            if topic == "health", let body = try? WireJSON.decode(HealthBody.self, from: frames[1]) {
                state.apply(health: body)
            } else if topic == "alert", let body = try? WireJSON.decode(AlertBody.self, from: frames[1]) {
                state.apply(alert: body)
            } else {
                return
            }
            if json {
                // The daemon's body as it came (already one line of JSON).
                FileHandle.standardOutput.write(Data(#"{"body":"#.utf8) + Data(frames[1]) + Data(#","topic":""#.utf8)
                                                + Data(topic.utf8) + Data("\"}\n".utf8))
            } else if redraw {
                print("\u{1B}[2J\u{1B}[H" + state.render(color: useColor, width: terminalWidth()), terminator: "")
            } else {
                print("--- \(topic) at \(ISO8601DateFormatter().string(from: Date()))")
                print(state.render(color: useColor), terminator: "")
            }
            fflush(nil)   // flush all output streams (stdout is not concurrency-safe to name)
        }
    }

    private func terminalWidth() -> Int {
        var size = winsize()
        return ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 ? Int(size.ws_col) : 80
    }
}
