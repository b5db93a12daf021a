import Dispatch
import Foundation
import Gzip
import HTTPCore
import HTTPServer
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// Echoes like ``EchoResponder``; `/text` answers 4 KiB of text and `/small` a few bytes, for compression.
struct CodingResponder: HTTPResponder {
  static let text = Array(String(repeating: "the quick brown fox jumps over the lazy dog\n", count: 100).utf8)

  func respond(to request: HTTPRequest, reply: @escaping @Sendable (HTTPResponse) -> Void) {
    switch request.path {
    case "/text": reply(HTTPResponse(headers: ["Content-Type": "text/plain"], body: Self.text))
    case "/small": reply(HTTPResponse(headers: ["Content-Type": "text/plain"], body: Array("small".utf8)))
    case "/encoding":
      reply(HTTPResponse(body: Array((request.headers["content-encoding"] ?? "none").utf8)))
    default: EchoResponder().respond(to: request, reply: reply)
    }
  }
}

/// Runs a command-line tool and collects its output.
func runTool(_ arguments: [String], timeout: TimeInterval = 30) throws -> (status: Int32, output: String, error: String)
{
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  process.arguments = arguments
  let output = Pipe()
  let error = Pipe()
  process.standardOutput = output
  process.standardError = error
  process.standardInput = FileHandle.nullDevice
  try process.run()
  // Read both pipes before waiting, so a large output cannot block the tool.
  let group = DispatchGroup()
  nonisolated(unsafe) var errorData = Data()
  group.enter()
  DispatchQueue.global().async {
    errorData = error.fileHandleForReading.readDataToEndOfFile()
    group.leave()
  }
  let outputData = output.fileHandleForReading.readDataToEndOfFile()
  _ = group.wait(timeout: .now() + timeout)
  process.waitUntilExit()
  return (
    process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self)
  )
}

/// Whether a command-line tool is installed.
func toolExists(_ name: String) -> Bool {
  (try? runTool(["sh", "-c", "command -v \(name)"]).status) == 0
}

/// Makes a self-signed certificate for `localhost` and 127.0.0.1 with the `openssl` tool, in `directory`.
func makeSelfSignedCertificate(in directory: URL) throws -> (certificate: String, key: String) {
  let certificate = directory.appendingPathComponent("cert.pem").path
  let key = directory.appendingPathComponent("key.pem").path
  let result = try runTool([
    "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate, "-days", "1",
    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ])
  guard result.status == 0 else { throw TestClientError(description: "openssl req failed: \(result.error)") }
  return (certificate, key)
}

/// TLS, content codings, time-outs and the connection cap of an in-process server, over real sockets and with curl
/// and `openssl s_client` as clients.
final class HTTPServerFeatureTests: XCTestCase {
  private var servers: [HTTPServer] = []
  private var directory: URL!

  override func setUpWithError() throws {
    directory = FileManager.default.temporaryDirectory.appendingPathComponent("adjoint-http-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  }

  override func tearDown() {
    for server in servers {
      server.shutdown()
      server.wait()
      XCTAssertEqual(server.connectionCount, 0)
    }
    servers = []
    try? FileManager.default.removeItem(at: directory)
  }

  private func start(_ configure: (inout HTTPServerConfiguration) -> Void = { _ in }) throws -> Int {
    var configuration = HTTPServerConfiguration(port: 0)
    configure(&configuration)
    let server = HTTPServer(configuration: configuration, responder: CodingResponder())
    servers.append(server)
    return try server.start()
  }

  private func startTLS(_ configure: (inout HTTPServerConfiguration) -> Void = { _ in }) throws -> (
    port: Int, certificate: String
  ) {
    try XCTSkipUnless(toolExists("openssl") && toolExists("curl"), "needs the openssl and curl tools")
    let (certificate, key) = try makeSelfSignedCertificate(in: directory)
    let port = try start {
      $0.tls = HTTPTLSFiles(certificatePath: certificate, keyPath: key)
      configure(&$0)
    }
    return (port, certificate)
  }

  // MARK: - TLS

  func testCurlOverTLSWithTheCertificateAsCA() throws {
    let (port, certificate) = try startTLS()
    let get = try runTool([
      "curl", "-sS", "--cacert", certificate, "-w", "\n%{http_code} %{http_version}", "https://localhost:\(port)/hello",
    ])
    XCTAssertEqual(get.status, 0, get.error)
    XCTAssertEqual(get.output, "GET /hello\n\n200 1.1")

    // Bodies larger than a TLS record and than the socket buffers, both ways, on one keep-alive connection.
    let upload = directory.appendingPathComponent("upload.bin")
    let uploadBytes = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    try Data(uploadBytes).write(to: upload)
    let download = directory.appendingPathComponent("big.bin")
    let echoed = directory.appendingPathComponent("echo.bin")
    let both = try runTool([
      "curl", "-sS", "--cacert", certificate, "--data-binary", "@\(upload.path)", "-o", echoed.path,
      "https://localhost:\(port)/upload", "--next", "--cacert", certificate, "-o", download.path,
      "https://localhost:\(port)/big",
    ])
    XCTAssertEqual(both.status, 0, both.error)
    let echo = try Data(contentsOf: echoed)
    XCTAssertEqual(echo.count, uploadBytes.count + "POST /upload\n".utf8.count)
    XCTAssertTrue(echo.dropFirst(13).elementsEqual(uploadBytes))
    let big = try Data(contentsOf: download)
    XCTAssertEqual(big.count, 8 << 20)
    XCTAssertTrue(big.enumerated().allSatisfy { $0.element == UInt8(truncatingIfNeeded: $0.offset &* 31) })

    // Without the CA, curl must refuse the self-signed certificate: the test sees real verification.
    let untrusted = try runTool(["curl", "-sS", "https://localhost:\(port)/hello"])
    XCTAssertNotEqual(untrusted.status, 0)
  }

  func testPipelinedRequestsOverTLSAreAllAnswered() throws {
    // Several requests in one write, cut into 512-byte records: one socket read takes several records, and the
    // records OpenSSL holds (the socket no longer readable) must still be read and answered.
    let (port, _) = try startTLS()
    let padding = String(repeating: "a", count: 700)
    let requests = (1...3).map {
      "GET /p\($0) HTTP/1.1\\r\\nHost: t\\r\\nX-Pad: \(padding)\\r\\n" + ($0 == 3 ? "Connection: close\\r\\n" : "")
    }
    .map { $0 + "\\r\\n" }.joined()
    let result = try runTool(
      [
        "sh", "-c",
        "printf '\(requests)' | openssl s_client -quiet -max_send_frag 512 -connect 127.0.0.1:\(port) 2>/dev/null",
      ], timeout: 10)
    XCTAssertEqual(result.status, 0, result.error)
    for index in 1...3 { XCTAssertTrue(result.output.contains("GET /p\(index)\n"), result.output) }
    XCTAssertTrue(result.output.contains("Connection: close"), result.output)
  }

  func testPlaintextToTheTLSPortIsRefusedAndTheServerKeepsServing() throws {
    let (port, certificate) = try startTLS()
    let plain = try TestClient(port: port)
    try plain.send("GET /plain HTTP/1.1\r\nHost: test\r\n\r\n")
    let response = try XCTUnwrap(try plain.readResponse())
    XCTAssertEqual(response.status, 400)
    XCTAssertEqual(response.header("Connection"), "close")
    XCTAssertEqual(response.header("Content-Type"), "application/problem+json")
    XCTAssertTrue(try plain.isClosedByServer())

    let garbage = try TestClient(port: port)
    // A handshake record holding a message of an unknown type (255).
    try garbage.send([0x16, 0x03, 0x01, 0x00, 0x04, 0xFF, 0, 0, 0])
    let alert = try garbage.readUntilClosed()
    XCTAssertEqual(alert.first, 0x15, "a broken handshake gets a TLS alert record, then the connection closes")

    let after = try runTool(["curl", "-sS", "--cacert", certificate, "https://localhost:\(port)/after"])
    XCTAssertEqual(after.output, "GET /after\n", after.error)
  }

  func testOpenSSLClientSeesALPNAndOnlyTLS12And13() throws {
    let (port, _) = try startTLS()
    for version in ["-tls1_3", "-tls1_2"] {
      let result = try runTool([
        "sh", "-c", "echo | openssl s_client -connect 127.0.0.1:\(port) \(version) -alpn h2,http/1.1 2>&1",
      ])
      XCTAssertEqual(result.status, 0, result.output)
      XCTAssertTrue(result.output.contains("ALPN protocol: http/1.1"), result.output)
      XCTAssertTrue(result.output.contains("New, TLSv1.\(version == "-tls1_3" ? 3 : 2), Cipher"), result.output)
    }
    let old = try runTool(["sh", "-c", "echo | openssl s_client -connect 127.0.0.1:\(port) -tls1_1 2>&1"])
    XCTAssertNotEqual(old.status, 0, "TLS 1.1 must be refused: \(old.output)")
  }

  func testStalledHandshakeDoesNotBlockOthersAndTimesOut() throws {
    let (port, certificate) = try startTLS { $0.timeouts.header = .seconds(1) }
    // The start of a ClientHello record, then nothing.
    let stalled = try TestClient(port: port)
    try stalled.send([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
    let started = Date()
    let other = try runTool(["curl", "-sS", "--cacert", certificate, "https://localhost:\(port)/other"])
    XCTAssertEqual(other.output, "GET /other\n", other.error)
    XCTAssertLessThan(Date().timeIntervalSince(started), 1, "the stalled handshake held up another client")
    XCTAssertTrue(try stalled.isClosedByServer())
    XCTAssertGreaterThan(Date().timeIntervalSince(started), 0.8)
  }

  // MARK: - gzip

  func testGzipRequestBodyIsInflated() throws {
    let port = try start()
    let client = try TestClient(port: port)
    let packed = try Gzip.compress(Array("hello, inflated world".utf8))
    try client.send(
      Array("POST /in HTTP/1.1\r\nHost: t\r\nContent-Encoding: gzip\r\nContent-Length: \(packed.count)\r\n\r\n".utf8)
        + packed)
    XCTAssertEqual(try client.readResponse()?.text, "POST /in\nhello, inflated world")
    // The responder no longer sees the coding it did not have to undo.
    try client.send("POST /encoding HTTP/1.1\r\nHost: t\r\nContent-Encoding: identity\r\nContent-Length: 0\r\n\r\n")
    XCTAssertEqual(try client.readResponse()?.text, "none")
    let twice = try Gzip.compress(try Gzip.compress(Array("layers".utf8)))
    try client.send(
      Array(
        "POST /two HTTP/1.1\r\nHost: t\r\nContent-Encoding: gzip, x-gzip\r\nContent-Length: \(twice.count)\r\n\r\n".utf8
      )
        + twice)
    XCTAssertEqual(try client.readResponse()?.text, "POST /two\nlayers")
  }

  func testUnknownCodingIs415AndCorruptGzipIs400() throws {
    let port = try start()
    let client = try TestClient(port: port)
    try client.send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Encoding: br\r\nContent-Length: 3\r\n\r\nabc")
    let unsupported = try XCTUnwrap(try client.readResponse())
    XCTAssertEqual(unsupported.status, 415)
    XCTAssertEqual(unsupported.header("Content-Type"), "application/problem+json")
    XCTAssertTrue(unsupported.text.contains(#""status":415"#), unsupported.text)
    XCTAssertTrue(unsupported.text.contains(#""errors":[]"#), unsupported.text)
    try client.send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc")
    XCTAssertEqual(try client.readResponse()?.status, 400)
    // The body was read whole, so the connection still works.
    try client.send("GET /still HTTP/1.1\r\nHost: t\r\n\r\n")
    XCTAssertEqual(try client.readResponse()?.text, "GET /still\n")
  }

  func testGzipBombIs413() throws {
    let port = try start { $0.limits.maxBodyBytes = 1 << 20 }
    let bomb = try Gzip.compress([UInt8](repeating: 0, count: 10 << 20), level: 9)
    XCTAssertLessThan(bomb.count, 20_000)
    let client = try TestClient(port: port)
    try client.send(
      Array("POST /bomb HTTP/1.1\r\nHost: t\r\nContent-Encoding: gzip\r\nContent-Length: \(bomb.count)\r\n\r\n".utf8)
        + bomb)
    let response = try XCTUnwrap(try client.readResponse())
    XCTAssertEqual(response.status, 413)
    XCTAssertTrue(response.text.contains("once inflated"), response.text)
    // Exactly at the limit is accepted (limits are inclusive).
    let full = try Gzip.compress([UInt8](repeating: 65, count: 1 << 20), level: 9)
    try client.send(
      Array("POST /full HTTP/1.1\r\nHost: t\r\nContent-Encoding: gzip\r\nContent-Length: \(full.count)\r\n\r\n".utf8)
        + full)
    let accepted = try XCTUnwrap(try client.readResponse())
    XCTAssertEqual(accepted.status, 200)
    XCTAssertEqual(accepted.body.count, (1 << 20) + "POST /full\n".utf8.count)
  }

  func testResponsesAreGzippedWhenAcceptedAndWorthIt() throws {
    let port = try start()
    let client = try TestClient(port: port)
    try client.send("GET /text HTTP/1.1\r\nHost: t\r\nAccept-Encoding: br, gzip;q=0.5\r\n\r\n")
    let packed = try XCTUnwrap(try client.readResponse())
    XCTAssertEqual(packed.header("Content-Encoding"), "gzip")
    XCTAssertEqual(packed.header("Vary"), "Accept-Encoding")
    XCTAssertLessThan(packed.body.count, CodingResponder.text.count / 4)
    XCTAssertEqual(try Gzip.decompress(packed.body, limit: 1 << 20), CodingResponder.text)

    // HEAD announces the same length as GET.
    try client.send("HEAD /text HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n")
    let head = try XCTUnwrap(try client.readResponse(bodyless: true))
    XCTAssertEqual(head.header("Content-Length"), "\(packed.body.count)")

    for refusal in ["gzip;q=0", "identity", "br"] {
      try client.send("GET /text HTTP/1.1\r\nHost: t\r\nAccept-Encoding: \(refusal)\r\n\r\n")
      let plain = try XCTUnwrap(try client.readResponse())
      XCTAssertNil(plain.header("Content-Encoding"), refusal)
      XCTAssertEqual(plain.header("Vary"), "Accept-Encoding")
      XCTAssertEqual(plain.body, CodingResponder.text)
    }
    try client.send("GET /text HTTP/1.1\r\nHost: t\r\nAccept-Encoding: *\r\n\r\n")
    XCTAssertEqual(try client.readResponse()?.header("Content-Encoding"), "gzip")
    try client.send("GET /small HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n")
    let small = try XCTUnwrap(try client.readResponse())
    XCTAssertNil(small.header("Content-Encoding"), "a tiny body is not worth compressing")
    XCTAssertEqual(small.text, "small")
  }

  func testCurlCompressedOverTLS() throws {
    let (port, certificate) = try startTLS()
    let result = try runTool([
      "curl", "-sS", "--cacert", certificate, "--compressed", "-D", "-", "https://localhost:\(port)/text",
    ])
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertTrue(result.output.lowercased().contains("content-encoding: gzip"), result.output)
    XCTAssertTrue(result.output.hasSuffix(String(decoding: CodingResponder.text, as: UTF8.self)))
  }

  // MARK: - Time-outs and the connection cap

  func testSlowlorisIsCutOffWith408WhileOthersAreServed() throws {
    let port = try start { $0.timeouts.header = .seconds(2) }
    let slow = try TestClient(port: port)
    let started = Date()
    let request = Array("GET /slow-loris HTTP/1.1\r\nHost: t\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n".utf8)
    let dripping = DispatchGroup()
    dripping.enter()
    nonisolated(unsafe) let slowClient = slow
    DispatchQueue.global().async {
      // One byte every 250 ms: the whole head would take about 18 s.
      for byte in request {
        if (try? slowClient.send([byte])) == nil { break }
        Thread.sleep(forTimeInterval: 0.25)
      }
      dripping.leave()
    }
    for index in 0..<5 {
      let other = try TestClient(port: port)
      try other.send("GET /other\(index) HTTP/1.1\r\nHost: t\r\n\r\n")
      XCTAssertEqual(try other.readResponse()?.text, "GET /other\(index)\n")
      Thread.sleep(forTimeInterval: 0.2)
    }
    let response = try XCTUnwrap(try slow.readResponse())
    let elapsed = Date().timeIntervalSince(started)
    XCTAssertEqual(response.status, 408)
    XCTAssertEqual(response.header("Connection"), "close")
    XCTAssertGreaterThan(elapsed, 1.9)
    XCTAssertLessThan(elapsed, 4)
    XCTAssertTrue(try slow.isClosedByServer())
    slow.close()
    _ = dripping.wait(timeout: .now() + 30)
  }

  func testBodyTimeoutIs408AndIdleTimeoutCloses() throws {
    let port = try start {
      $0.timeouts.body = .milliseconds(500)
      $0.timeouts.idle = .milliseconds(500)
    }
    let uploader = try TestClient(port: port)
    try uploader.send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly some")
    let started = Date()
    let response = try XCTUnwrap(try uploader.readResponse())
    XCTAssertEqual(response.status, 408)
    XCTAssertGreaterThan(Date().timeIntervalSince(started), 0.4)
    XCTAssertTrue(try uploader.isClosedByServer())

    let idle = try TestClient(port: port)
    try idle.send("GET /once HTTP/1.1\r\nHost: t\r\n\r\n")
    XCTAssertEqual(try idle.readResponse()?.text, "GET /once\n")
    let idleSince = Date()
    XCTAssertTrue(try idle.isClosedByServer(), "an idle keep-alive connection is closed without a response")
    XCTAssertGreaterThan(Date().timeIntervalSince(idleSince), 0.4)
  }

  func testAClientThatDoesNotReadIsClosedAfterTheSendTimeout() throws {
    let port = try start { $0.timeouts.send = .seconds(1) }
    let server = try XCTUnwrap(servers.last)
    let reader = try TestClient(port: port)
    try reader.send("GET /warm HTTP/1.1\r\nHost: t\r\n\r\n")
    XCTAssertEqual(try reader.readResponse()?.text, "GET /warm\n")
    // 8 MiB does not fit the socket buffers; this client never reads it.
    let stuck = try TestClient(port: port)
    try stuck.send("GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
    let started = Date()
    while server.connectionCount < 2 && Date().timeIntervalSince(started) < 5 { Thread.sleep(forTimeInterval: 0.005) }
    XCTAssertEqual(server.connectionCount, 2)
    while server.connectionCount > 1 && Date().timeIntervalSince(started) < 10 { Thread.sleep(forTimeInterval: 0.02) }
    let elapsed = Date().timeIntervalSince(started)
    XCTAssertEqual(server.connectionCount, 1, "the stuck connection is closed; the reader's stays open")
    XCTAssertGreaterThan(elapsed, 0.9)
    XCTAssertLessThan(elapsed, 5)
    try reader.send("GET /still HTTP/1.1\r\nHost: t\r\n\r\n")
    XCTAssertEqual(try reader.readResponse()?.text, "GET /still\n")
  }

  func testConnectionsPastTheCapAreRefusedWith503() throws {
    let port = try start { $0.maxConnections = 3 }
    let server = try XCTUnwrap(servers.last)
    var open: [TestClient] = []
    for index in 0..<3 {
      let client = try TestClient(port: port)
      try client.send("GET /\(index) HTTP/1.1\r\nHost: t\r\n\r\n")
      XCTAssertEqual(try client.readResponse()?.status, 200)
      open.append(client)
    }
    let refused = try TestClient(port: port)
    let response = try XCTUnwrap(try refused.readResponse())
    XCTAssertEqual(response.status, 503)
    XCTAssertEqual(response.header("Retry-After"), "1")
    XCTAssertTrue(try refused.isClosedByServer())
    XCTAssertEqual(server.refusedConnectionCount, 1)

    open.removeFirst().close()
    let deadline = Date().addingTimeInterval(5)
    while server.connectionCount > 2 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
    let again = try TestClient(port: port)
    try again.send("GET /again HTTP/1.1\r\nHost: t\r\n\r\n")
    XCTAssertEqual(try again.readResponse()?.text, "GET /again\n")
  }

  func testDrainingIsVisibleWhileARequestIsInFlight() throws {
    let port = try start()
    let server = try XCTUnwrap(servers.last)
    let busy = try TestClient(port: port)
    try busy.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
    Thread.sleep(forTimeInterval: 0.05)
    XCTAssertFalse(server.isDraining)
    server.shutdown()
    XCTAssertTrue(server.isDraining)
    XCTAssertEqual(try busy.readResponse()?.header("Connection"), "close")
    server.wait()
    XCTAssertFalse(server.isDraining)
  }

  func testAThousandConcurrentConnections() throws {
    let port = try start()
    let server = try XCTUnwrap(servers.last)
    let count = 1_000
    var clients: [TestClient] = []
    clients.reserveCapacity(count)
    for _ in 0..<count { clients.append(try TestClient(port: port, timeoutSeconds: 30)) }
    for (index, client) in clients.enumerated() {
      try client.send("GET /c\(index) HTTP/1.1\r\nHost: t\r\n\r\n")
    }
    for (index, client) in clients.enumerated() {
      XCTAssertEqual(try client.readResponse()?.text, "GET /c\(index)\n")
    }
    XCTAssertEqual(server.connectionCount, count, "every connection is open at once")
    // A second round on the same connections: all kept alive.
    for (index, client) in clients.enumerated().reversed() {
      try client.send("GET /d\(index) HTTP/1.1\r\nHost: t\r\n\r\n")
    }
    for (index, client) in clients.enumerated() {
      XCTAssertEqual(try client.readResponse()?.text, "GET /d\(index)\n")
    }
    for client in clients { client.close() }
  }
}
