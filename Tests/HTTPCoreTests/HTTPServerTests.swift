import Dispatch
import HTTPCore
import HTTPServer
import XCTest

/// Answers `METHOD target\n` followed by the request body; `/big` answers 8 MiB; `/slow` waits 300 ms on another
/// queue before replying.
struct EchoResponder: HTTPResponder {
  func respond(to request: HTTPRequest, reply: @escaping @Sendable (HTTPResponse) -> Void) {
    if request.path == "/big" {
      reply(HTTPResponse(body: (0..<(8 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }))
      return
    }
    let response = HTTPResponse(
      headers: ["Content-Type": "text/plain", "X-Echo-Method": request.method.rawValue],
      body: Array("\(request.method) \(request.target)\n".utf8) + request.body)
    if request.path == "/slow" {
      DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(300)) { reply(response) }
    } else {
      reply(response)
    }
  }
}

final class HTTPServerTests: XCTestCase {
  private var server: HTTPServer!
  private var port = 0

  override func setUpWithError() throws {
    server = HTTPServer(configuration: HTTPServerConfiguration(port: 0), responder: EchoResponder())
    port = try server.start()
    XCTAssertGreaterThan(port, 0)
  }

  override func tearDown() {
    server.shutdown()
    server.wait()
    XCTAssertEqual(server.connectionCount, 0)
  }

  func testKeepAliveSequence() throws {
    let client = try TestClient(port: port)
    try client.send("GET /first HTTP/1.1\r\nHost: test\r\n\r\n")
    let first = try XCTUnwrap(try client.readResponse())
    XCTAssertEqual(first.status, 200)
    XCTAssertEqual(first.text, "GET /first\n")
    XCTAssertNil(first.header("Connection"))
    XCTAssertNotNil(first.header("Date"))
    try client.send("POST /second HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\n\r\nbody")
    let second = try XCTUnwrap(try client.readResponse())
    XCTAssertEqual(second.text, "POST /second\nbody")
  }

  func testPipelinedRequestsAnsweredInOrder() throws {
    let client = try TestClient(port: port)
    try client.send(
      "GET /slow HTTP/1.1\r\nHost: test\r\n\r\nPOST /two HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nabc"
        + "GET /three HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    XCTAssertEqual(try client.readResponse()?.text, "GET /slow\n")
    XCTAssertEqual(try client.readResponse()?.text, "POST /two\nabc")
    let third = try XCTUnwrap(try client.readResponse())
    XCTAssertEqual(third.text, "GET /three\n")
    XCTAssertEqual(third.header("Connection"), "close")
    XCTAssertTrue(try client.isClosedByServer())
  }

  func testManyPipelinedRequestsAnsweredAtOnceComeInOrder() throws {
    // More pipelined requests than are answered inside one another, some answered later from another queue: every
    // response comes, in order, on the one connection.
    let client = try TestClient(port: port)
    let count = 200
    var requests = ""
    for index in 0..<count {
      let path = index % 50 == 7 ? "/slow" : "/n\(index)"
      requests +=
        "GET \(path) HTTP/1.1\r\nHost: test\r\n" + (index == count - 1 ? "Connection: close\r\n" : "") + "\r\n"
    }
    try client.send(requests)
    for index in 0..<count {
      let path = index % 50 == 7 ? "/slow" : "/n\(index)"
      XCTAssertEqual(try client.readResponse()?.text, "GET \(path)\n", "response \(index)")
    }
    XCTAssertTrue(try client.isClosedByServer())
  }

  func testMalformedRequestGets400AndCloses() throws {
    let client = try TestClient(port: port)
    try client.send("GET / HTTP/1.1\r\nHost: test\r\nBad Header\r\n\r\n")
    let response = try XCTUnwrap(try client.readResponse())
    XCTAssertEqual(response.status, 400)
    XCTAssertEqual(response.header("Content-Type"), "application/problem+json")
    XCTAssertEqual(response.header("Connection"), "close")
    XCTAssertTrue(response.text.hasPrefix(#"{"type":"about:blank","title":"Bad Request","status":400,"detail":"#))
    XCTAssertTrue(try client.isClosedByServer())

    // The server still serves new connections.
    let next = try TestClient(port: port)
    try next.send("GET /again HTTP/1.1\r\nHost: test\r\n\r\n")
    XCTAssertEqual(try next.readResponse()?.text, "GET /again\n")
  }

  func testSmugglingAttemptIsRejected() throws {
    let client = try TestClient(port: port)
    try client.send(
      "POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n"
    )
    XCTAssertEqual(try client.readResponse()?.status, 400)
    XCTAssertTrue(try client.isClosedByServer())
  }

  func testHeaderOverLimitGets431() throws {
    let client = try TestClient(port: port)
    try client.send("GET / HTTP/1.1\r\nHost: test\r\nX-Big: " + String(repeating: "b", count: 20_000) + "\r\n\r\n")
    let response = try XCTUnwrap(try client.readResponse())
    XCTAssertEqual(response.status, 431)
    XCTAssertEqual(response.header("Connection"), "close")
  }

  func testHeadHasNoBody() throws {
    let client = try TestClient(port: port)
    try client.send("HEAD /resource HTTP/1.1\r\nHost: test\r\n\r\nGET /after HTTP/1.1\r\nHost: test\r\n\r\n")
    let head = try XCTUnwrap(try client.readResponse(bodyless: true))
    XCTAssertEqual(head.header("Content-Length"), "15")
    XCTAssertEqual(try client.readResponse()?.text, "GET /after\n")
  }

  func testHTTP10ClosesByDefault() throws {
    let client = try TestClient(port: port)
    try client.send("GET /old HTTP/1.0\r\n\r\n")
    let response = try XCTUnwrap(try client.readResponse())
    XCTAssertEqual(response.text, "GET /old\n")
    XCTAssertEqual(response.header("Connection"), "close")
    XCTAssertTrue(try client.isClosedByServer())
  }

  func testChunkedRequestAndExpectContinue() throws {
    let client = try TestClient(port: port)
    try client.send(
      "POST /c HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
    XCTAssertEqual(try client.readResponse()?.status, 100)
    try client.send("5\r\nhello\r\n0\r\n\r\n")
    XCTAssertEqual(try client.readResponse()?.text, "POST /c\nhello")
  }

  func testLargeBodiesBothWays() throws {
    let client = try TestClient(port: port)
    let upload = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    try client.send(
      Array("POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: \(upload.count)\r\n\r\n".utf8) + upload)
    let echoed = try XCTUnwrap(try client.readResponse())
    XCTAssertEqual(echoed.body.count, upload.count + "POST /upload\n".utf8.count)
    XCTAssertTrue(echoed.body.dropFirst(13).elementsEqual(upload))

    // 8 MiB does not fit the socket buffer: the server must handle partial writes (EAGAIN, write source).
    try client.send("GET /big HTTP/1.1\r\nHost: test\r\n\r\n")
    Thread.sleep(forTimeInterval: 0.2)
    let big = try XCTUnwrap(try client.readResponse())
    XCTAssertEqual(big.body.count, 8 << 20)
    XCTAssertTrue(big.body.enumerated().allSatisfy { $0.element == UInt8(truncatingIfNeeded: $0.offset &* 31) })
  }

  /// The open sockets of this process, as `fd -> socket:[inode]` (Dispatch's own eventfds and timerfds excluded).
  private func openSockets() throws -> Set<String> {
    let names = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")
    return Set(
      names.compactMap { name in
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + name),
          target.hasPrefix("socket:")
        else { return nil }
        return "\(name) -> \(target)"
      })
  }

  func testPeerCloseAndResetDoNotLeakConnections() throws {
    let socketsBefore = try openSockets()
    for _ in 0..<20 {
      let half = try TestClient(port: port)
      try half.send("GET / HT")
      half.close()
      let quiet = try TestClient(port: port)
      quiet.close()
      let inFlight = try TestClient(port: port)
      try inFlight.send("GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
      inFlight.close()
    }
    // A client that half-closes after a complete request still gets its answer.
    let polite = try TestClient(port: port)
    try polite.send("GET /bye HTTP/1.1\r\nHost: test\r\n\r\n")
    polite.shutdownWrite()
    XCTAssertEqual(try polite.readResponse()?.text, "GET /bye\n")
    XCTAssertTrue(try polite.isClosedByServer())
    polite.close()

    let deadline = Date().addingTimeInterval(5)
    while server.connectionCount > 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
    XCTAssertEqual(server.connectionCount, 0)
    // The late replies to the abandoned /slow requests must find their connections gone, not reopen anything.
    Thread.sleep(forTimeInterval: 0.4)
    let leaked = try openSockets().subtracting(socketsBefore)
    XCTAssertTrue(leaked.isEmpty, "socket descriptors leaked: \(leaked)")
  }

  func testShutdownFinishesInFlightRequests() throws {
    let idle = try TestClient(port: port)
    try idle.send("GET /warm HTTP/1.1\r\nHost: test\r\n\r\n")
    XCTAssertNotNil(try idle.readResponse())
    let busy = try TestClient(port: port)
    try busy.send("GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
    Thread.sleep(forTimeInterval: 0.05)
    server.shutdown()
    let response = try XCTUnwrap(try busy.readResponse())
    XCTAssertEqual(response.text, "GET /slow\n")
    XCTAssertEqual(response.header("Connection"), "close")
    XCTAssertTrue(try busy.isClosedByServer())
    XCTAssertTrue(try idle.isClosedByServer())
    server.wait()
    XCTAssertThrowsError(try TestClient(port: port), "the listener is closed")
  }

  func testAddressInUse() throws {
    let second = HTTPServer(configuration: HTTPServerConfiguration(port: port), responder: EchoResponder())
    XCTAssertThrowsError(try second.start()) { XCTAssertEqual($0 as? HTTPServerError, .addressInUse) }
    XCTAssertThrowsError(try server.start()) { XCTAssertEqual($0 as? HTTPServerError, .alreadyStarted) }
    second.shutdown()
    second.wait()
  }

  func testInvalidHost() {
    let bad = HTTPServer(
      configuration: HTTPServerConfiguration(host: "no-such-host.invalid", port: 0), responder: EchoResponder())
    XCTAssertThrowsError(try bad.start()) { XCTAssertEqual($0 as? HTTPServerError, .invalidAddress) }
  }

  func testOtherHosts() throws {
    for host in ["localhost", "0.0.0.0", "::1"] {
      let other = HTTPServer(configuration: HTTPServerConfiguration(host: host, port: 0), responder: EchoResponder())
      let otherPort: Int
      do {
        otherPort = try other.start()
      } catch {
        if host == "::1" { continue }  // No IPv6 on this machine.
        throw error
      }
      let client = try TestClient(port: otherPort, host: host == "::1" ? "::1" : "127.0.0.1")
      try client.send("GET /\(host) HTTP/1.1\r\nHost: test\r\n\r\n")
      XCTAssertEqual(try client.readResponse()?.text, "GET /\(host)\n", host)
      client.close()
      other.shutdown()
      other.wait()
    }
  }

  func testManyConcurrentClients() throws {
    let port = self.port
    let failures = DispatchQueue(label: "failures")
    nonisolated(unsafe) var failed = 0
    DispatchQueue.concurrentPerform(iterations: 16) { index in
      do {
        let client = try TestClient(port: port)
        for request in 0..<50 {
          try client.send("GET /\(index)/\(request) HTTP/1.1\r\nHost: test\r\n\r\n")
          guard try client.readResponse()?.text == "GET /\(index)/\(request)\n" else {
            throw TestClientError(description: "mismatch")
          }
        }
      } catch {
        failures.sync { failed += 1 }
      }
    }
    XCTAssertEqual(failed, 0)
  }
}
