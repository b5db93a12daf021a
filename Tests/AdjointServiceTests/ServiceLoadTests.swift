import Foundation
import ServerTestSupport
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// Admission control, deadlines and draining under load, each against its own `adjoint serve` subprocess.
final class ServiceLoadTests: XCTestCase {
  /// A request with a tiny body and a long computation: a 1200 x 1200 matrix product (about 3.5 GFLOP).
  // About 0.2 s of one worker here (1500³ multiply-adds); at 1200 it took 0.10–0.12 s, too close to the 0.1 s
  // deadline below, which a request queued 20 ms after it must overrun.
  private static let slow = #"{"expr": "a = broadcast_to(x, shape=[1500, 1500]); sum(a @ a)", "at": {"x": 0.001}}"#
  private static let slowValue = 1500.0 * 1500 * 1500 * 1e-6

  private func value(_ response: RawConnection.Response?) -> Double? {
    ((response?.json as? [String: Any])?["values"] as? [String: Any])?["out"] as? Double
  }

  func testAFullQueueAnswers503WithRetryAfterAndTheServerRecovers() throws {
    let server = try ServerProcess(arguments: ["--workers", "1", "--max-queue", "1"])
    let connections = try (0..<6).map { _ in try RawConnection(port: server.port) }
    for connection in connections { connection.post("/evaluate", Self.slow) }
    let responses = connections.map { $0.read() }
    let statuses = responses.map { $0?.status ?? 0 }
    // One runs, one waits in the queue; the others are refused at once.
    XCTAssertEqual(statuses.filter { $0 == 200 }.count, 2, "\(statuses)")
    XCTAssertEqual(statuses.filter { $0 == 503 }.count, 4, "\(statuses)")
    for response in responses where response?.status == 503 {
      XCTAssertEqual(response?.headers["retry-after"], "1")
      XCTAssertEqual(response?.headers["content-type"], "application/problem+json")
      XCTAssertEqual((response?.json as? [String: Any])?["type"] as? String, "https://adjoint.dev/problems/overloaded")
    }
    for response in responses where response?.status == 200 {
      XCTAssertEqual(try XCTUnwrap(value(response)), Self.slowValue, accuracy: 1e-6)
    }
    // Once the work is done, the same connections are served again.
    for connection in connections {
      connection.post("/gradient", #"{"expr": "x^2", "at": {"x": 3}}"#)
      XCTAssertEqual(connection.read()?.body, #"{"value":9.0,"gradient":{"x":6.0}}"#)
    }
  }

  func testARequestPastItsDeadlineGets503() throws {
    let server = try ServerProcess(arguments: ["--workers", "1", "--request-timeout-s", "0.1"])
    let first = try RawConnection(port: server.port)
    let second = try RawConnection(port: server.port)
    first.post("/evaluate", Self.slow)
    Thread.sleep(forTimeInterval: 0.02)
    // Waits for the only worker longer than its 0.1 s (too much work to be answered on the connection's thread).
    second.post("/gradient", #"{"expr": "sum(broadcast_to(x, shape=[100, 100])^2)", "at": {"x": 3}}"#)
    let late = try XCTUnwrap(second.read())
    XCTAssertEqual(late.status, 503, late.body)
    XCTAssertEqual(late.headers["retry-after"], "1")
    XCTAssertEqual((late.json as? [String: Any])?["type"] as? String, "https://adjoint.dev/problems/deadline")
    // The long request itself began in time: one uninterruptible product is finished, not thrown away.
    XCTAssertEqual(first.read()?.status, 200)
    // A batch is checked between points: 40 slow points cannot finish in 0.1 s.
    let batch = try RawConnection(port: server.port)
    let point = #"{"x": 0.001}"#
    batch.post(
      "/evaluate",
      #"{"expr": "a = broadcast_to(x, shape=[300, 300]); sum(a @ a)", "batch": [\#(Array(repeating: point, count: 400).joined(separator: ","))]}"#
    )
    XCTAssertEqual(batch.read()?.status, 503)
    // One product is checked between its Hessian-vector products, its rows, its finite differences.
    let x = "[" + Array(repeating: "0.5", count: 3000).joined(separator: ",") + "]"
    for (path, expr) in [("/hessian", "sum(x)^2"), ("/jacobian", "x * sum(x)"), ("/gradcheck", "sum(tanh(x) * x)^2")] {
      let started = Date()
      batch.post(path, #"{"expr": "\#(expr)", "at": {"x": \#(x)}}"#)
      XCTAssertEqual(batch.read()?.status, 503, path)
      XCTAssertLessThan(Date().timeIntervalSince(started), 5, path)
    }
    second.post("/gradient", #"{"expr": "x^2", "at": {"x": 3}}"#)
    XCTAssertEqual(second.read()?.status, 200, "the server recovers")
  }

  func testSIGTERMWithRequestsInFlightAndQueuedLosesNone() throws {
    let server = try ServerProcess(arguments: ["--workers", "2", "--drain-timeout", "60"])
    let connections = try (0..<8).map { _ in try RawConnection(port: server.port) }
    for connection in connections { connection.post("/evaluate", Self.slow) }
    // Long enough for the server to read the requests, well before the first two are answered.
    Thread.sleep(forTimeInterval: 0.05)
    XCTAssertEqual(kill(server.process.processIdentifier, SIGTERM), 0)
    for (index, connection) in connections.enumerated() {
      let response = connection.read()
      XCTAssertEqual(response?.status, 200, "request \(index): \(response?.body ?? "no response")")
      XCTAssertEqual(response?.headers["connection"], "close")
      XCTAssertEqual(try XCTUnwrap(value(response)), Self.slowValue, accuracy: 1e-6)
    }
    XCTAssertTrue(server.waitForExit(within: 30))
    XCTAssertEqual(server.process.terminationStatus, 0)
  }

  func testMetricsCountRequestsCacheHitsAndRejections() throws {
    let server = try ServerProcess(arguments: ["--workers", "1"])
    let connection = try RawConnection(port: server.port)
    for _ in 0..<3 {
      connection.post("/gradient", #"{"expr": "x^3 + 1", "at": {"x": 2}}"#)
      XCTAssertEqual(connection.read()?.status, 200)
    }
    connection.post("/gradient", #"{"expr": "x^3 +", "at": {"x": 2}}"#)
    XCTAssertEqual(connection.read()?.status, 400)
    connection.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    let response = try XCTUnwrap(connection.read())
    XCTAssertEqual(response.status, 200)
    XCTAssertEqual(response.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
    let lines = Set(response.body.split(separator: "\n").map(String.init))
    for expected in [
      #"adjoint_http_requests_total{route="/gradient",method="POST",status="200"} 3"#,
      #"adjoint_http_requests_total{route="/gradient",method="POST",status="400"} 1"#,
      "adjoint_program_cache_misses_total 1", "adjoint_program_cache_hits_total 2", "adjoint_workers 1.0",
      "adjoint_queue_depth 0.0",
    ] {
      XCTAssertTrue(lines.contains(expected), "missing \(expected) in\n\(response.body)")
    }
    XCTAssertTrue(
      lines.contains { $0.hasPrefix(#"adjoint_http_request_duration_seconds_count{route="/gradient"} "#) },
      response.body)
  }

  func testAPIKeysGuardEveryRouteButHealthReadinessAndTheSpec() throws {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("adjoint-keys-\(getpid())")
    try "# tokens\nfirst-token\n\n  second-token  \n".write(to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    let server = try ServerProcess(arguments: ["--api-keys-file", file.path])
    for path in ["/healthz", "/readyz", "/openapi.yaml"] {
      let open = try RawConnection(port: server.port)
      open.send("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
      XCTAssertEqual(open.read()?.status, 200, path)
    }
    // Refused before the body is read: the declared megabyte is never sent, and no 100 Continue comes first.
    let early = try RawConnection(port: server.port)
    early.send(
      "POST /gradient HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n"
        + "Expect: 100-continue\r\n\r\n")
    let refused = try XCTUnwrap(early.read())
    XCTAssertEqual(refused.status, 401)
    XCTAssertEqual(refused.headers["www-authenticate"], "Bearer")
    XCTAssertEqual(refused.headers["content-type"], "application/problem+json")
    let body = #"{"expr": "x^2", "at": {"x": 3}}"#
    for (authorization, status) in [
      ("Bearer wrong-token", 401), ("Bearer first-token", 200), ("bearer second-token", 200), ("Basic Zmlyc3Q=", 401),
      ("Bearer first-token-and-more", 401), ("Bearer first-toke", 401),
    ] {
      let connection = try RawConnection(port: server.port)
      connection.send(
        "POST /gradient HTTP/1.1\r\nHost: x\r\nAuthorization: \(authorization)\r\nContent-Type: application/json\r\n"
          + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
      XCTAssertEqual(connection.read()?.status, status, authorization)
    }
    let metrics = try RawConnection(port: server.port)
    metrics.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    XCTAssertEqual(metrics.read()?.status, 401, "/metrics needs a token too")
  }
}
