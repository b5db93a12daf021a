import Foundation
import ServerTestSupport
import XCTest

/// Talks to the real `adjoint serve` subprocess over TCP.
final class ServerTests: LiveServerTestCase {
  private func connect() throws -> RawConnection {
    try RawConnection(port: try serverPort())
  }

  private func number(_ value: Any?) -> Double? { (value as? NSNumber)?.doubleValue }

  func testGradientMatchesClosedForm() throws {
    let connection = try connect()
    connection.post("/gradient", #"{"expr": "sin(x*y) + x^2", "at": {"x": 1.5, "y": -0.5}}"#)
    let response = try XCTUnwrap(connection.read())
    XCTAssertEqual(response.status, 200, response.body)
    XCTAssertEqual(response.headers["content-type"], "application/json")
    let json = try XCTUnwrap(response.json as? [String: Any])
    let gradient = try XCTUnwrap(json["gradient"] as? [String: Any])
    let (x, y) = (1.5, -0.5)
    XCTAssertEqual(try XCTUnwrap(number(json["value"])), sin(x * y) + x * x, accuracy: 1e-12)
    XCTAssertEqual(try XCTUnwrap(number(gradient["x"])), y * cos(x * y) + 2 * x, accuracy: 1e-12)
    XCTAssertEqual(try XCTUnwrap(number(gradient["y"])), x * cos(x * y), accuracy: 1e-12)
  }

  func testKeepAliveServesSeveralRequestsOnOneConnection() throws {
    let connection = try connect()
    for x in [0.5, 1.0, 2.0] {
      connection.post("/gradient", #"{"expr": "x*x + x", "at": {"x": \#(x)}}"#)
      let json = try XCTUnwrap(connection.read()?.json as? [String: Any])
      XCTAssertEqual(number((json["gradient"] as? [String: Any])?["x"]), 2 * x + 1)
    }
  }

  func testTensorsAndWrt() throws {
    let connection = try connect()
    connection.post(
      "/gradient", #"{"expr": "sum(w * x)", "at": {"w": [[1, 2], [3, 4]], "x": [[5, 6], [7, 8]]}, "wrt": ["w"]}"#)
    let response = try XCTUnwrap(connection.read())
    XCTAssertEqual(response.body, #"{"value":70.0,"gradient":{"w":[[5.0,6.0],[7.0,8.0]]}}"#)
  }

  func testEvaluate() throws {
    let connection = try connect()
    connection.post("/evaluate", #"{"expr": "y = exp(x) * 2", "at": {"x": 0}}"#)
    XCTAssertEqual(connection.read()?.body, #"{"values":{"y":2.0}}"#)
  }

  func testSyntaxErrorIsProblemJSONWithPosition() throws {
    let connection = try connect()
    connection.post("/gradient", #"{"expr": "x +", "at": {"x": 1}}"#)
    let response = try XCTUnwrap(connection.read())
    XCTAssertEqual(response.status, 400)
    XCTAssertEqual(response.headers["content-type"], "application/problem+json")
    let json = try XCTUnwrap(response.json as? [String: Any])
    XCTAssertEqual(json["status"] as? Int, 400)
    let entry = try XCTUnwrap((json["errors"] as? [[String: Any]])?.first)
    XCTAssertEqual(entry["pointer"] as? String, "/expr")
    XCTAssertEqual(entry["position"] as? Int, 3)
  }

  func testRequestErrors() throws {
    let cases: [(body: String, status: Int, pointer: String?)] = [
      (#"{"expr": "x", "at": {"x": 1}, "graph": {}}"#, 400, "/graph"),
      (#"{"at": {"x": 1}}"#, 400, ""),
      (#"{"expr": "x + y", "at": {"x": 1}}"#, 422, "/at"),
      (#"{"expr": "x", "at": {"x": 1, "z": 2}}"#, 422, "/at/z"),
      (#"{"expr": "x", "at": {"x": [[1, 2], [3]]}}"#, 400, "/at/x/1"),
      (#"{"expr": "x", "at": {"x": 1}, "wrt": ["q"]}"#, 422, "/wrt/0"),
      (#"{"expr": "frob(x)", "at": {"x": 1}}"#, 422, "/expr"),
      (#"{"expr": "x * 2", "at": {"x": [1, 2]}}"#, 422, "/expr"),
      (#"{"expr": "x", "at": {"x": 1e400}}"#, 400, nil),
      (#"{"expr": "x", "at": {"x": 1},}"#, 400, nil),
      (#"[1, 2]"#, 400, ""),
    ]
    let connection = try connect()
    for (body, status, pointer) in cases {
      connection.post("/gradient", body)
      let response = try XCTUnwrap(connection.read(), body)
      XCTAssertEqual(response.status, status, "\(body) → \(response.body)")
      if let pointer {
        let entry = (response.json as? [String: Any]).flatMap { ($0["errors"] as? [[String: Any]])?.first }
        XCTAssertEqual(entry?["pointer"] as? String, pointer, "\(body) → \(response.body)")
      }
    }
  }

  func testWrongMediaTypeAndMethodAndPath() throws {
    let connection = try connect()
    connection.post("/gradient", #"{"expr": "x", "at": {"x": 1}}"#, contentType: "text/plain")
    XCTAssertEqual(connection.read()?.status, 415)
    connection.send("GET /gradient HTTP/1.1\r\nHost: x\r\n\r\n")
    let response = try XCTUnwrap(connection.read())
    XCTAssertEqual(response.status, 405)
    XCTAssertEqual(response.headers["allow"], "POST")
    connection.send("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
    XCTAssertEqual(connection.read()?.status, 404)
    connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    XCTAssertEqual(connection.read()?.body, #"{"status":"ok"}"#)
  }

  func testOpenAPIDocumentIsTheRepositoryFile() throws {
    let connection = try connect()
    connection.send("GET /openapi.yaml HTTP/1.1\r\nHost: x\r\n\r\n")
    let response = try XCTUnwrap(connection.read())
    let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("openapi.yaml")
    XCTAssertEqual(response.body, try String(contentsOf: file, encoding: .utf8))
  }

  func testMalformedRequestGets400AndTheServerKeepsServing() throws {
    let bad = try connect()
    bad.send("THIS IS NOT HTTP\r\n\r\n")
    let response = try XCTUnwrap(bad.read())
    XCTAssertEqual(response.status, 400)
    XCTAssertEqual(response.headers["connection"], "close")
    XCTAssertTrue(bad.isClosedByPeer())

    let good = try connect()
    good.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    XCTAssertEqual(good.read()?.status, 200)
  }
}

/// The server's life cycle as a process.
final class ServerLifecycleTests: XCTestCase {
  func testSIGTERMStopsTheServerWithExitCodeZero() throws {
    let server = try ServerProcess()
    let connection = try RawConnection(port: server.port)
    connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    XCTAssertEqual(connection.read()?.status, 200)
    server.process.terminate()  // SIGTERM
    server.process.waitUntilExit()
    XCTAssertEqual(server.process.terminationReason, .exit)
    XCTAssertEqual(server.process.terminationStatus, 0)
  }

  func testPortInUseIsAClearError() throws {
    let first = try ServerProcess()
    let second = Process()
    second.executableURL = ServerProcess.executable
    second.arguments = ["serve", "--port", "\(first.port)"]
    let errors = Pipe()
    second.standardError = errors
    second.standardOutput = Pipe()
    try second.run()
    second.waitUntilExit()
    XCTAssertNotEqual(second.terminationStatus, 0)
    let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    XCTAssertTrue(message.contains("address already in use"), message)
  }
}
