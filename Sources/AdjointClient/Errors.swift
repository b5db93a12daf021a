import AdjointJSON

/// A failure of a call to the service.
///
/// ```swift
/// do {
///   _ = try await client.gradient(of: "x +", at: ["x": 1])
/// } catch let error as AdjointError {
///   if case .problem(let problem) = error {
///     print(problem.kind, problem.errors[0].pointer, problem.errors[0].position ?? -1)   // syntax /expr 3
///   }
/// }
/// ```
public enum AdjointError: Error, Sendable, CustomStringConvertible {
  /// The service answered with an `application/problem+json` body.
  case problem(Problem)
  /// The service could not be reached (after the retries), or the connection broke.
  case connection(String)
  /// The answer was not what the contract promises (a bug on one side, or not an Adjoint server).
  case invalidResponse(String)
  /// The request cannot be made as asked (for example, an unusable option of the client).
  case invalidRequest(String)

  /// The problem when this is a ``problem(_:)``, else `nil`.
  public var problem: Problem? {
    if case .problem(let problem) = self { return problem }
    return nil
  }

  /// A one-line description.
  public var description: String {
    switch self {
    case .problem(let problem): problem.description
    case .connection(let message): "cannot reach the service: \(message)"
    case .invalidResponse(let message): "unexpected answer from the service: \(message)"
    case .invalidRequest(let message): "invalid request: \(message)"
    }
  }
}

/// An error the service answered as `application/problem+json` (RFC 9457), with the located mistakes.
public struct Problem: Sendable, Equatable, CustomStringConvertible {
  /// One located mistake.
  public struct Entry: Sendable, Equatable {
    /// A JSON Pointer into the request (`/expr`, `/at/x/1`, `/graph/nodes/2/args/0`).
    public var pointer: String
    /// What is wrong there.
    public var message: String
    /// For `expr`, the 0-based offset of the offending character, in Unicode scalars.
    public var position: Int?

    /// Creates an entry.
    public init(pointer: String, message: String, position: Int? = nil) {
      self.pointer = pointer
      self.message = message
      self.position = position
    }
  }

  /// The kinds of problem the contract names, from the `type` URI.
  public enum Kind: String, Sendable, Equatable {
    /// 400: malformed JSON, wrong types, ragged tensors, …
    case badRequest = "bad-request"
    /// 400: an `expr` syntax error.
    case syntax
    /// 422: a well-formed function that means nothing (unknown op or name, shape mismatch, …).
    case invalidFunction = "invalid-function"
    /// 422: a well-formed request that cannot be answered (non-scalar output, non-finite values, …).
    case unprocessable
    /// 413: over a limit.
    case tooLarge = "too-large"
    /// 415: not JSON.
    case unsupportedMediaType = "unsupported-media-type"
    /// 404: no graph has the id.
    case unknownGraph = "unknown-graph"
    /// 404: no such path.
    case notFound = "not-found"
    /// 405: wrong method.
    case methodNotAllowed = "method-not-allowed"
    /// 401: a bearer token is needed, or the one sent is wrong.
    case unauthorized
    /// 503: the work queue is full.
    case overloaded
    /// 503: the request was not answered within its time limit.
    case deadline
    /// 503: the server is shutting down.
    case draining
    /// Any other type.
    case other
  }

  /// The HTTP status.
  public var status: Int
  /// The problem type URI (`https://adjoint.dev/problems/syntax`).
  public var type: String
  /// A short summary.
  public var title: String
  /// What went wrong.
  public var detail: String
  /// The located mistakes.
  public var errors: [Entry]
  /// Seconds the service asked to wait before retrying (`Retry-After`), when it said.
  public var retryAfter: Double?
  /// The problem+json body as the service wrote it (empty for a problem made here).
  public internal(set) var body: [UInt8] = []

  /// Creates a problem.
  public init(
    status: Int, type: String, title: String, detail: String, errors: [Entry] = [], retryAfter: Double? = nil
  ) {
    self.status = status
    self.type = type
    self.title = title
    self.detail = detail
    self.errors = errors
    self.retryAfter = retryAfter
  }

  /// The kind, from ``type``.
  public var kind: Kind {
    let prefix = "https://adjoint.dev/problems/"
    guard type.hasPrefix(prefix) else { return .other }
    return Kind(rawValue: String(type.dropFirst(prefix.count))) ?? .other
  }

  /// `status title: detail`, then each mistake's pointer (and position) and message.
  public var description: String {
    var text = "\(status) \(title): \(detail)"
    for entry in errors {
      text += "\n  at \(entry.pointer.isEmpty ? "(the body)" : entry.pointer)"
      if let position = entry.position { text += " (character \(position))" }
      text += ": \(entry.message)"
    }
    return text
  }

  /// Decodes a problem+json body; `nil` when it is not one.
  init?(body: [UInt8], status: Int, retryAfter: Double?) {
    guard let document = try? JSONParser.parse(body), case .object(let object) = document,
      let type = object["type"]?.stringValue
    else { return nil }
    var entries: [Entry] = []
    for item in object["errors"]?.arrayValue ?? [] {
      guard let pointer = item["pointer"]?.stringValue, let message = item["message"]?.stringValue else { continue }
      entries.append(Entry(pointer: pointer, message: message, position: item["position"]?.intValue))
    }
    self.init(
      status: object["status"]?.intValue ?? status, type: type, title: object["title"]?.stringValue ?? "",
      detail: object["detail"]?.stringValue ?? "", errors: entries, retryAfter: retryAfter)
    self.body = body
  }
}
