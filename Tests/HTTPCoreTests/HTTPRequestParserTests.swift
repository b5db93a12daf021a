import HTTPCore
import XCTest

final class HTTPRequestParserTests: XCTestCase {
  func testSimpleGet() throws {
    let requests = assertParses(
      "GET /graphs/abc?x=1&y=2 HTTP/1.1\r\nHost: localhost:8080\r\nAccept: */*\r\nX-Trace:  spaced value \t\r\n\r\n",
      count: 1)
    let request = try XCTUnwrap(requests.first)
    XCTAssertEqual(request.method, .get)
    XCTAssertEqual(request.target, "/graphs/abc?x=1&y=2")
    XCTAssertEqual(request.path, "/graphs/abc")
    XCTAssertEqual(request.query, "x=1&y=2")
    XCTAssertEqual(request.version, .http1_1)
    XCTAssertEqual(request.headers.map(\.name), ["Host", "Accept", "X-Trace"])
    XCTAssertEqual(request.headers["host"], "localhost:8080")
    XCTAssertEqual(request.headers["X-TRACE"], "spaced value")
    XCTAssertNil(request.headers["Content-Length"])
    XCTAssertEqual(request.body, [])
    XCTAssertTrue(request.keepAlive)
  }

  func testPathWithoutQuery() throws {
    let request = try XCTUnwrap(assertParses("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").first)
    XCTAssertEqual(request.path, "/healthz")
    XCTAssertNil(request.query)
  }

  func testPostWithContentLength() throws {
    let body = #"{"expr":"x^2","at":{"x":3}}"#
    let requests = assertParses(
      "POST /gradient HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
        + body, count: 1)
    XCTAssertEqual(requests.first?.method, .post)
    XCTAssertEqual(requests.first.map { String(decoding: $0.body, as: UTF8.self) }, body)
  }

  func testSeveralRequestsInOneBuffer() {
    let input =
      "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
      + "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
      + "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
      + "DELETE /d HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    let requests = assertParses(input, count: 4)
    XCTAssertEqual(requests.map(\.target), ["/a", "/b", "/c", "/d"])
    XCTAssertEqual(requests.map { String(decoding: $0.body, as: UTF8.self) }, ["", "hello", "abc", ""])
    XCTAssertEqual(requests.map(\.keepAlive), [true, true, true, false])
  }

  /// A large body (64 KiB or more, with a declared length) arrives in place (`receiveBody`), fed, or both in any
  /// mix, and comes out whole; the bytes after it, fed with its last ones, start the next request.
  func testLargeBodyInPlaceAndFed() throws {
    let body = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
    let head = Array("POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
    let next = Array("GET /after HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
    // (bytes of the body sent with the head, bytes per step, whether steps alternate in place and fed)
    for (withHead, step, mixed) in [
      (0, 65_536, false), (10, 4_099, true), (100_000, 7, true), (199_999, 1, false), (0, 200_000, false),
    ] {
      let label = "\(withHead) with the head, steps of \(step)\(mixed ? ", mixed" : "")"
      var parser = HTTPRequestParser()
      parser.feed(head + body[0..<withHead])
      XCTAssertNil(try parser.next(), label)
      XCTAssertTrue(parser.receivesBodyInPlace, label)
      XCTAssertEqual(parser.bufferedByteCount, withHead, label)
      parser.receiveBody { _ in 0 }  // nothing read: nothing changes
      var offset = withHead
      var inPlace = true
      // Every step but the last; the last bytes go with the next request.
      while body.count - offset > step {
        if inPlace {
          parser.receiveBody { space in
            XCTAssertEqual(space.count, body.count - offset, label)
            body[offset..<offset + step].withUnsafeBytes { space.copyMemory(from: $0) }
            return step
          }
        } else {
          parser.feed(Array(body[offset..<offset + step]))
        }
        offset += step
        if mixed { inPlace.toggle() }
        XCTAssertNil(try parser.next(), label)
      }
      parser.feed(Array(body[offset...]) + next)
      XCTAssertFalse(parser.receivesBodyInPlace, label)
      let request = try XCTUnwrap(try parser.next(), label)
      XCTAssertEqual(request.target, "/big", label)
      XCTAssertTrue(request.body == body, label)
      XCTAssertEqual(try parser.next()?.target, "/after", label)
      XCTAssertTrue(parser.isIdle, label)
      XCTAssertEqual(parser.bufferedByteCount, 0, label)
    }
    // The whole large request in one piece, and one with an empty body after it.
    var parser = HTTPRequestParser()
    parser.feed(head + body + next)
    XCTAssertTrue(try parser.next()?.body == body)
    XCTAssertEqual(try parser.next()?.body, [])
    XCTAssertFalse(parser.receivesBodyInPlace)
  }

  func testPartialRequestStaysBuffered() throws {
    var parser = HTTPRequestParser()
    parser.feed(Array("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HT".utf8))
    XCTAssertEqual(try parser.next()?.target, "/")
    XCTAssertNil(try parser.next())
    XCTAssertFalse(parser.isIdle)
    parser.feed(Array("TP/1.1\r\nHost: a\r\n\r\n".utf8))
    XCTAssertEqual(try parser.next()?.target, "/next")
    XCTAssertTrue(parser.isIdle)
  }

  func testChunkedBodyWithExtensionsAndTrailers() throws {
    let input =
      "POST /vjp HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      + "4;name=value\r\nWiki\r\n5 ; x\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Checksum: 1\r\n\r\n"
    let request = try XCTUnwrap(assertParses(input, count: 1).first)
    XCTAssertEqual(String(decoding: request.body, as: UTF8.self), "Wikipedia in\r\n\r\nchunks.")
  }

  func testLeadingEmptyLineIsIgnored() {
    assertParses("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", count: 1)
  }

  func testHTTP10WithoutHost() throws {
    let request = try XCTUnwrap(assertParses("GET / HTTP/1.0\r\n\r\n", count: 1).first)
    XCTAssertEqual(request.version, .http1_0)
    XCTAssertFalse(request.keepAlive)
  }

  func testRepeatedIdenticalContentLengthIsAccepted() {
    assertParses("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc", count: 1)
  }

  func testUnknownMethodToken() throws {
    let request = try XCTUnwrap(assertParses("PROPFIND /x HTTP/1.1\r\nHost: a\r\n\r\n").first)
    XCTAssertEqual(request.method.rawValue, "PROPFIND")
  }

  // MARK: - Malformed input

  func testBadRequestLines() {
    assertRejects("GET /\r\nHost: a\r\n\r\n", .invalidRequestLine, status: 400)
    assertRejects("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", .invalidRequestLine, status: 400)
    assertRejects("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", .invalidRequestLine, status: 400)
    assertRejects("GET / http/1.1\r\nHost: a\r\n\r\n", .invalidRequestLine, status: 400)
    assertRejects("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", .invalidRequestLine, status: 400)
    assertRejects("GET /a\u{7F}b HTTP/1.1\r\nHost: a\r\n\r\n", .invalidRequestLine, status: 400)
    assertRejects(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", .invalidRequestLine, status: 400)
  }

  func testUnsupportedVersion() {
    assertRejects("GET / HTTP/2.0\r\nHost: a\r\n\r\n", .unsupportedVersion, status: 505)
    assertRejects("GET / HTTP/0.9\r\nHost: a\r\n\r\n", .unsupportedVersion, status: 505)
  }

  func testBadHeaderFields() {
    assertRejects("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", .invalidHeaderField, status: 400)
    assertRejects("GET / HTTP/1.1\r\nHost : a\r\n\r\n", .invalidHeaderField, status: 400)
    assertRejects("GET / HTTP/1.1\r\n: empty\r\nHost: a\r\n\r\n", .invalidHeaderField, status: 400)
    assertRejects("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{0}b\r\n\r\n", .invalidHeaderField, status: 400)
    assertRejects("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{7F}\r\n\r\n", .invalidHeaderField, status: 400)
  }

  func testObsoleteLineFolding() {
    assertRejects("GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\n\r\n", .obsoleteLineFolding, status: 400)
    assertRejects("GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n\ttwo\r\n\r\n", .obsoleteLineFolding, status: 400)
  }

  func testBareCRAndBareLF() {
    assertRejects("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", .bareCarriageReturn, status: 400)
    assertRejects("GET / HTTP/1.1\rHost: a\r\n\r\n", .bareCarriageReturn, status: 400)
    assertRejects("GET / HTTP/1.1\nHost: a\r\n\r\n", .bareLineFeed, status: 400)
    assertRejects("GET / HTTP/1.1\r\nHost: a\n\n", .bareLineFeed, status: 400)
  }

  func testSmugglingContentLengthWithTransferEncoding() {
    assertRejects(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      .contentLengthWithTransferEncoding, status: 400)
    assertRejects(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
      .contentLengthWithTransferEncoding, status: 400)
  }

  func testConflictingContentLengths() {
    assertRejects(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nhello",
      .conflictingContentLength, status: 400)
    assertRejects(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 5\r\n\r\nhello", .conflictingContentLength, status: 400)
  }

  func testInvalidContentLengths() {
    for value in ["+5", "-1", "5a", "0x10", "", "1 2", "5,"] {
      assertRejects(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(value)\r\n\r\nhello", .invalidContentLength, status: 400)
    }
  }

  func testTransferEncodings() {
    assertRejects(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", .invalidTransferEncoding, status: 400)
    assertRejects(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", .invalidTransferEncoding, status: 400)
    assertRejects(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      .invalidTransferEncoding, status: 400)
    assertRejects(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .unsupportedTransferEncoding,
      status: 501)
    assertRejects("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", .invalidTransferEncoding, status: 400)
    assertParses("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n", count: 1)
  }

  func testHostIsRequiredOnceInHTTP11() {
    assertRejects("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", .invalidHost, status: 400)
    assertRejects("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", .invalidHost, status: 400)
  }

  func testBadChunks() {
    let head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    assertRejects(head + "zz\r\nab\r\n0\r\n\r\n", .invalidChunk, status: 400)
    assertRejects(head + "2\r\nabX\r\n0\r\n\r\n", .invalidChunk, status: 400)
    assertRejects(head + "2x\r\nab\r\n0\r\n\r\n", .invalidChunk, status: 400)
    assertRejects(head + "2\nab\r\n0\r\n\r\n", .invalidChunk, status: 400)
    assertRejects(head + "0\r\nbad trailer\r\n\r\n", .invalidHeaderField, status: 400)
  }

  func testUnsupportedExpectation() {
    assertRejects(
      "POST / HTTP/1.1\r\nHost: a\r\nExpect: something\r\nContent-Length: 1\r\n\r\na", .unsupportedExpectation,
      status: 417)
  }

  func testErrorsAreSticky() {
    var parser = HTTPRequestParser()
    parser.feed(Array("GET / HTTP/9.9\r\nHost: a\r\n\r\n".utf8))
    XCTAssertThrowsError(try parser.next()) { XCTAssertEqual($0 as? HTTPParserError, .unsupportedVersion) }
    parser.feed(Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
    XCTAssertThrowsError(try parser.next()) { XCTAssertEqual($0 as? HTTPParserError, .unsupportedVersion) }
  }

  // MARK: - Limits

  /// A request whose header section (request line through the final CRLF) is exactly `size` bytes.
  private func request(headerSectionSize size: Int) -> String {
    let fixed = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: \r\n\r\n"
    return "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + String(repeating: "p", count: size - fixed.utf8.count)
      + "\r\n\r\n"
  }

  func testHeaderSectionLimitIsInclusive() {
    let limits = HTTPParserLimits()
    XCTAssertEqual(limits.maxHeaderSectionBytes, 16_384)
    let exact = request(headerSectionSize: 16_384)
    XCTAssertEqual(exact.utf8.count, 16_384)
    assertParses(exact, count: 1)
    assertRejects(request(headerSectionSize: 16_385), .headerSectionTooLarge, status: 431)
  }

  func testHeaderOverLimitWithoutEndIs431() {
    // Never terminated: the parser must give up at the limit rather than buffer forever.
    let input = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + String(repeating: "p", count: 20_000)
    assertRejects(input, .headerSectionTooLarge, status: 431)
  }

  func testTooManyHeaderFields() {
    let limits = HTTPParserLimits(maxHeaderFields: 3)
    assertParses("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", count: 1, limits: limits)
    assertRejects(
      "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", .tooManyHeaderFields, status: 431, limits: limits)
  }

  func testBodyLimit() {
    let limits = HTTPParserLimits(maxBodyBytes: 5)
    XCTAssertEqual(HTTPParserLimits().maxBodyBytes, 64 * 1024 * 1024)
    assertParses("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", count: 1, limits: limits)
    assertRejects(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nhello!", .bodyTooLarge, status: 413, limits: limits)
    let chunked = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    assertParses(chunked + "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", count: 1, limits: limits)
    assertRejects(chunked + "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", .bodyTooLarge, status: 413, limits: limits)
    assertRejects(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999999\r\n\r\n", .bodyTooLarge,
      status: 413)
    assertRejects(chunked + "ffffffffffffffffffffffff\r\n", .bodyTooLarge, status: 413)
  }

  func testBodyTooLargeIsReportedBeforeTheBodyArrives() {
    var parser = HTTPRequestParser(limits: HTTPParserLimits(maxBodyBytes: 10))
    parser.feed(Array("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n".utf8))
    XCTAssertThrowsError(try parser.next()) { XCTAssertEqual($0 as? HTTPParserError, .bodyTooLarge) }
  }

  // MARK: - Expect: 100-continue

  func testExpectContinue() throws {
    var parser = HTTPRequestParser()
    parser.feed(Array("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n".utf8))
    XCTAssertNil(try parser.next())
    XCTAssertTrue(parser.takeContinueRequest())
    XCTAssertFalse(parser.takeContinueRequest())
    parser.feed(Array("hel".utf8))
    XCTAssertNil(try parser.next())
    XCTAssertFalse(parser.takeContinueRequest())
    parser.feed(Array("lo".utf8))
    XCTAssertEqual(try parser.next()?.body, Array("hello".utf8))
  }

  func testExpectContinueWithBodyAlreadyThere() throws {
    var parser = HTTPRequestParser()
    parser.feed(Array("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nhi".utf8))
    XCTAssertNotNil(try parser.next())
    XCTAssertFalse(parser.takeContinueRequest())
  }

  // MARK: - Keep-alive

  func testKeepAliveDecisions() {
    func request(_ version: HTTPVersion, _ connection: String?) -> HTTPRequest {
      var headers: HTTPHeaders = ["Host": "a"]
      if let connection { headers.add(name: "Connection", value: connection) }
      return HTTPRequest(method: .get, target: "/", version: version, headers: headers)
    }
    XCTAssertTrue(request(.http1_1, nil).keepAlive)
    XCTAssertTrue(request(.http1_1, "keep-alive").keepAlive)
    XCTAssertFalse(request(.http1_1, "close").keepAlive)
    XCTAssertFalse(request(.http1_1, "Upgrade, CLOSE").keepAlive)
    XCTAssertFalse(request(.http1_0, nil).keepAlive)
    XCTAssertTrue(request(.http1_0, "Keep-Alive").keepAlive)
    XCTAssertFalse(request(.http1_0, "keep-alive, close").keepAlive)
    XCTAssertTrue(request(HTTPVersion(major: 1, minor: 2), nil).keepAlive)
  }

  func testHeadersAPI() {
    var headers: HTTPHeaders = ["Vary": "a", "X": "1", "vary": "b"]
    XCTAssertEqual(headers.values(for: "VARY"), ["a", "b"])
    headers.replaceOrAdd(name: "Vary", value: "c")
    XCTAssertEqual(headers.values(for: "vary"), ["c"])
    XCTAssertEqual(headers.map(\.name), ["Vary", "X"])
    headers.remove(name: "x")
    XCTAssertFalse(headers.contains(name: "X"))
    headers.replaceOrAdd(name: "New", value: "v")
    XCTAssertEqual(headers["new"], "v")
    XCTAssertTrue(HTTPHeaders.namesEqual("Content-Length", "content-LENGTH"))
    XCTAssertFalse(HTTPHeaders.namesEqual("Content-Length", "Content-Lengt"))
  }
}
