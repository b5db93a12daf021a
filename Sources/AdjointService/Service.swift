import AdjointJSON
import Dispatch
import HTTPCore
import HTTPServer
import Logging
import Synchronization

/// The routes of the wire contract, as an ``HTTPResponder``.
///
/// Cheap routes (health, the spec) answer on the connection's event-loop thread; compute routes go to the
/// ``WorkerPool`` and answer from a worker thread. Every failure is turned into problem+json in one place, ``reply(_:)``.
final class Service: HTTPResponder {
  private let compute: Compute
  private let pool: WorkerPool
  /// Set when the server starts draining: `/readyz` then answers 503 so load balancers stop sending new work.
  private let draining = Atomic<Bool>(false)

  init(configuration: ServiceConfiguration) {
    compute = Compute(limits: configuration.limits)
    pool = WorkerPool(workers: configuration.workers, maxQueue: configuration.maxQueue)
  }

  private static let computeRoutes: [String: Compute.Product] = ["/evaluate": .evaluate, "/gradient": .gradient]

  func respond(to request: HTTPRequest, reply: @escaping @Sendable (HTTPResponse) -> Void) {
    let path = String(request.path)
    if let product = Self.computeRoutes[path] {
      guard request.method == .post else {
        return reply(Self.reply(.methodNotAllowed(request.method.rawValue, allowed: ["POST"])))
      }
      guard Self.isJSON(request.headers["content-type"]) else {
        return reply(Self.reply(.unsupportedMediaType("the body must be application/json")))
      }
      let body = request.body
      let compute = self.compute
      let accepted = pool.submit {
        do throws(Problem) {
          reply(Self.json(try compute.run(product, body: body)))
        } catch {
          reply(Self.reply(error))
        }
      }
      if !accepted { reply(Self.reply(.overloaded(retryAfter: 1))) }
      return
    }
    switch path {
    case "/healthz": reply(Self.get(request) { Self.json(Array(#"{"status":"ok"}"#.utf8)) })
    case "/readyz":
      let draining = self.draining.load(ordering: .relaxed)
      reply(
        Self.get(request) {
          draining ? Self.reply(.draining(retryAfter: 1)) : Self.json(Array(#"{"status":"ready"}"#.utf8))
        })
    case "/openapi.yaml":
      reply(
        Self.get(request) {
          HTTPResponse(status: .ok, headers: ["Content-Type": "application/yaml"], body: PackageResources.openapi_yaml)
        })
    default: reply(Self.reply(.notFound(path)))
    }
  }

  /// Stops the workers once the queued jobs are done.
  func stop() { pool.stop() }

  /// From now on `/readyz` answers 503.
  func beginDraining() { draining.store(true, ordering: .relaxed) }

  private static func get(_ request: HTTPRequest, _ answer: () -> HTTPResponse) -> HTTPResponse {
    guard request.method == .get || request.method == .head else {
      return reply(.methodNotAllowed(request.method.rawValue, allowed: ["GET", "HEAD"]))
    }
    return answer()
  }

  private static func isJSON(_ contentType: String?) -> Bool {
    guard let contentType else { return false }
    let mediaType = contentType.split(separator: ";", maxSplits: 1)[0].trimmingSpaces.lowercased()
    return mediaType == "application/json"
  }

  private static func json(_ body: [UInt8]) -> HTTPResponse {
    HTTPResponse(status: .ok, headers: ["Content-Type": "application/json"], body: body)
  }

  private static func reply(_ problem: Problem) -> HTTPResponse {
    var headers: HTTPHeaders = ["Content-Type": "application/problem+json"]
    for (name, value) in problem.headers { headers.add(name: name, value: value) }
    return HTTPResponse(status: HTTPStatus(code: problem.status), headers: headers, body: problem.body)
  }
}

extension Substring {
  fileprivate var trimmingSpaces: Substring {
    var result = self
    while let first = result.first, first == " " || first == "\t" { result.removeFirst() }
    while let last = result.last, last == " " || last == "\t" { result.removeLast() }
    return result
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
  private let signals = Mutex<TerminationSignals?>(nil)

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
