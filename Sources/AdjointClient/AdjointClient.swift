import AdjointJSON
import Foundation

/// When and how ``AdjointClient`` retries: on 503 and on connection failures only (the computations are pure, so
/// a retry is always safe), never on another status.
public struct RetryPolicy: Sendable {
  /// The most attempts per request, the first included (1: never retry).
  public var maxAttempts: Int
  /// The delay before the first retry, in seconds; it doubles with each retry, up to ``maxDelay``.
  public var initialDelay: Double
  /// The longest delay between attempts, in seconds (a longer `Retry-After` is cut to it).
  public var maxDelay: Double
  /// Called before each retry with the attempt that failed (1 for the first), the delay, and why.
  public var onRetry: (@Sendable (_ attempt: Int, _ delay: Double, _ reason: String) -> Void)?

  /// Creates a policy; the default makes 4 attempts, 0.1 s, 0.2 s and 0.4 s apart (each with jitter, and never
  /// sooner than the server's `Retry-After`).
  public init(
    maxAttempts: Int = 4, initialDelay: Double = 0.1, maxDelay: Double = 10,
    onRetry: (@Sendable (_ attempt: Int, _ delay: Double, _ reason: String) -> Void)? = nil
  ) {
    self.maxAttempts = max(1, maxAttempts)
    self.initialDelay = initialDelay
    self.maxDelay = maxDelay
    self.onRetry = onRetry
  }

  /// Never retry.
  public static let never = RetryPolicy(maxAttempts: 1)

  /// The delay after failed attempt `attempt` (1-based): exponential, with jitter between half and all of it, and
  /// at least `retryAfter`.
  func delay(after attempt: Int, retryAfter: Double?) -> Double {
    let exponential = min(maxDelay, initialDelay * Double(1 << min(attempt - 1, 30)))
    let jittered = exponential * Double.random(in: 0.5...1)
    return min(maxDelay, max(jittered, retryAfter ?? 0))
  }
}

/// How tensors travel between the client and the service.
public enum TensorLayout: String, Sendable {
  /// Nested JSON arrays (`[[1, 2], [3, 4]]`): readable.
  case nested
  /// `{"shape": [...], "data": [...]}`.
  case flat
  /// `{"shape": [...], "base64": "..."}`: the raw float64 bytes, bit-exact and the fastest to parse (the default).
  case base64
}

/// The compute endpoints of the contract.
public enum Endpoint: String, Sendable, CaseIterable {
  /// `POST /evaluate`.
  case evaluate
  /// `POST /gradient`.
  case gradient
  /// `POST /vjp`.
  case vjp
  /// `POST /jvp`.
  case jvp
  /// `POST /jacobian`.
  case jacobian
  /// `POST /hessian`.
  case hessian
  /// `POST /gradcheck`.
  case gradcheck
}

/// Which mode `POST /jacobian` uses.
public enum JacobianMode: String, Sendable {
  /// The cheaper of the two for the shapes at hand.
  case auto
  /// One JVP per input element.
  case forward
  /// One VJP per output element.
  case reverse
}

/// A client of the Adjoint service: values and derivatives of functions, over HTTP or in-process.
///
/// ```swift
/// let client = try AdjointClient(url: URL(string: "http://127.0.0.1:8080")!)   // or AdjointClient.local()
/// let x = Input("x"), y = Input("y")
/// let f = sin(x * y) + x ** 2
/// let r = try await client.gradient(of: f, at: ["x": 1.5, "y": -0.5])
/// print(r.value, r.gradient["x"]!, r.gradient["y"]!)
/// ```
///
/// Every method throws ``AdjointError``: a ``Problem`` the service answered (with its JSON Pointer), or a
/// connection failure that outlasted the ``RetryPolicy``. A ``RegisteredGraph`` whose id a server does not know
/// (it restarted, or a load balancer chose another replica) is registered again, transparently.
public struct AdjointClient: Sendable {
  /// Where requests go.
  public let backend: any Backend
  /// When requests are retried.
  public var retry: RetryPolicy
  /// How tensors travel (``TensorLayout/base64`` by default: bit-exact).
  public var layout: TensorLayout

  /// A client over any backend.
  public init(backend: any Backend, retry: RetryPolicy = RetryPolicy(), layout: TensorLayout = .base64) {
    self.backend = backend
    self.retry = retry
    self.layout = layout
  }

  /// A client of the server at `url` (see ``RemoteBackend/init(url:token:caCertificatePath:timeout:)``).
  public init(
    url: URL, token: String? = nil, caCertificatePath: String? = nil, timeout: Double = 60,
    retry: RetryPolicy = RetryPolicy()
  ) throws(AdjointError) {
    self.init(
      backend: try RemoteBackend(url: url, token: token, caCertificatePath: caCertificatePath, timeout: timeout),
      retry: retry)
  }

  /// A client that runs the service's computations in this process (no server; see ``LocalBackend``).
  public static func local(workers: Int = ProcessInfo.processInfo.activeProcessorCount) -> AdjointClient {
    AdjointClient(backend: LocalBackend(workers: workers))
  }

  // MARK: Compute

  /// The value of every output of `function` at a point (`POST /evaluate`).
  public func evaluate(
    _ function: some FunctionRepresentable, at point: [String: Tensor], checkNumerics: Bool = false
  ) async throws(AdjointError) -> Evaluation {
    try Evaluation(json: try await compute(.evaluate, function, .point(point), checkNumerics: checkNumerics) { _ in })
  }

  /// The value of every output of `function` at each point of a batch, in order.
  public func evaluate(
    _ function: some FunctionRepresentable, batch: [[String: Tensor]], checkNumerics: Bool = false
  ) async throws(AdjointError) -> [Evaluation] {
    let json = try await compute(.evaluate, function, .batch(batch), checkNumerics: checkNumerics) { _ in }
    return try results(json).map { (item) throws(AdjointError) in try Evaluation(json: item) }
  }

  /// The value of a scalar function and its gradient with respect to `wrt` (default every input).
  public func gradient(
    of function: some FunctionRepresentable, at point: [String: Tensor], wrt: [String]? = nil,
    checkNumerics: Bool = false
  ) async throws(AdjointError) -> GradientResult {
    try GradientResult(
      json: try await compute(.gradient, function, .point(point), checkNumerics: checkNumerics) { writeWRT(wrt, &$0) })
  }

  /// The value and gradient of a scalar function at each point of a batch, in order.
  public func gradient(
    of function: some FunctionRepresentable, batch: [[String: Tensor]], wrt: [String]? = nil,
    checkNumerics: Bool = false
  ) async throws(AdjointError) -> [GradientResult] {
    let json = try await compute(.gradient, function, .batch(batch), checkNumerics: checkNumerics) {
      writeWRT(wrt, &$0)
    }
    return try results(json).map { (item) throws(AdjointError) in try GradientResult(json: item) }
  }

  /// The value and the vector-Jacobian product `cotangent · J` with respect to `wrt` (default every input).
  public func vjp(
    of function: some FunctionRepresentable, at point: [String: Tensor], cotangent: Tensor, wrt: [String]? = nil,
    checkNumerics: Bool = false
  ) async throws(AdjointError) -> VJPResult {
    let layout = self.layout
    return try VJPResult(
      json: try await compute(.vjp, function, .point(point), checkNumerics: checkNumerics) { writer in
        writer.writeKey("cotangent")
        Self.write(cotangent, layout, &writer)
        writeWRT(wrt, &writer)
      })
  }

  /// The value and the Jacobian-vector product `J · tangent` (inputs missing from `tangent` count as zero).
  public func jvp(
    of function: some FunctionRepresentable, at point: [String: Tensor], tangent: [String: Tensor],
    checkNumerics: Bool = false
  ) async throws(AdjointError) -> JVPResult {
    let layout = self.layout
    return try JVPResult(
      json: try await compute(.jvp, function, .point(point), checkNumerics: checkNumerics) { writer in
        writer.writeKey("tangent")
        Self.write(tangent, layout, &writer)
      })
  }

  /// The value and the Jacobian with respect to `wrt` (default every input), each of shape `out.shape + x.shape`.
  public func jacobian(
    of function: some FunctionRepresentable, at point: [String: Tensor], wrt: [String]? = nil,
    mode: JacobianMode = .auto, checkNumerics: Bool = false
  ) async throws(AdjointError) -> JacobianResult {
    try JacobianResult(
      json: try await compute(.jacobian, function, .point(point), checkNumerics: checkNumerics) { writer in
        writeWRT(wrt, &writer)
        writer.writeKey("mode")
        writer.write(mode.rawValue)
      })
  }

  /// The value, gradient and Hessian of a scalar function with respect to `wrt` (default every input).
  public func hessian(
    of function: some FunctionRepresentable, at point: [String: Tensor], wrt: [String]? = nil,
    checkNumerics: Bool = false
  ) async throws(AdjointError) -> HessianResult {
    try HessianResult(
      json: try await compute(.hessian, function, .point(point), checkNumerics: checkNumerics) { writeWRT(wrt, &$0) })
  }

  /// The AD gradient beside a central finite-difference gradient of step `eps` (the server's default when `nil`).
  public func gradcheck(
    of function: some FunctionRepresentable, at point: [String: Tensor], wrt: [String]? = nil, eps: Double? = nil
  ) async throws(AdjointError) -> GradientCheck {
    try GradientCheck(
      json: try await compute(.gradcheck, function, .point(point), checkNumerics: false) { writer in
        writeWRT(wrt, &writer)
        if let eps {
          writer.writeKey("eps")
          writer.write(eps)
        }
      })
  }

  /// Sends a request body as it is to a compute endpoint and returns the response body as the service wrote it
  /// (what `adjoint grad --json` prints). Retries as usual; an error status throws its ``Problem``.
  public func send(_ endpoint: Endpoint, body: [UInt8]) async throws(AdjointError) -> [UInt8] {
    try await exchange(BackendRequest(method: "POST", path: "/\(endpoint.rawValue)", body: body)).body
  }

  // MARK: Graphs and service routes

  /// Registers a function (`POST /graphs`) and returns its content id; pass the result wherever a function goes.
  public func register(_ function: some FunctionRepresentable) async throws(AdjointError) -> RegisteredGraph {
    let inline = function.function.inline
    let response = try await exchange(BackendRequest(method: "POST", path: "/graphs", body: inline.registrationBody))
    let json = try parse(response.body)
    guard let id = json["id"]?.stringValue else { throw .invalidResponse("no 'id' in the answer of POST /graphs") }
    return RegisteredGraph(
      id: id, created: response.status == 201, registered: Function(source: .registered(id: id, inline: inline.source)))
  }

  /// The canonical JSON graph registered under `id` (`GET /graphs/{id}`).
  public func graph(id: String) async throws(AdjointError) -> Graph {
    let response = try await exchange(BackendRequest(method: "GET", path: "/graphs/\(Self.escape(id))"))
    return Graph(json: response.body)
  }

  /// Forgets the graph registered under `id` (`DELETE /graphs/{id}`).
  public func deleteGraph(id: String) async throws(AdjointError) {
    _ = try await exchange(BackendRequest(method: "DELETE", path: "/graphs/\(Self.escape(id))"))
  }

  /// The ops the service knows (`GET /ops`).
  public func ops() async throws(AdjointError) -> [OpInfo] {
    let json = try parse(try await exchange(BackendRequest(method: "GET", path: "/ops")).body)
    guard case .array(let items)? = json["ops"] else { throw .invalidResponse("no 'ops' list") }
    return items.map { item in
      OpInfo(
        name: item["name"]?.stringValue ?? "", arity: item["arity"]?.intValue,
        attrs: item["attrs"]?.arrayValue?.compactMap(\.stringValue) ?? [], doc: item["doc"]?.stringValue ?? "")
    }
  }

  /// Whether the service is up (`GET /healthz` answers 200).
  public func health() async throws(AdjointError) -> Bool {
    try await exchange(BackendRequest(method: "GET", path: "/healthz")).status == 200
  }

  // MARK: Requests

  enum Points {
    case point([String: Tensor])
    case batch([[String: Tensor]])
  }

  /// Sends a compute request; on 404 for an unknown registered id, registers the graph again and retries, and if
  /// that id is unknown again (another replica), sends the graph inline.
  private func compute(
    _ endpoint: Endpoint, _ representable: some FunctionRepresentable, _ points: Points, checkNumerics: Bool,
    extra: (inout JSONWriter) -> Void
  ) async throws(AdjointError) -> JSONValue {
    let function = representable.function
    let body = encode(function, points, checkNumerics: checkNumerics, extra: extra)
    let request = BackendRequest(method: "POST", path: "/\(endpoint.rawValue)", body: body)
    do {
      return try parse(try await exchange(request).body)
    } catch {
      guard function.registeredID != nil, error.problem?.kind == .unknownGraph else { throw error }
    }
    _ = try await register(function.inline)
    do {
      return try parse(try await exchange(request).body)
    } catch {
      guard error.problem?.kind == .unknownGraph else { throw error }
    }
    let inline = encode(function.inline, points, checkNumerics: checkNumerics, extra: extra)
    return try parse(try await exchange(BackendRequest(method: "POST", path: request.path, body: inline)).body)
  }

  private func encode(
    _ function: Function, _ points: Points, checkNumerics: Bool, extra: (inout JSONWriter) -> Void
  ) -> [UInt8] {
    var writer = JSONWriter(capacity: 1024)
    writer.beginObject()
    function.writeFunction(to: &writer)
    switch points {
    case .point(let point):
      writer.writeKey("at")
      Self.write(point, layout, &writer)
    case .batch(let batch):
      writer.writeKey("batch")
      writer.beginArray()
      for point in batch { Self.write(point, layout, &writer) }
      writer.endArray()
    }
    extra(&writer)
    if layout != .nested {
      writer.writeKey("layout")
      writer.write(layout.rawValue)
    }
    if checkNumerics {
      writer.writeKey("check_numerics")
      writer.write(true)
    }
    writer.endObject()
    return writer.bytes
  }

  private static func write(_ tensor: Tensor, _ layout: TensorLayout, _ writer: inout JSONWriter) {
    // A scalar is one number in every layout: shortest round-trip text is exact.
    let jsonLayout: JSONTensorLayout = tensor.rank == 0 ? .nested : JSONTensorLayout(rawValue: layout.rawValue)!
    tensor.write(to: &writer, layout: jsonLayout)
  }

  private static func write(_ point: [String: Tensor], _ layout: TensorLayout, _ writer: inout JSONWriter) {
    writer.beginObject()
    for name in point.keys.sorted() {
      writer.writeKey(name)
      write(point[name]!, layout, &writer)
    }
    writer.endObject()
  }

  /// One exchange with retries: on a connection failure or a 503, waits (exponentially longer, with jitter, and
  /// at least `Retry-After`) and tries again, up to `retry.maxAttempts`. Any status of 400 or more then throws.
  private func exchange(_ request: BackendRequest) async throws(AdjointError) -> BackendResponse {
    var attempt = 1
    while true {
      let response: BackendResponse
      do {
        response = try await backend.send(request)
      } catch {
        guard case .connection(let message) = error, attempt < retry.maxAttempts else { throw error }
        try await pause(after: attempt, retryAfter: nil, reason: message)
        attempt += 1
        continue
      }
      if response.status == 503 && attempt < retry.maxAttempts {
        try await pause(after: attempt, retryAfter: response.retryAfter, reason: "503 Service Unavailable")
        attempt += 1
        continue
      }
      guard response.status < 400 else {
        if let problem = Problem(body: response.body, status: response.status, retryAfter: response.retryAfter) {
          throw .problem(problem)
        }
        throw .invalidResponse(
          "status \(response.status): \(String(decoding: response.body.prefix(200), as: UTF8.self))")
      }
      return response
    }
  }

  private func pause(after attempt: Int, retryAfter: Double?, reason: String) async throws(AdjointError) {
    let delay = retry.delay(after: attempt, retryAfter: retryAfter)
    retry.onRetry?(attempt, delay, reason)
    do {
      try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
    } catch {
      throw .connection("cancelled while waiting to retry after: \(reason)")
    }
  }

  private func parse(_ body: [UInt8]) throws(AdjointError) -> JSONValue {
    do {
      return try JSONParser.parse(body)
    } catch {
      throw .invalidResponse("the body is not JSON: \(error.description)")
    }
  }

  private func results(_ json: JSONValue) throws(AdjointError) -> JSONArray {
    guard case .array(let items)? = json["results"] else { throw .invalidResponse("no 'results' list") }
    return items
  }

  private static func escape(_ id: String) -> String {
    id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/")))
      ?? id
  }
}

private func writeWRT(_ wrt: [String]?, _ writer: inout JSONWriter) {
  guard let wrt else { return }
  writer.writeKey("wrt")
  writer.beginArray()
  for name in wrt { writer.write(name) }
  writer.endArray()
}
