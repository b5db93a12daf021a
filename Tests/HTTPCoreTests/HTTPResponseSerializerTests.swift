import HTTPCore
import XCTest

final class HTTPResponseSerializerTests: XCTestCase {
  /// RFC 9110's example date: Sun, 06 Nov 1994 08:49:37 GMT.
  private let rfcExampleTime = 784_111_777

  private func serialize(
    _ response: HTTPResponse, method: HTTPMethod = .get, version: HTTPVersion = .http1_1, keepAlive: Bool = true
  ) -> String {
    var serializer = HTTPResponseSerializer()
    let bytes = serializer.serialize(
      response, requestMethod: method, requestVersion: version, keepAlive: keepAlive, now: rfcExampleTime)
    return String(decoding: bytes, as: UTF8.self)
  }

  func testIMFFixdate() {
    XCTAssertEqual(HTTPDate.imfFixdate(epochSeconds: rfcExampleTime), "Sun, 06 Nov 1994 08:49:37 GMT")
    XCTAssertEqual(HTTPDate.imfFixdate(epochSeconds: 0), "Thu, 01 Jan 1970 00:00:00 GMT")
    XCTAssertEqual(HTTPDate.imfFixdate(epochSeconds: 951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT")
    XCTAssertEqual(HTTPDate.imfFixdate(epochSeconds: 1_700_000_000), "Tue, 14 Nov 2023 22:13:20 GMT")
    XCTAssertEqual(HTTPDate.imfFixdate(epochSeconds: 4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT")
  }

  func testDateIsCachedPerSecond() {
    var serializer = HTTPResponseSerializer()
    XCTAssertEqual(String(decoding: serializer.date(now: 0), as: UTF8.self), "Thu, 01 Jan 1970 00:00:00 GMT")
    XCTAssertEqual(String(decoding: serializer.date(now: 0), as: UTF8.self), "Thu, 01 Jan 1970 00:00:00 GMT")
    XCTAssertEqual(String(decoding: serializer.date(now: 1), as: UTF8.self), "Thu, 01 Jan 1970 00:00:01 GMT")
  }

  func testOKWithBody() {
    let response = HTTPResponse(
      status: .ok, headers: ["Content-Type": "application/json"], body: Array(#"{"ok":true}"#.utf8))
    XCTAssertEqual(
      serialize(response),
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
        + "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n{\"ok\":true}")
  }

  func testClosingAddsConnectionClose() {
    XCTAssertEqual(
      serialize(HTTPResponse(status: .notFound), keepAlive: false),
      "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n"
    )
  }

  func testHTTP10KeepAlive() {
    XCTAssertEqual(
      serialize(HTTPResponse(body: [65]), version: .http1_0, keepAlive: true),
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: keep-alive\r\n\r\nA")
  }

  func testHeadOmitsBodyButKeepsLength() {
    XCTAssertEqual(
      serialize(HTTPResponse(body: Array("hello".utf8)), method: .head),
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n")
  }

  func testNoContentHasNoLengthOrBody() {
    XCTAssertEqual(
      serialize(HTTPResponse(status: .noContent, body: Array("ignored".utf8))),
      "HTTP/1.1 204 No Content\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n")
  }

  func testFramingFieldsAreReplacedAndDateKept() {
    let response = HTTPResponse(
      headers: [
        "Content-Length": "999", "Transfer-Encoding": "chunked", "Connection": "keep-alive",
        "Date": "Mon, 07 Nov 1994 00:00:00 GMT",
      ], body: Array("ab".utf8))
    XCTAssertEqual(
      serialize(response),
      "HTTP/1.1 200 OK\r\nDate: Mon, 07 Nov 1994 00:00:00 GMT\r\nContent-Length: 2\r\n\r\nab")
  }

  func testHeaderInjectionIsNeutralized() {
    let response = HTTPResponse(headers: ["X-Evil": "a\r\nSet-Cookie: x=1"])
    XCTAssertTrue(serialize(response).contains("X-Evil: a  Set-Cookie: x=1\r\n"))
  }

  func testCustomStatusAndReason() {
    XCTAssertTrue(serialize(HTTPResponse(status: HTTPStatus(code: 299))).hasPrefix("HTTP/1.1 299 \r\n"))
    XCTAssertTrue(
      serialize(HTTPResponse(status: .unprocessableContent)).hasPrefix("HTTP/1.1 422 Unprocessable Content\r\n"))
  }

  func testProblemResponse() {
    let response = HTTPResponse.problem(status: .badRequest, detail: "bad \"quote\"\n\u{1}")
    XCTAssertEqual(response.headers["content-type"], "application/problem+json")
    XCTAssertEqual(
      String(decoding: response.body, as: UTF8.self),
      #"{"type":"about:blank","title":"Bad Request","status":400,"detail":"bad \"quote\"\n\u0001","errors":[]}"#)
    let error = HTTPParserError.headerSectionTooLarge.response
    XCTAssertEqual(error.status.code, 431)
    XCTAssertTrue(error.closesConnection)
  }
}
