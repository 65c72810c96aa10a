import Foundation
import Testing
@testable import Transport

@Suite struct SocketTests {
    @Test func multipartRoundTripWithTruncationAndExtraFrames() throws {
        let ctx = try ZMQContext()
        let pull = try ZMQSocket(context: ctx, kind: .pull)
        let push = try ZMQSocket(context: ctx, kind: .push)
        try pull.bind("inproc://roundtrip")
        try push.connect("inproc://roundtrip")
        try push.send(strings: ["pred", "{\"id\":\"a\"}"])
        try push.send(frames: [Array("pred".utf8), [UInt8](repeating: 65, count: 100)])
        try push.send(strings: ["a", "b", "c", "d"])
        var msg = MultipartMessage(capacities: [8, 32])
        try pull.setReceiveTimeout(2000)
        #expect(try pull.receive(into: &msg))
        #expect(msg.frameCount == 2 && !msg.isTruncated(1))
        #expect(msg.withFrame(1) { String(decoding: $0, as: UTF8.self) } == "{\"id\":\"a\"}")
        #expect(try pull.receive(into: &msg))
        #expect(msg.isTruncated(1) && msg.lengths[1] == 100)
        #expect(try pull.receive(into: &msg))
        #expect(msg.frameCount == 4)
        #expect(try pull.receive(into: &msg, dontWait: true) == false)
    }

    @Test func bindErrorsCarryLibzmqText() throws {
        let ctx = try ZMQContext()
        let a = try ZMQSocket(context: ctx, kind: .pub)
        let b = try ZMQSocket(context: ctx, kind: .pub)
        try a.bind("tcp://127.0.0.1:*")
        let bound = try #require(a.lastEndpoint)
        do {
            try b.bind(bound)
            Issue.record("second bind to \(bound) succeeded")
        } catch {
            #expect(error.description.contains("Address already in use"), "\(error)")
        }
    }

    @Test func pollerReportsReadableSockets() throws {
        let ctx = try ZMQContext()
        let rep = try ZMQSocket(context: ctx, kind: .rep)
        let req = try ZMQSocket(context: ctx, kind: .req)
        try rep.bind("inproc://poll")
        try req.connect("inproc://poll")
        var poller = ZMQPoller()
        let i = poller.add(rep)
        #expect(try poller.poll(timeoutMs: 0) == 0)
        try req.send(strings: ["hi"])
        #expect(try poller.poll(timeoutMs: 2000) == 1)
        #expect(poller.isReadable(i))
        #expect(try rep.receiveFrames() == [Array("hi".utf8)])
    }
}
