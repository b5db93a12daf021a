import AdjointJSON
import Foundation
import ServerTestSupport
import XCTest

@testable import AdjointClient

/// The SDK against a real `adjoint serve` subprocess and in-process, side by side.
final class ClientTests: XCTestCase {
  nonisolated(unsafe) private static var shared: ServerProcess?

  override class func setUp() {
    super.setUp()
    shared = try? ServerProcess()
  }

  override class func tearDown() {
    shared = nil
    super.tearDown()
  }

  private func server() throws -> ServerProcess { try XCTUnwrap(Self.shared, "the server did not start") }

  private let local = AdjointClient.local(workers: 2)

  private func remote(_ retry: RetryPolicy = RetryPolicy()) throws -> AdjointClient {
    try AdjointClient(url: try server().url, retry: retry)
  }

  // MARK: Every endpoint, remote and local

  func testEveryEndpointAgreesBetweenTheServerAndTheLocalBackend() async throws {
    let remote = try self.remote()
    let x = Input("x")
    let y = Input("y")
    let w = Input("W")
    let v = Input("v")
    let scalar = sin(x * y) + x ** 2
    let point: [String: Tensor] = ["x": 1.5, "y": -0.5]
    let matrixPoint: [String: Tensor] = ["W": [[1, 2], [3, 4]], "v": [0.5, -1]]
    let vector = tanh(matmul(w, v))
    for client in [remote, local] {
      let g = try await client.gradient(of: scalar, at: point)
      XCTAssertEqual(g.value.item!, sin(1.5 * -0.5) + 2.25, accuracy: 1e-15)
      XCTAssertEqual(g.gradient["x"]!.item!, -0.5 * cos(-0.75) + 3, accuracy: 1e-15)
      XCTAssertEqual(g.gradient["y"]!.item!, 1.5 * cos(-0.75), accuracy: 1e-15)
    }
    func agree(_ a: NamedTensors, _ b: NamedTensors, file: StaticString = #filePath, line: UInt = #line) {
      XCTAssertEqual(a.names, b.names, file: file, line: line)
      for ((_, p), (_, q)) in zip(a, b) {
        XCTAssertEqual(p.shape, q.shape, file: file, line: line)
        XCTAssertLessThanOrEqual(maxDifference(p.scalars, q.scalars), 1e-12, file: file, line: line)
      }
    }
    let evaluations = try await (
      remote.evaluate(Graph(outputs: ["h": vector, "s": sum(vector)]), at: matrixPoint),
      local.evaluate(Graph(outputs: ["h": vector, "s": sum(vector)]), at: matrixPoint)
    )
    agree(evaluations.0.values, evaluations.1.values)
    XCTAssertEqual(evaluations.0.values.names, ["h", "s"])
    XCTAssertEqual(evaluations.0["h"]!.shape, [2])

    let batch: [[String: Tensor]] = [["x": 1, "y": 2], ["x": -0.5, "y": 0.25], ["x": 3, "y": 0]]
    let batches = try await (remote.gradient(of: scalar, batch: batch), local.gradient(of: scalar, batch: batch))
    XCTAssertEqual(batches.0.count, 3)
    for (a, b) in zip(batches.0, batches.1) { agree(a.gradient, b.gradient) }

    let vjps = try await (
      remote.vjp(of: vector, at: matrixPoint, cotangent: [1, -2]),
      local.vjp(of: vector, at: matrixPoint, cotangent: [1, -2])
    )
    agree(vjps.0.vjp, vjps.1.vjp)
    XCTAssertEqual(vjps.0.vjp["W"]!.shape, [2, 2])

    let jvps = try await (
      remote.jvp(of: vector, at: matrixPoint, tangent: ["v": [1, 0]]),
      local.jvp(of: vector, at: matrixPoint, tangent: ["v": [1, 0]])
    )
    XCTAssertLessThanOrEqual(maxDifference(jvps.0.jvp.scalars, jvps.1.jvp.scalars), 1e-12)

    let jacobians = try await (
      remote.jacobian(of: vector, at: matrixPoint, wrt: ["v"], mode: .forward),
      local.jacobian(of: vector, at: matrixPoint, wrt: ["v"], mode: .reverse)
    )
    agree(jacobians.0.jacobian, jacobians.1.jacobian)
    XCTAssertEqual(jacobians.0.jacobian["v"]!.shape, [2, 2])
    // The JVP along e0 is the Jacobian's first column.
    let column = jacobians.0.jacobian["v"]!.matrix!.map { $0[0] }
    XCTAssertLessThanOrEqual(maxDifference(column, jvps.0.jvp.scalars), 1e-12)

    let hessians = try await (
      remote.hessian(of: "x^2 * y", at: ["x": 1, "y": 2]), local.hessian(of: "x^2 * y", at: ["x": 1, "y": 2])
    )
    XCTAssertEqual(hessians.0, hessians.1)
    XCTAssertEqual(hessians.0.block("x", "y")?.item, 2)
    XCTAssertEqual(hessians.0.block("x", "x")?.item, 4)

    let checks = try await (
      remote.gradcheck(of: "sum(x^3)", at: ["x": [1, 2]], eps: 1e-6),
      local.gradcheck(of: "sum(x^3)", at: ["x": [1, 2]], eps: 1e-6)
    )
    agree(checks.0.numericGradient, checks.1.numericGradient)
    XCTAssertLessThan(checks.0.maxRelativeError["x"]!.item!, 1e-6)

    // Registration, lookup, deletion, ops, health.
    for client in [remote, local] {
      let registered = try await client.register("loss = sum(tanh(x @ W))")
      XCTAssertTrue(registered.id.hasPrefix("sha256:"))
      let again = try await client.register("loss = sum(tanh(x @ W))")
      XCTAssertEqual(again.id, registered.id)
      XCTAssertFalse(again.created)
      let canonical = try await client.graph(id: registered.id)
      XCTAssertTrue(canonical.text.contains("\"matmul\""))
      try await client.deleteGraph(id: registered.id)
      do {
        _ = try await client.graph(id: registered.id)
        XCTFail("a deleted graph was found")
      } catch {
        XCTAssertEqual(error.problem?.kind, .unknownGraph)
      }
      let ops = try await client.ops()
      XCTAssertTrue(ops.contains { $0.name == "matmul" && $0.arity == 2 })
      XCTAssertTrue(ops.contains { $0.name == "concat" && $0.arity == nil && $0.attrs == ["axis"] })
      let healthy = try await client.health()
      XCTAssertTrue(healthy)
    }
  }

  func testRawBodiesOfBothBackendsAreTheSameBytes() async throws {
    let remote = try self.remote()
    let bodies = [
      (Endpoint.gradient, #"{"expr": "sin(x*y) + x^2", "at": {"x": 1.5, "y": -0.5}}"#),
      (.evaluate, #"{"expr": "h = tanh(x @ W); s = sum(h)", "at": {"x": [1, 2], "W": [[0.1], [0.2]]}}"#),
      (.jacobian, #"{"expr": "y = x * x", "at": {"x": [1, 2]}, "mode": "reverse"}"#),
      (.hessian, #"{"expr": "x^2 * y", "at": {"x": 1, "y": 2}}"#),
      (.vjp, #"{"expr": "y = x * x", "at": {"x": [1, 2, 3]}, "cotangent": [1, 0, -1], "layout": "base64"}"#),
    ]
    for (endpoint, body) in bodies {
      let a = try await remote.send(endpoint, body: Array(body.utf8))
      let b = try await local.send(endpoint, body: Array(body.utf8))
      XCTAssertEqual(String(decoding: a, as: UTF8.self), String(decoding: b, as: UTF8.self), "\(endpoint)")
    }
  }

  // MARK: The builder

  func testTheBuilderSendsASharedSubexpressionOnceAndMatchesTheExpr() async throws {
    let x = Input("x")
    let y = Input("y")
    let h = sin(x * y)
    let f = h * h + h / (x ** 2) - 3 * exp(-y)
    let graph = Graph(f, name: "f")
    XCTAssertEqual(graph.text.components(separatedBy: "\"sin\"").count - 1, 1, graph.text)
    XCTAssertEqual(graph.text.components(separatedBy: "\"mul\"").count - 1, 3, graph.text)  // x*y, h*h, 3*exp
    // Deterministic: the same expression written again gives the same JSON.
    let x2 = Input("x")
    let y2 = Input("y")
    let h2 = sin(x2 * y2)
    XCTAssertEqual(Graph(h2 * h2 + h2 / (x2 ** 2) - 3 * exp(-y2), name: "f").json, graph.json)

    let point: [String: Tensor] = ["x": 0.7, "y": -1.3]
    let built = try await local.gradient(of: graph, at: point)
    let parsed = try await local.gradient(of: "h = sin(x*y); f = h*h + h/(x^2) - 3*exp(-y)", at: point)
    XCTAssertEqual(built, parsed)
    // `**` binds tighter than `*` and to the right, as `^` in expr: 2 * x ** 3 ** 2 is 2 * x^(3^2).
    let three = Constant(3)
    let power = try await local.evaluate(2 * x ** three ** 2, at: ["x": 1.1])
    XCTAssertEqual(power["out"]!.item!, 2 * Foundation.pow(1.1, 9), accuracy: 1e-12)
  }

  func testTensorsConvertFromAndToSwiftArrays() {
    let m: Tensor = [[1, 2, 3], [4, 5, 6]]
    XCTAssertEqual(m.shape, [2, 3])
    XCTAssertEqual([[Double]](m), [[1, 2, 3], [4, 5, 6]])
    XCTAssertEqual([Double](m), [1, 2, 3, 4, 5, 6])
    XCTAssertEqual(Tensor([[1.0, 2], [3, 4]]).matrix, [[1, 2], [3, 4]])
    XCTAssertEqual(Tensor([1.0, 2]).vector, [1, 2])
    XCTAssertEqual(Tensor(2.5).item, 2.5)
    XCTAssertEqual(m.reshaped([3, -1]).shape, [3, 2])
    XCTAssertEqual((m.nested as? [[Double]]), [[1, 2, 3], [4, 5, 6]])
    XCTAssertEqual(Tensor([[[1.0], [2]], [[3], [4]]]).shape, [2, 2, 1])
    XCTAssertEqual(Tensor(stacking: []).shape, [0])
    XCTAssertEqual(m.description, "[[1.0,2.0,3.0],[4.0,5.0,6.0]]")
  }

  // MARK: Errors

  func testProblemsAreTypedWithTheirPointers() async throws {
    for client in [try remote(), local] {
      do {
        _ = try await client.gradient(of: "x +", at: ["x": 1])
        XCTFail("no error")
      } catch {
        let problem = try XCTUnwrap(error.problem)
        XCTAssertEqual(problem.status, 400)
        XCTAssertEqual(problem.kind, .syntax)
        XCTAssertEqual(problem.errors.first?.pointer, "/expr")
        XCTAssertEqual(problem.errors.first?.position, 3)
      }
      do {
        _ = try await client.gradient(of: "sum(x)", at: ["y": 1])
        XCTFail("no error")
      } catch {
        let problem = try XCTUnwrap(error.problem)
        XCTAssertEqual(problem.status, 422)
        XCTAssertFalse(problem.errors.isEmpty)
        XCTAssertTrue(problem.errors.allSatisfy { $0.pointer.hasPrefix("/at") }, "\(problem)")
      }
      let x = Input("x")
      do {
        _ = try await client.gradient(of: Node.op("no_such_op", x), at: ["x": 1])
        XCTFail("no error")
      } catch {
        let problem = try XCTUnwrap(error.problem)
        XCTAssertEqual(problem.kind, .invalidFunction)
        XCTAssertEqual(problem.errors.first?.pointer, "/graph/nodes/0/op")
      }
      do {
        _ = try await client.evaluate(log(x) * 2, at: ["x": 0], checkNumerics: true)
        XCTFail("no error")
      } catch {
        XCTAssertEqual(error.problem?.status, 422)
      }
    }
    // A raw body that is not a tensor: the pointer leads into the request.
    do {
      _ = try await local.send(.evaluate, body: Array(#"{"expr": "x + 1", "at": {"x": [[1, 2], [3]]}}"#.utf8))
      XCTFail("no error")
    } catch {
      XCTAssertEqual(error.problem?.errors.first?.pointer, "/at/x/1")
      XCTAssertEqual(error.problem?.kind, .badRequest)
    }
  }

  func testABearerTokenIsSentAndAMissingOneIsA401() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("adjoint-keys-\(UUID().uuidString)")
    try Data("s3cret-token\n".utf8).write(to: directory)
    defer { try? FileManager.default.removeItem(at: directory) }
    let guarded = try ServerProcess(arguments: ["--api-keys-file", directory.path])
    let withToken = try AdjointClient(url: guarded.url, token: "s3cret-token")
    let value = try await withToken.evaluate("x * 2", at: ["x": 4])
    XCTAssertEqual(value["out"]?.item, 8)
    let without = try AdjointClient(url: guarded.url, retry: .never)
    do {
      _ = try await without.evaluate("x * 2", at: ["x": 4])
      XCTFail("no 401")
    } catch {
      XCTAssertEqual(error.problem?.status, 401)
      XCTAssertEqual(error.problem?.kind, .unauthorized)
    }
  }

  // MARK: Retries and re-registration

  func testA503IsRetriedUntilAWorkerIsFree() async throws {
    // One worker and no queue: while a slow request holds the worker, a request that needs it gets 503.
    let busy = try ServerProcess(arguments: ["--workers", "1", "--max-queue", "0"])
    let slowClient = try AdjointClient(url: busy.url, retry: .never)
    let n = 3000
    let big = Tensor((0..<n).map { Double($0 % 17) / 17 })
    let slow = Task { try await slowClient.gradcheck(of: "sum(tanh(x) * x)", at: ["x": big]) }
    try await Task.sleep(nanoseconds: 150_000_000)

    let retries = Counter()
    let client = try AdjointClient(
      url: busy.url,
      retry: RetryPolicy(maxAttempts: 8, initialDelay: 0.05, maxDelay: 2) { _, delay, reason in
        XCTAssertTrue(reason.contains("503"), reason)
        XCTAssertGreaterThanOrEqual(delay, 1, "Retry-After: 1 is honoured")
        retries.increment()
      })
    // Large enough (base64 body over 4 KiB) to need a worker rather than the connection's own thread.
    let x = Tensor((0..<2000).map { Double($0) / 1000 })
    let answer = try await client.gradient(of: "sum(x * x)", at: ["x": x])
    XCTAssertLessThanOrEqual(maxDifference(answer.gradient["x"]!.scalars, x.scalars.map { 2 * $0 }), 1e-12)
    _ = try await slow.value
    XCTAssertGreaterThanOrEqual(retries.value, 1, "the request never met a busy server: make the slow one slower")
    // The server saw exactly that many 503s on /gradient.
    let metrics = try await String(
      decoding: RemoteBackend(url: busy.url).send(
        BackendRequest(method: "GET", path: "/metrics")
      ).body, as: UTF8.self)
    let line = metrics.split(separator: "\n").first {
      $0.hasPrefix(#"adjoint_http_requests_total{route="/gradient",method="POST",status="503"}"#)
    }
    XCTAssertEqual(line.flatMap { Int($0.split(separator: " ").last!) }, retries.value, metrics)
  }

  func testNeverRetriedOn4xx() async throws {
    let retries = Counter()
    let client = try AdjointClient(url: try server().url, retry: RetryPolicy { _, _, _ in retries.increment() })
    do {
      _ = try await client.gradient(of: "x +", at: ["x": 1])
      XCTFail("no error")
    } catch {
      XCTAssertEqual(error.problem?.status, 400)
    }
    XCTAssertEqual(retries.value, 0)
  }

  func testARestartedServerGetsTheGraphAgainAndADownServerIsRetried() async throws {
    var server = try ServerProcess()
    let port = server.port
    let retries = Counter()
    let client = try AdjointClient(
      url: server.url,
      retry: RetryPolicy(maxAttempts: 30, initialDelay: 0.05, maxDelay: 0.2) { _, _, _ in
        retries.increment()
      })
    let x = Input("x")
    let w = Input("w")
    let registered = try await client.register(Graph(sum(tanh(x * w)), name: "loss"))
    let point: [String: Tensor] = ["x": [1, 2], "w": [0.5, -0.25]]
    let before = try await client.gradient(of: registered, at: point)

    // A new process on the same port knows no graph: the client registers it again and retries.
    server.stop()
    server = try ServerProcess(port: port)
    let after = try await client.gradient(of: registered, at: point)
    XCTAssertEqual(after, before)
    let metrics = try await String(
      decoding: RemoteBackend(url: server.url).send(BackendRequest(method: "GET", path: "/metrics")).body,
      as: UTF8.self)
    XCTAssertTrue(metrics.contains(#"adjoint_http_requests_total{route="/gradient",method="POST",status="404"} 1"#))
    XCTAssertTrue(metrics.contains(#"adjoint_http_requests_total{route="/graphs",method="POST",status="201"} 1"#))
    XCTAssertEqual(retries.value, 0)

    // While no server listens, connection failures are retried until one does.
    server.stop()
    let restarted = Task {
      try await Task.sleep(nanoseconds: 400_000_000)
      return try ServerProcess(port: port)
    }
    let late = try await client.gradient(of: registered, at: point)
    XCTAssertEqual(late, before)
    XCTAssertGreaterThanOrEqual(retries.value, 1)
    try await restarted.value.stop()
  }

  func testAnIdUnknownTwiceIsSentInline() async throws {
    // A backend whose every replica forgets: any graph_id gets 404, so the client ends up sending the graph.
    let forgetful = ForgetfulBackend()
    let client = AdjointClient(backend: forgetful)
    let registered = try await client.register("y = sum(x * x)")
    let answer = try await client.gradient(of: registered, at: ["x": [1, 2]])
    XCTAssertEqual(answer.gradient["x"], [2, 4])
    XCTAssertEqual(forgetful.log.value, ["/graphs", "/gradient 404", "/graphs", "/gradient 404", "/gradient 200"])
  }

  // MARK: TLS

  func testTLSWithASelfSignedCertificate() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("adjoint-tls-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let certificate = directory.appendingPathComponent("cert.pem").path
    let key = directory.appendingPathComponent("key.pem").path
    let made = try tool([
      "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate, "-days", "1",
      "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ])
    try XCTSkipIf(made.status != 0, "needs openssl")
    let tls = try ServerProcess(arguments: ["--tls-cert", certificate, "--tls-key", key])
    XCTAssertEqual(tls.scheme, "https")
    let url = URL(string: "https://localhost:\(tls.port)")!
    // Without the certificate, the connection is refused by the client: it never trusts an unknown authority.
    let untrusting = try AdjointClient(url: url, retry: .never)
    do {
      _ = try await untrusting.health()
      XCTFail("a self-signed certificate was trusted")
    } catch {
      guard case .connection = error else { return XCTFail("\(error)") }
    }
    // With it, every kind of call works: by name and by address (both are in the certificate).
    for base in [url, URL(string: "https://127.0.0.1:\(tls.port)")!] {
      let trusting = try AdjointClient(url: base, caCertificatePath: certificate)
      let answer = try await trusting.gradient(of: "x * x", at: ["x": 3])
      XCTAssertEqual(answer.gradient["x"]?.item, 6)
      let registered = try await trusting.register("y = sum(x ^ 3)")
      let cubic = try await trusting.gradient(of: registered, at: ["x": [1, 2]])
      XCTAssertEqual(cubic.gradient["x"], [3, 12])
      do {
        _ = try await trusting.gradient(of: "x +", at: ["x": 1])
        XCTFail("no error")
      } catch {
        XCTAssertEqual(error.problem?.errors.first?.position, 3)
      }
    }
    // The command takes the same authority.
    let command = try runProgram(
      ServerProcess.executable,
      ["grad", "x * x", "--at", "x=3", "--json", "--server", url.absoluteString, "--cacert", certificate])
    XCTAssertEqual(command.output, #"{"value":9.0,"gradient":{"x":6.0}}"# + "\n", command.error)
    // Another certificate is not trusted in its place; and a trusted certificate for another name is refused: a
    // second server whose certificate names only elsewhere.example, asked as 127.0.0.1.
    let otherKey = directory.appendingPathComponent("other-key.pem").path
    let other = directory.appendingPathComponent("other.pem").path
    let madeOther = try tool([
      "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", otherKey, "-out", other, "-days", "1",
      "-subj", "/CN=elsewhere.example", "-addext", "subjectAltName=DNS:elsewhere.example",
    ])
    XCTAssertEqual(madeOther.status, 0)
    let misnamed = try ServerProcess(arguments: ["--tls-cert", other, "--tls-key", otherKey])
    for (base, authority) in [(url, other), (URL(string: "https://127.0.0.1:\(misnamed.port)")!, other)] {
      let wrong = try AdjointClient(url: base, caCertificatePath: authority, retry: .never)
      do {
        _ = try await wrong.health()
        XCTFail("trusted \(base) with \(authority)")
      } catch {
        guard case .connection(let message) = error else { return XCTFail("\(error)") }
        XCTAssertTrue(message.contains("certificate verify failed"), message)
      }
    }
  }
}

/// A thread-safe count, for callbacks.
final class Counter: @unchecked Sendable {
  private let lock = NSLock()
  private var count = 0
  func increment() { lock.withLock { count += 1 } }
  var value: Int { lock.withLock { count } }
}

/// A thread-safe list of strings.
final class Log: @unchecked Sendable {
  private let lock = NSLock()
  private var items: [String] = []
  func append(_ item: String) { lock.withLock { items.append(item) } }
  var value: [String] { lock.withLock { items } }
}

/// Wraps a local backend and answers every `graph_id` with 404, as replicas that never saw the graph would.
final class ForgetfulBackend: Backend {
  let inner = LocalBackend(workers: 1)
  let log = Log()

  func send(_ request: BackendRequest) async throws(AdjointError) -> BackendResponse {
    guard request.path != "/graphs" else {
      log.append("/graphs")
      return try await inner.send(request)
    }
    if String(decoding: request.body, as: UTF8.self).contains("\"graph_id\"") {
      log.append("\(request.path) 404")
      let body =
        #"{"type":"https://adjoint.dev/problems/unknown-graph","title":"Unknown graph","status":404,"detail":"no graph has this id here","errors":[{"pointer":"/graph_id","message":"unknown"}]}"#
      return BackendResponse(status: 404, body: Array(body.utf8))
    }
    let response = try await inner.send(request)
    log.append("\(request.path) \(response.status)")
    return response
  }
}
