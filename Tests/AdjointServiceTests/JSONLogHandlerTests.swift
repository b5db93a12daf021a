import AdjointJSON
import AdjointService
import Foundation
import Logging
import Synchronization
import XCTest

/// Collects the lines a handler writes.
private final class Lines: Sendable {
  private let lines = Mutex<[[UInt8]]>([])
  var all: [[UInt8]] { lines.withLock { $0 } }
  func append(_ line: [UInt8]) { lines.withLock { $0.append(line) } }
}

private struct Failure: Error, CustomStringConvertible {
  var description: String { "disk \"full\"" }
}

final class JSONLogHandlerTests: XCTestCase {
  func testOneEscapedJSONObjectPerLine() throws {
    let lines = Lines()
    var handler = JSONLogHandler(label: "adjoint.test", sink: lines.append)
    handler.logLevel = .debug
    handler[metadataKey: "replica"] = "r1"
    var logger = Logger(label: "adjoint.test") { _ in handler }
    logger[metadataKey: "shared"] = "from logger"
    let before = Date().timeIntervalSince1970

    logger.info(
      "line one\nline \"two\"\t\u{1}",
      metadata: [
        "request_id": "abc-1", "status": .stringConvertible(200), "ts": "spoofed", "nested": ["a": "b"],
        "list": ["x", "y"],
      ])
    logger.error("failed", error: Failure())
    logger.trace("not written")

    let written = lines.all
    XCTAssertEqual(written.count, 2)
    for line in written {
      XCTAssertEqual(line.last, UInt8(ascii: "\n"))
      XCTAssertEqual(line.filter { $0 == UInt8(ascii: "\n") }.count, 1, "one line each")
    }
    let first = try JSONParser.parse(Array(written[0].dropLast()))
    XCTAssertEqual(first["level"]?.stringValue, "info")
    XCTAssertEqual(first["label"]?.stringValue, "adjoint.test")
    XCTAssertEqual(first["msg"]?.stringValue, "line one\nline \"two\"\t\u{1}")
    XCTAssertEqual(first["request_id"]?.stringValue, "abc-1")
    XCTAssertEqual(first["status"]?.stringValue, "200")
    XCTAssertEqual(first["replica"]?.stringValue, "r1")
    XCTAssertEqual(first["shared"]?.stringValue, "from logger")
    XCTAssertEqual(first["meta.ts"]?.stringValue, "spoofed")
    XCTAssertNotNil(first["nested"]?.stringValue)
    XCTAssertNotNil(first["list"]?.stringValue)

    let ts = try XCTUnwrap(first["ts"]?.stringValue)
    XCTAssertNotNil(ts.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/), ts)
    let parsed = try XCTUnwrap(ISO8601DateFormatter.withMilliseconds.date(from: ts))
    XCTAssertEqual(parsed.timeIntervalSince1970, before, accuracy: 5)

    let second = try JSONParser.parse(Array(written[1].dropLast()))
    XCTAssertEqual(second["level"]?.stringValue, "error")
    XCTAssertEqual(second["error"]?.stringValue, "disk \"full\"")
  }

  func testTimestamps() {
    let cases: [(Int64, String)] = [
      (0, "1970-01-01T00:00:00.000Z"),
      (951_782_400_000, "2000-02-29T00:00:00.000Z"),
      (1_709_251_199_999, "2024-02-29T23:59:59.999Z"),
      (4_102_444_800_001, "2100-01-01T00:00:00.001Z"),
      (-1, "1969-12-31T23:59:59.999Z"),
      (-86_400_000 * 365, "1969-01-01T00:00:00.000Z"),
    ]
    for (milliseconds, expected) in cases {
      XCTAssertEqual(JSONLogHandler.timestamp(millisecondsSince1970: milliseconds), expected)
    }
    // Every day of four years agrees with Foundation.
    let formatter = ISO8601DateFormatter.withMilliseconds
    for day in stride(from: Int64(19_000), to: 19_000 + 4 * 366, by: 1) {
      let milliseconds = day * 86_400_000 + 45_296_789
      let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
      XCTAssertEqual(JSONLogHandler.timestamp(millisecondsSince1970: milliseconds), formatter.string(from: date))
    }
  }

  func testServeWritesJSONLinesByDefaultAndTextOnRequest() throws {
    for format in ["json", "text"] {
      let log = try serverLog(arguments: ["--log-format", format]) { client in
        client.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: json-7\r\n\r\n")
        XCTAssertEqual(client.read()?.status, 200)
      }
      let request = try XCTUnwrap(log.split(separator: "\n").first { $0.contains("json-7") }, log)
      if format == "json" {
        let object = try JSONParser.parse(String(request))
        XCTAssertEqual(object["label"]?.stringValue, "adjoint.http")
        XCTAssertEqual(object["request_id"]?.stringValue, "json-7")
        XCTAssertEqual(object["path"]?.stringValue, "/healthz")
        XCTAssertEqual(object["status"]?.stringValue, "200")
      } else {
        XCTAssertTrue(request.contains("request_id=json-7"), String(request))
        XCTAssertFalse(request.hasPrefix("{"), String(request))
      }
    }
  }
}

extension ISO8601DateFormatter {
  fileprivate static var withMilliseconds: ISO8601DateFormatter {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    formatter.timeZone = TimeZone(identifier: "UTC")
    return formatter
  }
}
