import AdjointCompute
import Dispatch
import HTTPCore
import HTTPServer
import Locking
import Logging
import Synchronization

/// The routes of the wire contract, as an ``HTTPResponder``.
///
/// Cheap routes (health, the spec) answer on the connection's event-loop thread; compute routes go to the
/// ``WorkerPool`` and answer from a worker thread. Every failure is turned into problem+json in one place, ``reply(_:)``.
final class Service: HTTPResponder {
  private let compute: Compute
  private let pool: WorkerPool
  private let registry: GraphRegistry
  private let cache: ProgramCache
  private let requestTimeout: Double
  private let metrics = ServiceMetrics()
  /// The bearer tokens that may call the service; `nil`: no token is needed.
  private let apiKeys: APIKeys?
  /// Set when the server starts draining: `/readyz` then answers 503 so load balancers stop sending new work.
  private let draining = Atomic<Bool>(false)

  init(configuration: ServiceConfiguration) {
    let cpus = configuration.pinWorkers ? CPUAffinity.allowedCPUs() : []
    pool = WorkerPool(
      workers: configuration.workers, maxQueue: configuration.maxQueue,
      cpus: cpus.count == configuration.workers ? cpus : [])
    registry = GraphRegistry(budget: configuration.graphRegistryBytes)
    let metrics = self.metrics
    cache = ProgramCache(budget: configuration.programCacheBytes, workers: pool.workers) { hit in
      if hit { metrics.cacheHit() } else { metrics.cacheMiss() }
    }
    compute = Compute(limits: configuration.limits, cache: cache, registry: registry, pool: pool)
    requestTimeout = configuration.requestTimeout
    apiKeys = configuration.apiKeys.isEmpty ? nil : APIKeys(tokens: configuration.apiKeys)
    metrics.setWorkers(pool.workers)
  }

  /// With API keys configured, answers 401 before the body is read unless the request carries a valid bearer
  /// token; `/healthz`, `/readyz` and `/openapi.yaml` stay open.
  func screen(_ head: HTTPRequestHead) -> HTTPResponse? {
    guard let apiKeys else { return nil }
    let path = head.path
    if path == "/healthz" || path == "/readyz" || path == "/openapi.yaml" { return nil }
    let authorization = head.headers["authorization"]
    if apiKeys.authorizes(authorization) { return nil }
    metrics.rejected(.unauthorized)
    metrics.observe(
      route: ServiceMetrics.routeTemplate(for: path), method: head.method.rawValue, status: 401, seconds: 0)
    return APIKeys.unauthorized(
      detail: authorization == nil
        ? "this server needs an 'Authorization: Bearer TOKEN' header" : "the bearer token is not valid here")
  }

  /// Bodies up to this size may be answered on the connection's thread (see ``Compute/runIfCheap``).
  static let inlineBodyBytes = 4096

  private static let computeRoutes: [String: Compute.Product] = Dictionary(
    uniqueKeysWithValues: Compute.Product.allCases.map { ("/\($0.rawValue)", $0) })

  func respond(to request: HTTPRequest, reply answer: @escaping @Sendable (HTTPResponse) -> Void) {
    let started = DispatchTime.now().uptimeNanoseconds
    let deadline = Deadline(seconds: requestTimeout, from: started)
    let path = request.path
    let metrics = self.metrics
    let route = ServiceMetrics.routeTemplate(for: path)
    let method = request.method.rawValue
    let reply: @Sendable (HTTPResponse) -> Void = { response in
      let seconds = Double(DispatchTime.now().uptimeNanoseconds &- started) / 1e9
      metrics.observe(route: route, method: method, status: response.status.code, seconds: seconds)
      answer(response)
    }
    if let product = Self.computeRoutes[String(path)] {
      if let refusal = Self.refusal(ofPost: request) { return reply(refusal) }
      let body = request.body
      let compute = self.compute
      // A small request through a small program is answered here, on the connection's thread: the work is shorter
      // than the two thread switches a worker would cost.
      if body.count <= Self.inlineBodyBytes {
        do throws(Problem) {
          if let answer = try compute.runIfCheap(product, body: body, deadline: deadline) {
            return reply(Self.json(answer))
          }
        } catch {
          return reply(Self.reply(error))
        }
      }
      submit(reply) {
        do throws(Problem) {
          reply(Self.json(try compute.run(product, body: body, deadline: deadline)))
        } catch {
          if error.type == Problem.deadlineType { metrics.rejected(.deadline) }
          reply(Self.reply(error))
        }
      }
      return
    }
    switch path {
    case "/healthz": reply(Self.get(request) { Self.json(Array(#"{"status":"ok"}"#.utf8)) })
    case "/readyz":
      let draining = self.draining.load(ordering: .relaxed)
      if draining { metrics.rejected(.draining) }
      reply(
        Self.get(request) {
          draining ? Self.reply(.draining(retryAfter: 1)) : Self.json(Array(#"{"status":"ready"}"#.utf8))
        })
    case "/openapi.yaml":
      reply(
        Self.get(request) {
          HTTPResponse(status: .ok, headers: ["Content-Type": "application/yaml"], body: PackageResources.openapi_yaml)
        })
    case "/ops": reply(Self.get(request) { Self.json(Compute.opsBody) })
    case "/metrics":
      reply(
        Self.get(request) {
          metrics.setQueueDepth(pool.queueDepth)
          metrics.setCacheBytes(cache.bytes)
          metrics.setGraphCount(registry.count)
          metrics.setWorkersBusy(pool.busyWorkers)
          return HTTPResponse(
            status: .ok, headers: ["Content-Type": ServiceMetrics.contentType], body: metrics.render())
        })
    case "/graphs":
      if let refusal = Self.refusal(ofPost: request) { return reply(refusal) }
      let body = request.body
      let compute = self.compute
      submit(reply) {
        do throws(Problem) {
          let (id, created, answer) = try compute.register(body: body)
          var headers: HTTPHeaders = ["Content-Type": "application/json"]
          if created { headers.add(name: "Location", value: "/graphs/\(id)") }
          reply(HTTPResponse(status: created ? .created : .ok, headers: headers, body: answer))
        } catch {
          reply(Self.reply(error))
        }
      }
    default:
      if path.hasPrefix("/graphs/") {
        return reply(graph(request, id: Self.percentDecoded(path.dropFirst("/graphs/".count))))
      }
      reply(Self.reply(.notFound(String(path))))
    }
  }

  /// `GET`, `HEAD` or `DELETE /graphs/{id}`.
  private func graph(_ request: HTTPRequest, id: String?) -> HTTPResponse {
    let allowed = ["GET", "HEAD", "DELETE"]
    guard request.method == .get || request.method == .head || request.method == .delete else {
      return Self.reply(.methodNotAllowed(request.method.rawValue, allowed: allowed))
    }
    guard let id else { return Self.reply(.notFound(String(request.path))) }
    if request.method == .delete {
      guard registry.remove(id) else { return Self.reply(.unknownGraph(id, pointer: "")) }
      return HTTPResponse(status: .noContent, headers: [:], body: [])
    }
    guard let entry = registry.entry(id) else { return Self.reply(.unknownGraph(id, pointer: "")) }
    return Self.json(entry.canonical)
  }

  /// Queues `job`, or answers 503 when the queue is full.
  private func submit(_ reply: @escaping @Sendable (HTTPResponse) -> Void, _ job: @escaping @Sendable () -> Void) {
    if !pool.submit(job) {
      metrics.rejected(.queueFull)
      reply(Self.reply(.overloaded(retryAfter: 1)))
    }
  }

  /// Stops the workers once the queued jobs are done.
  func stop() { pool.stop() }

  /// From now on `/readyz` answers 503.
  func beginDraining() { draining.store(true, ordering: .relaxed) }

  /// Decodes `%XX` escapes of a path segment; `nil` when an escape is malformed or the result is not UTF-8.
  static func percentDecoded(_ segment: Substring) -> String? {
    var bytes: [UInt8] = []
    var iterator = segment.utf8.makeIterator()
    func hex(_ byte: UInt8?) -> UInt8? {
      switch byte {
      case let b? where b >= 48 && b <= 57: b - 48
      case let b? where b >= 65 && b <= 70: b - 55
      case let b? where b >= 97 && b <= 102: b - 87
      default: nil
      }
    }
    while let byte = iterator.next() {
      if byte == UInt8(ascii: "%") {
        guard let high = hex(iterator.next()), let low = hex(iterator.next()) else { return nil }
        bytes.append(high << 4 | low)
      } else {
        bytes.append(byte)
      }
    }
    return String(validating: bytes, as: UTF8.self)
  }

  private static func get(_ request: HTTPRequest, _ answer: () -> HTTPResponse) -> HTTPResponse {
    guard request.method == .get || request.method == .head else {
      return reply(.methodNotAllowed(request.method.rawValue, allowed: ["GET", "HEAD"]))
    }
    return answer()
  }

  /// 405 unless `request` is a POST, 415 unless its body is JSON; `nil` when it is both.
  private static func refusal(ofPost request: HTTPRequest) -> HTTPResponse? {
    guard request.method == .post else {
      return reply(.methodNotAllowed(request.method.rawValue, allowed: ["POST"]))
    }
    guard isJSON(request.headers["content-type"]) else {
      return reply(.unsupportedMediaType("the body must be application/json"))
    }
    return nil
  }

  private static let jsonMediaType = Array("application/json".utf8)

  /// Whether the media type of `contentType` (before any `;` parameters, spaces and tabs around it ignored) is
  /// `application/json`, in any case. Compares bytes: this runs on every request.
  static func isJSON(_ contentType: String?) -> Bool {
    guard var contentType else { return false }
    return contentType.withUTF8 { bytes -> Bool in
      var start = 0
      var end = bytes.count
      if let semicolon = bytes.firstIndex(of: UInt8(ascii: ";")) { end = semicolon }
      while start < end && (bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t")) { start += 1 }
      while end > start && (bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\t")) { end -= 1 }
      let expected = Self.jsonMediaType
      guard end - start == expected.count else { return false }
      for offset in 0..<expected.count {
        let byte = expected[offset]
        let given = bytes[start + offset]
        // ASCII case folding, for letters only.
        guard given == byte || (given | 0x20 == byte && byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) else {
          return false
        }
      }
      return true
    }
  }

  /// The headers of every JSON answer, made once (each response shares them).
  private static let jsonHeaders: HTTPHeaders = ["Content-Type": "application/json"]

  private static func json(_ body: [UInt8]) -> HTTPResponse {
    HTTPResponse(status: .ok, headers: jsonHeaders, body: body)
  }

  private static func reply(_ problem: Problem) -> HTTPResponse {
    var headers: HTTPHeaders = ["Content-Type": "application/problem+json"]
    for (name, value) in problem.headers { headers.add(name: name, value: value) }
    return HTTPResponse(status: HTTPStatus(code: problem.status), headers: headers, body: problem.body)
  }
}

/// The Adjoint HTTP server: the routes of the contract over our HTTP/1.1 server.
///
/// ```swift
/// let server = AdjointServer(configuration: ServiceConfiguration(port: 0))
/// let port = try server.start()
/// server.wait()
/// ```
public final class AdjointServer: Sendable {
  private let service: Service
  private let http: HTTPServer
  private let signals = Locked<TerminationSignals?>(nil)

  /// Creates a server; nothing listens until ``start()``.
  /// - Parameter logger: Where the HTTP server logs each request (at `info`); `nil` logs nothing.
  public init(configuration: ServiceConfiguration, logger: Logger? = nil) {
    service = Service(configuration: configuration)
    var http = configuration.http
    http.host = configuration.host
    http.port = configuration.port
    http.limits.maxBodyBytes = configuration.limits.maxBodyBytes
    self.http = HTTPServer(configuration: http, responder: service, logger: logger)
  }

  /// Binds and listens; returns the bound port.
  ///
  /// - Throws: an error that says why the address cannot be used.
  public func start() throws -> Int {
    try http.start()
  }

  /// Stops accepting, lets requests in flight finish (those still arriving included), then stops the workers.
  public func shutdown() {
    service.beginDraining()
    http.shutdown()
    let http = self.http
    let service = self.service
    DispatchQueue.global().async {
      http.wait()
      service.stop()
    }
  }

  /// From now on SIGTERM and SIGINT shut the server down gracefully (``shutdown()``) instead of killing the process.
  public func shutdownOnTerminationSignals() {
    signals.withLock { $0 = TerminationSignals { [weak self] in self?.shutdown() } }
  }

  /// Blocks until the server has shut down.
  public func wait() {
    http.wait()
  }
}
