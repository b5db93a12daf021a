import AdjointCompute
import Foundation

/// One HTTP-shaped exchange with the service: what ``AdjointClient`` asks of a ``Backend``.
public struct BackendRequest: Sendable {
  /// `GET`, `POST` or `DELETE`.
  public var method: String
  /// The path (`/gradient`, `/graphs/sha256:…`).
  public var path: String
  /// The JSON body (empty for `GET` and `DELETE`).
  public var body: [UInt8]

  /// Creates a request.
  public init(method: String, path: String, body: [UInt8] = []) {
    self.method = method
    self.path = path
    self.body = body
  }
}

/// What a ``Backend`` answered.
public struct BackendResponse: Sendable {
  /// The HTTP status.
  public var status: Int
  /// The `Retry-After` header in seconds, when there was one.
  public var retryAfter: Double?
  /// The body: JSON, `application/problem+json`, or empty.
  public var body: [UInt8]

  /// Creates a response.
  public init(status: Int, retryAfter: Double? = nil, body: [UInt8]) {
    self.status = status
    self.retryAfter = retryAfter
    self.body = body
  }
}

/// Where an ``AdjointClient`` sends its requests: a server over HTTP (``RemoteBackend``), or the service's own
/// computations in this process (``LocalBackend``). Both answer with the same statuses and bodies.
public protocol Backend: Sendable {
  /// Sends one request and returns the answer, whatever its status.
  ///
  /// - Throws: ``AdjointError/connection(_:)`` when the service cannot be reached or the connection breaks (the
  ///   client retries those), or ``AdjointError/invalidRequest(_:)``.
  func send(_ request: BackendRequest) async throws(AdjointError) -> BackendResponse
}

/// The service's own computations (the code the server runs), in this process: no HTTP, no server.
///
/// It answers exactly what a server would, body for body, so tests and offline programs can use it in place of a
/// ``RemoteBackend``. Work runs on a pool of its own threads, as on the server.
public final class LocalBackend: Backend {
  private let compute: Compute
  private let pool: WorkerPool
  private let requestTimeout: Double

  /// Starts `workers` threads (default one per core); `requestTimeout` bounds each request, as the server's
  /// `--request-timeout-s` does.
  public init(workers: Int = ProcessInfo.processInfo.activeProcessorCount, requestTimeout: Double = 30) {
    pool = WorkerPool(workers: workers, maxQueue: 1 << 20)
    let limits = ServiceLimits()
    compute = Compute(
      limits: limits, cache: ProgramCache(budget: 64 << 20, workers: pool.workers),
      registry: GraphRegistry(budget: 256 << 20), pool: pool)
    self.requestTimeout = requestTimeout
  }

  deinit { pool.stop() }

  private static let products: [String: Compute.Product] = Dictionary(
    uniqueKeysWithValues: Compute.Product.allCases.map { ("/\($0.rawValue)", $0) })

  /// Answers `request` as the server would.
  public func send(_ request: BackendRequest) async throws(AdjointError) -> BackendResponse {
    let compute = self.compute
    let deadline = Deadline(seconds: requestTimeout)
    let path = request.path
    if let product = Self.products[path] {
      guard request.method == "POST" else { return Self.reply(.methodNotAllowed(request.method, allowed: ["POST"])) }
      let body = request.body
      return await onWorker {
        do throws(AdjointCompute.Problem) {
          return BackendResponse(status: 200, body: try compute.run(product, body: body, deadline: deadline))
        } catch {
          return Self.reply(error)
        }
      }
    }
    switch path {
    case "/graphs":
      guard request.method == "POST" else { return Self.reply(.methodNotAllowed(request.method, allowed: ["POST"])) }
      let body = request.body
      return await onWorker {
        do throws(AdjointCompute.Problem) {
          let (_, created, answer) = try compute.register(body: body)
          return BackendResponse(status: created ? 201 : 200, body: answer)
        } catch {
          return Self.reply(error)
        }
      }
    case "/ops": return BackendResponse(status: 200, body: Compute.opsBody)
    case "/healthz": return BackendResponse(status: 200, body: Array(#"{"status":"ok"}"#.utf8))
    case "/readyz": return BackendResponse(status: 200, body: Array(#"{"status":"ready"}"#.utf8))
    default:
      guard path.hasPrefix("/graphs/"), let id = String(path.dropFirst("/graphs/".count)).removingPercentEncoding
      else { return Self.reply(.notFound(path)) }
      switch request.method {
      case "GET":
        guard let entry = compute.registry.entry(id) else { return Self.reply(.unknownGraph(id, pointer: "")) }
        return BackendResponse(status: 200, body: entry.canonical)
      case "DELETE":
        guard compute.registry.remove(id) else { return Self.reply(.unknownGraph(id, pointer: "")) }
        return BackendResponse(status: 204, body: [])
      default:
        return Self.reply(.methodNotAllowed(request.method, allowed: ["GET", "HEAD", "DELETE"]))
      }
    }
  }

  /// Runs `work` on one of the pool's threads.
  private func onWorker(_ work: @escaping @Sendable () -> BackendResponse) async -> BackendResponse {
    let pool = self.pool
    return await withCheckedContinuation { continuation in
      if !pool.submit({ continuation.resume(returning: work()) }) {
        continuation.resume(returning: Self.reply(.overloaded(retryAfter: 1)))
      }
    }
  }

  private static func reply(_ problem: AdjointCompute.Problem) -> BackendResponse {
    let retryAfter = problem.headers.first { $0.0.lowercased() == "retry-after" }.flatMap { Double($0.1) }
    return BackendResponse(status: problem.status, retryAfter: retryAfter, body: problem.body)
  }
}
