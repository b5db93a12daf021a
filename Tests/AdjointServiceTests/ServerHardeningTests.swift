import AdjointCompute
import Foundation
import ServerTestSupport
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// The `adjoint serve` binary under hostile or unusual clients: TLS from its flags, gzip both ways and a gzip bomb,
/// a slowloris client, and a drain with a request in flight.
final class ServerHardeningTests: XCTestCase {
  private var directory: URL!

  override func setUpWithError() throws {
    directory = FileManager.default.temporaryDirectory.appendingPathComponent("adjoint-serve-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(at: directory)
  }

  /// Runs a tool with arguments and collects its standard output (standard error is dropped).
  private func run(_ arguments: [String], input: Data? = nil) throws -> (status: Int32, output: Data) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, data)
  }

  private func requireTools(_ names: String...) throws {
    for name in names {
      try XCTSkipUnless(try run(["sh", "-c", "command -v \(name)"]).status == 0, "needs \(name)")
    }
  }

  /// The peak resident set size of a process so far (`VmHWM`), in KiB.
  private func peakResidentKiB(of pid: Int32) throws -> Int {
    let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    let line = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") })
    return try XCTUnwrap(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
  }

  private let point = #"{"expr": "x * x", "at": {"x": 3}}"#
  private let gradient = #"{"value":9.0,"gradient":{"x":6.0}}"#

  func testTLSFromTheFlagsWithCurlAndPlaintextRefused() throws {
    try requireTools("openssl", "curl")
    let certificate = directory.appendingPathComponent("cert.pem").path
    let key = directory.appendingPathComponent("key.pem").path
    let made = try run([
      "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate, "-days", "1",
      "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ])
    XCTAssertEqual(made.status, 0)
    let server = try ServerProcess(arguments: ["--tls-cert", certificate, "--tls-key", key])
    let body = directory.appendingPathComponent("body.json")
    try Data(point.utf8).write(to: body)
    let answer = try run([
      "curl", "-sS", "--cacert", certificate, "-H", "Content-Type: application/json", "--data-binary",
      "@\(body.path)", "https://localhost:\(server.port)/gradient",
    ])
    XCTAssertEqual(answer.status, 0)
    XCTAssertEqual(String(decoding: answer.output, as: UTF8.self), gradient)

    // Plain HTTP to the TLS port: a plaintext 400, then the connection closes; the server keeps serving.
    let plain = try RawConnection(port: server.port)
    plain.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    XCTAssertEqual(plain.read()?.status, 400)
    XCTAssertTrue(plain.isClosedByPeer())
    let health = try run(["curl", "-sS", "--cacert", certificate, "https://localhost:\(server.port)/healthz"])
    XCTAssertEqual(String(decoding: health.output, as: UTF8.self), #"{"status":"ok"}"#)
    XCTAssertTrue(server.process.isRunning)

    // `adjoint health` (the image's HEALTHCHECK) in the server's environment asks over https, on loopback, and
    // accepts the self-signed certificate; asked over https, a plain HTTP server is not healthy.
    let environment = [
      "ADJOINT_HOST": "0.0.0.0", "ADJOINT_PORT": "\(server.port)", "ADJOINT_TLS_CERT": certificate,
      "ADJOINT_TLS_KEY": key,
    ]
    XCTAssertEqual(try ServerProcess.health([], environment: environment), 0)
    XCTAssertEqual(try ServerProcess.health(["--url", "https://127.0.0.1:\(server.port)"]), 0)
    XCTAssertEqual(try ServerProcess.health(["--url", "https://localhost:\(server.port)/"]), 0)
    let plainServer = try ServerProcess(arguments: [])
    XCTAssertEqual(try ServerProcess.health(["--url", "http://127.0.0.1:\(plainServer.port)"]), 0)
    XCTAssertEqual(try ServerProcess.health(["--url", "https://127.0.0.1:\(plainServer.port)", "--timeout", "5"]), 1)
  }

  /// With one worker per CPU the process may use (the default), each worker is bound to its own CPU; with
  /// `--no-pin-workers` or `ADJOINT_PIN_WORKERS=0`, or another worker count, none is.
  func testWorkersArePinnedOnlyWithOneWorkerPerCPU() throws {
    let allowed = CPUAffinity.allowedCPUs()
    try XCTSkipIf(allowed.count < 2, "needs two CPUs")
    /// The CPU lists of the server's threads that may run on one CPU only.
    func pinned(_ server: ServerProcess) throws -> [String] {
      let tasks = "/proc/\(server.process.processIdentifier)/task"
      return try FileManager.default.contentsOfDirectory(atPath: tasks).compactMap { task in
        let status = try String(contentsOfFile: "\(tasks)/\(task)/status", encoding: .utf8)
        let line = status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }
        let list = line.map { String($0.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces)) }
        return list.flatMap { Int($0) }.map { String($0) }
      }.sorted()
    }
    let workers = ["--workers", "\(allowed.count)"]
    let cases: [([String], [String: String], [String])] = [
      (workers, [:], allowed.map(String.init).sorted()),
      (workers + ["--no-pin-workers"], [:], []),
      (workers, ["ADJOINT_PIN_WORKERS": "0"], []),
      (["--workers", "\(allowed.count + 1)"], [:], []),
    ]
    for (arguments, environment, expected) in cases {
      let server = try ServerProcess(arguments: arguments, environment: environment)
      defer { server.stop() }
      // Each worker binds itself as it starts: give them a moment.
      var threads = try pinned(server)
      let deadline = Date().addingTimeInterval(5)
      while threads != expected && Date() < deadline {
        Thread.sleep(forTimeInterval: 0.05)
        threads = try pinned(server)
      }
      XCTAssertEqual(threads, expected, "\(arguments) \(environment)")
    }
  }

  func testTLSFilesThatCannotBeLoadedStopTheStart() throws {
    let process = Process()
    process.executableURL = ServerProcess.executable
    let missing = directory.appendingPathComponent("missing.pem").path
    process.arguments = ["serve", "--port", "0", "--tls-cert", missing, "--tls-key", missing]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    XCTAssertNotEqual(process.terminationStatus, 0)
  }

  func testGzipBothWaysAndABombGets413WithoutGrowingMemory() throws {
    try requireTools("gzip", "curl")
    let server = try ServerProcess(arguments: ["--max-body-bytes", "1048576"])
    let packed = directory.appendingPathComponent("point.json.gz")
    try Data(point.utf8).write(to: directory.appendingPathComponent("point.json"))
    XCTAssertEqual(try run(["gzip", "-k", directory.appendingPathComponent("point.json").path]).status, 0)
    let inflated = try run([
      "curl", "-sS", "-H", "Content-Type: application/json", "-H", "Content-Encoding: gzip", "--data-binary",
      "@\(packed.path)", "http://127.0.0.1:\(server.port)/gradient",
    ])
    XCTAssertEqual(String(decoding: inflated.output, as: UTF8.self), gradient)

    // The spec is over 1 KiB: curl --compressed gets it gzipped and inflates it back to the same bytes.
    let compressed = try run([
      "curl", "-sS", "--compressed", "-D", directory.appendingPathComponent("headers").path,
      "http://127.0.0.1:\(server.port)/openapi.yaml",
    ])
    let plain = try run(["curl", "-sS", "http://127.0.0.1:\(server.port)/openapi.yaml"])
    XCTAssertEqual(compressed.output, plain.output)
    XCTAssertGreaterThan(plain.output.count, 1024)
    let headers = try String(contentsOf: directory.appendingPathComponent("headers"), encoding: .utf8).lowercased()
    XCTAssertTrue(headers.contains("content-encoding: gzip"), headers)
    XCTAssertTrue(headers.contains("vary: accept-encoding"), headers)

    // 10 MB of zeros is about 10 kB gzipped.
    let bomb = directory.appendingPathComponent("bomb.gz")
    XCTAssertEqual(
      try run(["sh", "-c", "head -c 10000000 /dev/zero | gzip -9 > '\(bomb.path)'"]).status, 0)
    let bombSize = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: bomb.path)[.size] as? Int)
    XCTAssertLessThan(bombSize, 20_000)
    // The peak, not the current size: a 10 MB buffer freed at once would not show in the current size.
    let before = try peakResidentKiB(of: server.process.processIdentifier)
    for _ in 0..<5 {
      let answer = try run([
        "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/json", "-H",
        "Content-Encoding: gzip", "--data-binary", "@\(bomb.path)", "http://127.0.0.1:\(server.port)/gradient",
      ])
      XCTAssertEqual(String(decoding: answer.output, as: UTF8.self), "413")
    }
    let after = try peakResidentKiB(of: server.process.processIdentifier)
    print("gzip bomb: peak resident size \(before) KiB before, \(after) KiB after")
    XCTAssertLessThan(after - before, 6 * 1024, "the server's peak grew from \(before) KiB to \(after) KiB")
    XCTAssertTrue(server.process.isRunning)
  }

  func testSlowlorisIsCutOffWhileAnotherClientIsServed() throws {
    let server = try ServerProcess(arguments: ["--header-timeout", "2"])
    let slow = try RawConnection(port: server.port)
    let started = Date()
    // One header byte per second; the other client is served in between.
    for byte in "GET /healthz HTTP/1.1\r\nHost: localhost\r\n".utf8.prefix(3) {
      slow.send(String(decoding: [byte], as: UTF8.self))
      let other = try RawConnection(port: server.port)
      other.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
      XCTAssertEqual(other.read()?.status, 200)
      Thread.sleep(forTimeInterval: 1)
    }
    let response = try XCTUnwrap(slow.read())
    let elapsed = Date().timeIntervalSince(started)
    XCTAssertEqual(response.status, 408)
    XCTAssertEqual(response.headers["connection"], "close")
    XCTAssertEqual(response.headers["content-type"], "application/problem+json")
    XCTAssertGreaterThan(elapsed, 1.9)
    XCTAssertLessThan(elapsed, 4.5)
    XCTAssertTrue(slow.isClosedByPeer())
  }

  func testDrainFinishesTheRequestInFlightRefusesNewConnectionsAndExitsZero() throws {
    let server = try ServerProcess(arguments: ["--drain-timeout", "20"])
    let port = server.port
    let idle = try RawConnection(port: port)
    idle.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    XCTAssertEqual(idle.read()?.status, 200)

    // A request whose body is half sent when SIGTERM arrives.
    let busy = try RawConnection(port: port)
    let body = Array(point.utf8)
    busy.send(
      "POST /gradient HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        + "Content-Length: \(body.count)\r\n\r\n" + String(decoding: body.prefix(10), as: UTF8.self))
    // A readiness probe whose header section is half sent: once draining, it is answered 503.
    let probe = try RawConnection(port: port)
    probe.send("GET /readyz HTTP/1.1\r\nHost: loc")
    Thread.sleep(forTimeInterval: 0.3)
    XCTAssertEqual(kill(server.process.processIdentifier, SIGTERM), 0)

    XCTAssertTrue(idle.isClosedByPeer(), "an idle connection is closed at once")
    probe.send("alhost\r\n\r\n")
    let readiness = try XCTUnwrap(probe.read())
    XCTAssertEqual(readiness.status, 503)
    XCTAssertEqual(readiness.headers["retry-after"], "1")
    XCTAssertEqual(readiness.headers["connection"], "close")
    XCTAssertTrue(probe.isClosedByPeer())
    var refused = false
    for _ in 0..<100 where !refused {
      refused = (try? RawConnection(port: port)) == nil
      if !refused { Thread.sleep(forTimeInterval: 0.02) }
    }
    XCTAssertTrue(refused, "new connections are refused while draining")
    XCTAssertTrue(server.process.isRunning, "the server waits for the request in flight")

    busy.send(String(decoding: body.dropFirst(10), as: UTF8.self))
    let response = try XCTUnwrap(busy.read())
    XCTAssertEqual(response.status, 200)
    XCTAssertEqual(response.body, gradient)
    XCTAssertEqual(response.headers["connection"], "close")
    XCTAssertTrue(busy.isClosedByPeer())

    XCTAssertTrue(server.waitForExit(within: 10))
    XCTAssertEqual(server.process.terminationReason, .exit)
    XCTAssertEqual(server.process.terminationStatus, 0)
  }

  /// A SIGTERM sent the moment the server says it is listening is not lost: the server exits 0. (Before the
  /// signal sources were registered by then, about one start in seven ignored such a SIGTERM for ever; this test,
  /// slower to send it, caught that in 3 of 8 runs.)
  func testSIGTERMRightAfterListeningStopsTheServer() throws {
    for attempt in 0..<40 {
      let server = try ServerProcess(arguments: ["--workers", "2"])
      server.process.terminate()
      guard server.waitForExit(within: 10) else {
        server.stop(within: 0)
        XCTFail("start \(attempt): the server ignored a SIGTERM sent right after it listened")
        return
      }
      XCTAssertEqual(server.process.terminationStatus, 0, "start \(attempt)")
    }
  }

  func testDrainDeadlineClosesAStalledRequest() throws {
    let server = try ServerProcess(arguments: ["--drain-timeout", "1"])
    let stalled = try RawConnection(port: server.port)
    stalled.send("POST /gradient HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{")
    Thread.sleep(forTimeInterval: 0.2)
    let started = Date()
    XCTAssertEqual(kill(server.process.processIdentifier, SIGTERM), 0)
    XCTAssertTrue(stalled.isClosedByPeer())
    XCTAssertTrue(server.waitForExit(within: 10))
    XCTAssertEqual(server.process.terminationStatus, 0)
    XCTAssertGreaterThan(Date().timeIntervalSince(started), 0.9)
    XCTAssertLessThan(Date().timeIntervalSince(started), 5)
  }

  func testAccessLogAtInfoHasOneLinePerRequest() throws {
    let log = try serverLog(arguments: ["--log-format", "text"]) { client in
      client.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: trace-42\r\n\r\n")
      XCTAssertEqual(client.read()?.status, 200)
      client.send("GET /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n")
      XCTAssertEqual(client.read()?.status, 404)
    }
    let lines = log.split(separator: "\n").filter { $0.contains("adjoint.http") }
    XCTAssertEqual(lines.count, 2, log)
    let first = try XCTUnwrap(lines.first)
    for field in ["method=GET", "path=/healthz", "status=200", "bytes=15", "request_id=trace-42", "duration_ms="] {
      XCTAssertTrue(first.contains(field), "\(field) missing from \(first)")
    }
    XCTAssertTrue(lines.last?.contains("status=404") ?? false, log)
  }

  func testSmugglingVectorsGet400AndClose() throws {
    let server = try ServerProcess()
    let head = "POST /gradient HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    let vectors: [(label: String, request: String, status: Int)] = [
      ("CL with TE", head + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
      ("duplicate CL", head + "Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", 400),
      ("CL list", head + "Content-Length: 4, 5\r\n\r\nabcde", 400),
      ("signed CL", head + "Content-Length: +4\r\n\r\nabcd", 400),
      ("bare CR", head + "X-A: a\rb\r\nContent-Length: 0\r\n\r\n", 400),
      ("obs-fold", head + "X-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", 400),
      ("bad chunk size", head + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400),
      ("chunk size overflow", head + "Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n", 413),
      ("TE not chunked last", head + "Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
      ("space before colon", head + "Content-Length : 4\r\n\r\nabcd", 400),
      ("header over 16 KiB", head + "X-Big: " + String(repeating: "a", count: 17_000) + "\r\n\r\n", 431),
    ]
    for vector in vectors {
      let connection = try RawConnection(port: server.port)
      // A second request rides behind the first: it must never be answered.
      connection.send(vector.request + "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
      let response = connection.read()
      XCTAssertEqual(response?.status, vector.status, vector.label)
      XCTAssertEqual(response?.headers["connection"], "close", vector.label)
      XCTAssertTrue(connection.isClosedByPeer(), "\(vector.label): the connection must close")
    }
    let healthy = try RawConnection(port: server.port)
    healthy.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    XCTAssertEqual(healthy.read()?.status, 200)
  }

  func testAThousandConcurrentConnections() throws {
    let server = try ServerProcess()
    var connections: [RawConnection] = []
    for _ in 0..<1_000 { connections.append(try RawConnection(port: server.port)) }
    for connection in connections {
      connection.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    }
    var served = 0
    for connection in connections where connection.read()?.body == #"{"status":"ok"}"# { served += 1 }
    XCTAssertEqual(served, 1_000)
    // Every connection is still open and kept alive: a second round on all of them.
    for connection in connections.reversed() {
      connection.post("/gradient", point)
    }
    var computed = 0
    for connection in connections where connection.read()?.body == gradient { computed += 1 }
    XCTAssertEqual(computed, 1_000)
    XCTAssertTrue(server.process.isRunning)
  }
}
