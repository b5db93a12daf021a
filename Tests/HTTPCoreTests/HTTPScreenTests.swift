// The header-stage screen and request ids: the parser's nextHead(), the state machine's screening and id stamping,
// and both over a real socket.

import Dispatch
import HTTPCore
import HTTPServer
import Logging
import Synchronization
import XCTest

/// Remembers every head a screen saw.
private final class HeadLog: Sendable {
  private let heads = Mutex<[HTTPRequestHead]>([])
  var all: [HTTPRequestHead] { heads.withLock { $0 } }
  func append(_ head: HTTPRequestHead) { heads.withLock { $0.append(head) } }
}

/// Refuses every request without `Authorization: Bearer good` with a 401, except under `/open`.
private func authScreen(_ log: HeadLog) -> HTTPConnectionStateMachine.Screen {
  { head in
    log.append(head)
    if head.path.hasPrefix("/open") || head.headers["authorization"] == "Bearer good" { return nil }
    var response = HTTPResponse.problem(status: .unauthorized, detail: "a token is required")
    response.headers.add(name: "WWW-Authenticate", value: "Bearer")
    return response
  }
}

private func text(_ action: HTTPConnectionStateMachine.Action) -> String? {
  if case .write(let bytes, _) = action { return String(decoding: bytes, as: UTF8.self) }
  return nil
}

/// The value of `name` in a serialized response.
private func field(_ name: String, in response: String) -> String? {
  for line in response.split(separator: "\r\n") {
    let parts = line.split(separator: ":", maxSplits: 1)
    if parts.count == 2 && parts[0].lowercased() == name.lowercased() {
      return String(parts[1].drop { $0 == " " })
    }
  }
  return nil
}

final class HTTPRequestParserHeadTests: XCTestCase {
  func testNextHeadComesOnceBeforeTheBodyUnderEverySplit() throws {
    let input = Array(
      ("POST /a?q=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
        + "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
        + "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n").utf8)
    let reference = parse(input, chunkSize: .max).requests
    XCTAssertEqual(reference.map(\.target), ["/a?q=1", "/b", "/c"])
    for strategy in feedingStrategies {
      var parser = HTTPRequestParser()
      var heads: [HTTPRequestHead] = []
      var requests: [HTTPRequest] = []
      var offset = 0
      while offset < input.count {
        let end = min(input.count, offset + min(strategy.chunkSize, input.count))
        parser.feed(Array(input[offset..<end]))
        offset = end
        while true {
          if let head = try parser.nextHead() {
            // The head arrives before its request, and the request's body is not yet consumed.
            XCTAssertEqual(heads.count, requests.count, strategy.name)
            heads.append(head)
          }
          guard let request = try parser.next() else { break }
          requests.append(request)
        }
      }
      XCTAssertEqual(requests, reference, strategy.name)
      XCTAssertEqual(heads, reference.map(\.head), strategy.name)
      XCTAssertEqual(parser.bufferedByteCount, 0, strategy.name)
    }
  }

  func testNextHeadKeepsTheLimitsAndSmugglingRules() {
    var tooLarge = HTTPRequestParser(limits: HTTPParserLimits(maxBodyBytes: 10))
    tooLarge.feed(Array("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n".utf8))
    XCTAssertThrowsError(try tooLarge.nextHead()) { XCTAssertEqual($0 as? HTTPParserError, .bodyTooLarge) }
    // The parser stays failed.
    XCTAssertThrowsError(try tooLarge.next()) { XCTAssertEqual($0 as? HTTPParserError, .bodyTooLarge) }

    var smuggled = HTTPRequestParser()
    smuggled.feed(
      Array("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n".utf8))
    XCTAssertThrowsError(try smuggled.nextHead()) {
      XCTAssertEqual($0 as? HTTPParserError, .contentLengthWithTransferEncoding)
    }

    var bare = HTTPRequestParser()
    bare.feed(Array("GET / HTTP/1.1\nHost: h\r\n\r\n".utf8))
    XCTAssertThrowsError(try bare.nextHead()) { XCTAssertEqual($0 as? HTTPParserError, .bareLineFeed) }
  }
}

final class HTTPConnectionScreenTests: XCTestCase {
  func testRefusedRequestWithHugeBodyAndExpectContinueGetsTheScreensResponseAndNo100() throws {
    let log = HeadLog()
    var machine = HTTPConnectionStateMachine(screen: authScreen(log))
    let head = "POST /evaluate HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 60000000\r\n\r\n"
    let action = machine.bytesReceived(Array(head.utf8), now: 0)
    guard case .write(let bytes, let thenClose) = action else { return XCTFail("\(action)") }
    XCTAssertTrue(thenClose)
    let response = String(decoding: bytes, as: UTF8.self)
    XCTAssertTrue(response.hasPrefix("HTTP/1.1 401 Unauthorized\r\n"), response)
    XCTAssertFalse(response.contains("100 Continue"), response)
    XCTAssertEqual(field("WWW-Authenticate", in: response), "Bearer")
    XCTAssertEqual(field("Connection", in: response), "close")
    let id = try XCTUnwrap(field("X-Request-Id", in: response))
    XCTAssertEqual(log.all.count, 1)
    XCTAssertEqual(log.all.first?.headers["x-request-id"], id)
    XCTAssertEqual(machine.currentRequestID, id)
    XCTAssertEqual(machine.currentHead?.target, "/evaluate")
    // Body bytes that still arrive are neither dispatched nor answered again.
    XCTAssertEqual(machine.bytesReceived([UInt8](repeating: 120, count: 100_000), now: 0), .none)
    XCTAssertEqual(machine.writeCompleted(now: 0), .close)
    XCTAssertTrue(machine.isClosed)
    XCTAssertEqual(log.all.count, 1)
  }

  func testScreenRunsBeforeContinueAndOncePerRequestUnderEverySplit() {
    let head =
      "POST /x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer good\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
    let input = Array((head + "body").utf8)
    for strategy in feedingStrategies {
      let log = HeadLog()
      var machine = HTTPConnectionStateMachine(screen: authScreen(log))
      var continues = 0
      var dispatched: [HTTPRequest] = []
      var offset = 0
      while offset < input.count {
        let end = min(input.count, offset + min(strategy.chunkSize, input.count))
        let action = machine.bytesReceived(Array(input[offset..<end]), now: 0)
        offset = end
        switch action {
        case .sendContinue:
          XCTAssertEqual(log.all.count, 1, "the screen comes first (\(strategy.name))")
          continues += 1
        case .dispatch(let request): dispatched.append(request)
        case .readMore, .none: break
        default: XCTFail("\(strategy.name): \(action)")
        }
      }
      XCTAssertEqual(log.all.count, 1, strategy.name)
      // `100 Continue` is due when the read that completes the head does not bring the whole body too.
      let headCount = head.utf8.count
      let chunk = min(strategy.chunkSize, input.count)
      let completingReadEnd = min(input.count, (headCount + chunk - 1) / chunk * chunk)
      XCTAssertEqual(continues, completingReadEnd < input.count ? 1 : 0, strategy.name)
      XCTAssertEqual(dispatched.count, 1, strategy.name)
      XCTAssertEqual(dispatched.first?.body, Array("body".utf8), strategy.name)
      // The application sees the same id the screen saw.
      XCTAssertEqual(dispatched.first?.headers["x-request-id"], log.all.first?.headers["x-request-id"])
    }
  }

  func testRefusedBodilessRequestKeepsTheConnection() throws {
    let log = HeadLog()
    var machine = HTTPConnectionStateMachine(screen: authScreen(log))
    let input =
      "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
      + "GET /metrics HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer good\r\n\r\n"
    let first = machine.bytesReceived(Array(input.utf8), now: 0)
    guard case .write(let bytes, false) = first else { return XCTFail("\(first)") }
    let response = String(decoding: bytes, as: UTF8.self)
    XCTAssertTrue(response.hasPrefix("HTTP/1.1 401"), response)
    XCTAssertNil(field("Connection", in: response))
    guard case .dispatch(let request) = machine.writeCompleted(now: 0) else { return XCTFail() }
    XCTAssertEqual(request.headers["authorization"], "Bearer good")
    XCTAssertEqual(log.all.count, 2)
    let ids = log.all.compactMap { $0.headers["x-request-id"] }
    XCTAssertEqual(Set(ids).count, 2, "\(ids)")
    XCTAssertEqual(field("X-Request-Id", in: response), ids[0])
  }

  func testNoScreenDispatchesAsBefore() {
    var machine = HTTPConnectionStateMachine()
    let head = "POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    guard case .sendContinue = machine.bytesReceived(Array(head.utf8), now: 0) else { return XCTFail() }
    guard case .dispatch(let request) = machine.bytesReceived(Array("hi".utf8), now: 0) else { return XCTFail() }
    XCTAssertEqual(request.body, Array("hi".utf8))
  }
}

final class HTTPRequestIDTests: XCTestCase {
  private func dispatchedID(_ extra: String) -> (request: String?, response: String?) {
    var machine = HTTPConnectionStateMachine()
    guard
      case .dispatch(let request) = machine.bytesReceived(
        Array("GET / HTTP/1.1\r\nHost: a\r\n\(extra)\r\n".utf8), now: 0)
    else {
      XCTFail()
      return (nil, nil)
    }
    XCTAssertEqual(request.headers.values(for: "x-request-id").count, 1)
    let response = text(machine.responseReady(HTTPResponse(), now: 0)) ?? ""
    return (request.headers["x-request-id"], field("X-Request-Id", in: response))
  }

  func testAValidClientIDIsKeptAndEchoed() {
    let (request, response) = dispatchedID("X-Request-Id: trace-42/abc:def\r\n")
    XCTAssertEqual(request, "trace-42/abc:def")
    XCTAssertEqual(response, "trace-42/abc:def")
    let longest = String(repeating: "z", count: 128)
    XCTAssertEqual(dispatchedID("x-request-id: \(longest)\r\n").response, longest)
  }

  func testInvalidOrMissingIDsAreReplacedByGeneratedOnes() {
    for extra in [
      "", "X-Request-Id: \(String(repeating: "z", count: 129))\r\n", "X-Request-Id: has space\r\n",
      "X-Request-Id: caf\u{E9}\r\n", "X-Request-Id:\r\n",
    ] {
      let (request, response) = dispatchedID(extra)
      XCTAssertEqual(request, response, extra)
      XCTAssertNotNil(request.flatMap { $0.wholeMatch(of: /[0-9a-v]{6}-[0-9a-v]+/) }, "\(extra): \(request ?? "nil")")
    }
    // Of repeated fields the first wins when valid, and only one is left.
    XCTAssertEqual(dispatchedID("X-Request-Id: one\r\nX-Request-Id: two\r\n").request, "one")
  }

  func testGeneratedIDsAreUniqueAcrossThreads() {
    let ids = Mutex<Set<String>>([])
    DispatchQueue.concurrentPerform(iterations: 4) { _ in
      var local: [String] = []
      for _ in 0..<10_000 { local.append(HTTPRequestID.generate()) }
      ids.withLock { $0.formUnion(local) }
    }
    XCTAssertEqual(ids.withLock { $0.count }, 40_000)
    let sample = HTTPRequestID.generate()
    XCTAssertNotNil(sample.wholeMatch(of: /[0-9a-v]{6}-[0-9a-v]+/), sample)
    XCTAssertTrue(HTTPRequestID.isValid(sample))
    // Ids of one process share their prefix and differ in their counter.
    let next = HTTPRequestID.generate()
    XCTAssertEqual(next.prefix(7), sample.prefix(7))
    XCTAssertNotEqual(next, sample)
  }

  func testErrorResponsesCarryAnID() throws {
    // A parse error before any head: a generated id.
    var broken = HTTPConnectionStateMachine()
    let early = try XCTUnwrap(text(broken.bytesReceived(Array("BROKEN\r\n\r\n".utf8), now: 0)))
    XCTAssertTrue(early.hasPrefix("HTTP/1.1 400"), early)
    XCTAssertEqual(field("X-Request-Id", in: early), broken.currentRequestID)
    XCTAssertNotNil(broken.currentRequestID)

    // A malformed chunk after the head: the request's own id.
    var chunked = HTTPConnectionStateMachine()
    let head = "POST / HTTP/1.1\r\nHost: a\r\nX-Request-Id: mine\r\nTransfer-Encoding: chunked\r\n\r\n"
    XCTAssertEqual(chunked.bytesReceived(Array(head.utf8), now: 0), .readMore)
    let late = try XCTUnwrap(text(chunked.bytesReceived(Array("zz\r\n".utf8), now: 0)))
    XCTAssertTrue(late.hasPrefix("HTTP/1.1 400"), late)
    XCTAssertEqual(field("X-Request-Id", in: late), "mine")

    // A body that does not arrive in time: 408 with the request's id.
    var slow = HTTPConnectionStateMachine()
    let slowHead = "POST / HTTP/1.1\r\nHost: a\r\nX-Request-Id: slow-1\r\nContent-Length: 9\r\n\r\n"
    XCTAssertEqual(slow.bytesReceived(Array(slowHead.utf8), now: 0), .readMore)
    let timedOut = try XCTUnwrap(text(slow.readTimedOut(now: 0)))
    XCTAssertTrue(timedOut.hasPrefix("HTTP/1.1 408"), timedOut)
    XCTAssertEqual(field("X-Request-Id", in: timedOut), "slow-1")

    // The application's own X-Request-Id is replaced by the request's.
    var replaced = HTTPConnectionStateMachine()
    _ = replaced.bytesReceived(Array("GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: r1\r\n\r\n".utf8), now: 0)
    let answer = try XCTUnwrap(text(replaced.responseReady(HTTPResponse(headers: ["X-Request-Id": "other"]), now: 0)))
    XCTAssertEqual(field("X-Request-Id", in: answer), "r1")
    XCTAssertEqual(answer.components(separatedBy: "X-Request-Id").count, 2, answer)
  }
}

/// Echoes the request's id and counts the requests that reached it; refuses like ``authScreen(_:)``.
private final class ScreeningResponder: HTTPResponder {
  let log = HeadLog()
  let responded = Atomic<Int>(0)

  func screen(_ head: HTTPRequestHead) -> HTTPResponse? { authScreen(log)(head) }

  func respond(to request: HTTPRequest, reply: @escaping @Sendable (HTTPResponse) -> Void) {
    responded.add(1, ordering: .relaxed)
    reply(HTTPResponse(body: Array("id=\(request.headers["x-request-id"] ?? "none") \(request.body.count)".utf8)))
  }
}

/// Collects log records.
private struct CapturingLogHandler: LogHandler {
  let records: LogRecords
  var logLevel: Logger.Level = .info
  var metadata: Logger.Metadata = [:]
  subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  func log(event: LogEvent) {
    records.records.withLock { $0.append((event.message.description, event.metadata ?? [:])) }
  }
}

private final class LogRecords: Sendable {
  let records = Mutex<[(message: String, metadata: Logger.Metadata)]>([])
}

final class HTTPServerScreenTests: XCTestCase {
  private var server: HTTPServer!
  private var responder: ScreeningResponder!
  private var port = 0
  private let logs = LogRecords()

  override func setUpWithError() throws {
    responder = ScreeningResponder()
    let logs = self.logs
    var logger = Logger(label: "test") { _ in CapturingLogHandler(records: logs) }
    logger.logLevel = .info
    server = HTTPServer(configuration: HTTPServerConfiguration(port: 0), responder: responder, logger: logger)
    port = try server.start()
  }

  override func tearDown() {
    server.shutdown()
    server.wait()
  }

  func testRefusedBeforeTheBodyIsSentThenClosed() throws {
    let client = try TestClient(port: port)
    try client.send(
      "POST /evaluate HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 60000000\r\n"
        + "X-Request-Id: client-7\r\n\r\n")
    let response = try XCTUnwrap(try client.readResponse())
    XCTAssertEqual(response.status, 401)
    XCTAssertEqual(response.header("WWW-Authenticate"), "Bearer")
    XCTAssertEqual(response.header("Connection"), "close")
    XCTAssertEqual(response.header("X-Request-Id"), "client-7")
    XCTAssertEqual(response.header("Content-Type"), "application/problem+json")
    XCTAssertTrue(try client.isClosedByServer())
    XCTAssertEqual(responder.responded.load(ordering: .relaxed), 0)
  }

  func testRefusedWhileTheClientSendsTheBodyAnyway() throws {
    let client = try TestClient(port: port)
    try client.send("POST /evaluate HTTP/1.1\r\nHost: t\r\nContent-Length: 4194304\r\n\r\n")
    // The client goes on sending part of its body; the response still arrives intact.
    try client.send([UInt8](repeating: 97, count: 1 << 20))
    let response = try XCTUnwrap(try client.readResponse())
    XCTAssertEqual(response.status, 401)
    XCTAssertEqual(response.header("Connection"), "close")
    XCTAssertEqual(responder.responded.load(ordering: .relaxed), 0)
  }

  func testRefusedGetKeepsTheConnectionAndIDsAreEchoedAndLogged() throws {
    let client = try TestClient(port: port)
    try client.send("GET /metrics HTTP/1.1\r\nHost: t\r\nX-Request-Id: first\r\n\r\n")
    let refused = try XCTUnwrap(try client.readResponse())
    XCTAssertEqual(refused.status, 401)
    XCTAssertNil(refused.header("Connection"))
    XCTAssertEqual(refused.header("X-Request-Id"), "first")

    try client.send("POST /x HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\nContent-Length: 3\r\n\r\nabc")
    let passed = try XCTUnwrap(try client.readResponse())
    XCTAssertEqual(passed.status, 200)
    let generated = try XCTUnwrap(passed.header("X-Request-Id"))
    XCTAssertEqual(passed.text, "id=\(generated) 3")
    XCTAssertTrue(HTTPRequestID.isValid(generated))

    try client.send("GET /open HTTP/1.1\r\nHost: t\r\nX-Request-Id: bad id with spaces\r\n\r\n")
    let open = try XCTUnwrap(try client.readResponse())
    let replaced = try XCTUnwrap(open.header("X-Request-Id"))
    XCTAssertNotEqual(replaced, generated)
    XCTAssertEqual(open.text, "id=\(replaced) 0")
    XCTAssertEqual(responder.responded.load(ordering: .relaxed), 2)

    // Every request has its id in its log line, the refused one included.
    let logged = logs.records.withLock { $0 }.compactMap { $0.metadata["request_id"]?.description }
    XCTAssertEqual(logged, ["first", generated, replaced])
  }

  func testParseErrorsCarryAnID() throws {
    let client = try TestClient(port: port)
    try client.send("GET /open HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n")
    let response = try XCTUnwrap(try client.readResponse())
    XCTAssertEqual(response.status, 400)
    XCTAssertTrue(HTTPRequestID.isValid(try XCTUnwrap(response.header("X-Request-Id"))))
  }
}
