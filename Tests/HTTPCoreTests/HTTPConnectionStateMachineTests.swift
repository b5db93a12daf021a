import HTTPCore
import XCTest

final class HTTPConnectionStateMachineTests: XCTestCase {
  private func request(_ target: String, extra: String = "") -> String {
    "GET \(target) HTTP/1.1\r\nHost: a\r\n\(extra)\r\n"
  }

  private func text(_ action: HTTPConnectionStateMachine.Action) -> String? {
    if case .write(let bytes, _) = action { return String(decoding: bytes, as: UTF8.self) }
    return nil
  }

  func testPipelinedRequestsAreAnsweredOneAtATime() {
    var machine = HTTPConnectionStateMachine()
    let action = machine.bytesReceived(Array((request("/1") + request("/2")).utf8), now: 0)
    guard case .dispatch(let first) = action else { return XCTFail("\(action)") }
    XCTAssertEqual(first.target, "/1")
    // More bytes while busy are only buffered.
    XCTAssertEqual(machine.bytesReceived(Array(request("/3").utf8), now: 0), .none)
    let write = machine.responseReady(HTTPResponse(body: [49]), now: 0)
    guard case .write(_, let close) = write else { return XCTFail("\(write)") }
    XCTAssertFalse(close)
    guard case .dispatch(let second) = machine.writeCompleted(now: 0) else { return XCTFail() }
    XCTAssertEqual(second.target, "/2")
    _ = machine.responseReady(HTTPResponse(), now: 0)
    guard case .dispatch(let third) = machine.writeCompleted(now: 0) else { return XCTFail() }
    XCTAssertEqual(third.target, "/3")
    _ = machine.responseReady(HTTPResponse(), now: 0)
    XCTAssertEqual(machine.writeCompleted(now: 0), .readMore)
    XCTAssertTrue(machine.isIdle)
  }

  /// A large body goes out from its own array after its head; head and body are the one-piece serialization's bytes.
  func testLargeBodiesAreWrittenApartFromTheirHead() {
    let body = (0..<(100 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    for (method, large) in [("GET", true), ("HEAD", false)] {
      var machine = HTTPConnectionStateMachine()
      let head = "\(method) /big HTTP/1.1\r\nHost: a\r\nX-Request-Id: r1\r\n\r\n"
      guard case .dispatch = machine.bytesReceived(Array(head.utf8), now: 0) else { return XCTFail(method) }
      let action = machine.responseReady(HTTPResponse(body: body), now: 0)
      var serializer = HTTPResponseSerializer()
      let whole = serializer.serialize(
        HTTPResponse(body: body), requestMethod: method == "GET" ? .get : .head, requestVersion: .http1_1,
        keepAlive: true, now: 0, requestID: "r1")
      switch action {
      case .writeHeadAndBody(let head, let written, let close):
        XCTAssertTrue(large, method)
        XCTAssertFalse(close)
        XCTAssertEqual(head + written, whole)
        XCTAssertTrue(String(decoding: head, as: UTF8.self).hasSuffix("\r\n\r\n"))
      case .write(let bytes, let close):
        XCTAssertFalse(large, method)
        XCTAssertFalse(close)
        XCTAssertEqual(bytes, whole)
      default:
        XCTFail("\(method): \(action)")
      }
      XCTAssertEqual(machine.writeCompleted(now: 0), .readMore)
    }
  }

  func testParseErrorWritesProblemAndCloses() {
    var machine = HTTPConnectionStateMachine()
    let action = machine.bytesReceived(Array("BROKEN\r\n\r\n".utf8), now: 0)
    guard case .write(let bytes, let close) = action else { return XCTFail("\(action)") }
    XCTAssertTrue(close)
    let response = String(decoding: bytes, as: UTF8.self)
    XCTAssertTrue(response.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), response)
    XCTAssertTrue(response.contains("Connection: close\r\n"))
    XCTAssertTrue(response.contains("Content-Type: application/problem+json\r\n"))
    XCTAssertEqual(machine.writeCompleted(now: 0), .close)
    XCTAssertTrue(machine.isClosed)
  }

  func testConnectionCloseRequest() {
    var machine = HTTPConnectionStateMachine()
    _ = machine.bytesReceived(Array(request("/", extra: "Connection: close\r\n").utf8), now: 0)
    XCTAssertTrue(text(machine.responseReady(HTTPResponse(), now: 0))?.contains("Connection: close") ?? false)
    XCTAssertEqual(machine.writeCompleted(now: 0), .close)
  }

  func testResponseAskingToClose() {
    var machine = HTTPConnectionStateMachine()
    _ = machine.bytesReceived(Array(request("/").utf8), now: 0)
    let action = machine.responseReady(HTTPResponse(headers: ["Connection": "close"]), now: 0)
    guard case .write(_, true) = action else { return XCTFail("\(action)") }
  }

  func testDrainingClosesIdleConnectionsAndFinishesInFlight() {
    var idle = HTTPConnectionStateMachine()
    XCTAssertEqual(idle.startDraining(), .close)

    var busy = HTTPConnectionStateMachine()
    _ = busy.bytesReceived(Array(request("/").utf8), now: 0)
    XCTAssertEqual(busy.startDraining(), .none)
    let write = busy.responseReady(HTTPResponse(), now: 0)
    guard case .write(let bytes, true) = write else { return XCTFail("\(write)") }
    XCTAssertTrue(String(decoding: bytes, as: UTF8.self).contains("Connection: close"))
    XCTAssertEqual(busy.writeCompleted(now: 0), .close)
  }

  func testPeerCloseAfterCompleteRequestStillAnswers() {
    var machine = HTTPConnectionStateMachine()
    guard case .dispatch = machine.bytesReceived(Array(request("/").utf8), now: 0) else { return XCTFail() }
    XCTAssertEqual(machine.peerClosedInput(now: 0), .none)
    guard case .write(_, true) = machine.responseReady(HTTPResponse(), now: 0) else { return XCTFail() }
    XCTAssertEqual(machine.writeCompleted(now: 0), .close)
  }

  func testPeerCloseMidRequestCloses() {
    var machine = HTTPConnectionStateMachine()
    XCTAssertEqual(machine.bytesReceived(Array("GET / HT".utf8), now: 0), .readMore)
    XCTAssertEqual(machine.peerClosedInput(now: 0), .close)
  }

  func testExpectContinue() {
    var machine = HTTPConnectionStateMachine()
    let head = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    XCTAssertEqual(
      machine.bytesReceived(Array(head.utf8), now: 0), .sendContinue(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)))
    guard case .dispatch(let request) = machine.bytesReceived(Array("hi".utf8), now: 0) else { return XCTFail() }
    XCTAssertEqual(request.body, Array("hi".utf8))
  }

  func testLateOrRepeatedRepliesAreIgnored() {
    var machine = HTTPConnectionStateMachine()
    XCTAssertEqual(machine.responseReady(HTTPResponse(), now: 0), .none)
    _ = machine.bytesReceived(Array(request("/").utf8), now: 0)
    guard case .write = machine.responseReady(HTTPResponse(), now: 0) else { return XCTFail() }
    XCTAssertEqual(machine.responseReady(HTTPResponse(), now: 0), .none)
  }
}
