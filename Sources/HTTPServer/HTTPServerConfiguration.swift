import HTTPCore

/// Answers HTTP requests for an ``HTTPServer``.
///
/// ```swift
/// struct Hello: HTTPResponder {
///   func respond(to request: HTTPRequest, reply: @escaping @Sendable (HTTPResponse) -> Void) {
///     reply(HTTPResponse(body: Array("hello\n".utf8)))
///   }
/// }
/// ```
public protocol HTTPResponder: Sendable {
  /// Answers one request.
  ///
  /// Called on the connection's event-loop thread, which serves other connections too: do heavy work elsewhere.
  /// Call `reply` exactly once, from any thread; later calls are ignored. The connection reads no further request
  /// until the reply has been written.
  /// - Parameters:
  ///   - request: The complete request, body included.
  ///   - reply: Sends the response.
  func respond(to request: HTTPRequest, reply: @escaping @Sendable (HTTPResponse) -> Void)

  /// Looks at a request before its body is read, to refuse it early (a missing credential, say).
  ///
  /// Called on the connection's event-loop thread once the request's header section has been parsed, before any byte
  /// of its body is read or buffered and before `100 Continue` is sent; keep it cheap. The head carries the request's
  /// `X-Request-Id` (see ``HTTPRequestID``). Return `nil` to let the request through to ``respond(to:reply:)``, or a
  /// response to send instead: the body of a refused request is never read, so if it has one the connection closes
  /// (lingeringly) after the response; a refused bodiless request leaves the connection open. The default
  /// implementation returns `nil`.
  /// - Parameter head: The request line and header fields.
  /// - Returns: `nil`, or the response that refuses the request.
  func screen(_ head: HTTPRequestHead) -> HTTPResponse?
}

extension HTTPResponder {
  /// Lets every request through.
  public func screen(_ head: HTTPRequestHead) -> HTTPResponse? { nil }
}

/// An ``HTTPResponder`` made from a synchronous closure (handy for tests and trivial routes).
public struct HTTPClosureResponder: HTTPResponder {
  private let handler: @Sendable (HTTPRequest) -> HTTPResponse

  /// Creates a responder that answers each request with `handler(request)`, on the connection's event-loop thread.
  public init(_ handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse) { self.handler = handler }

  public func respond(to request: HTTPRequest, reply: @escaping @Sendable (HTTPResponse) -> Void) {
    reply(handler(request))
  }
}

/// How an ``HTTPServer`` listens and what it accepts.
public struct HTTPServerConfiguration: Sendable {
  /// The address to listen on: an IPv4 or IPv6 literal (`"127.0.0.1"`, `"0.0.0.0"`, `"::1"`, `"::"`), or a host
  /// name such as `"localhost"`. Default `"127.0.0.1"`.
  public var host: String
  /// The TCP port; 0 picks a free one (see ``HTTPServer/start()``). Default 8080.
  public var port: Int
  /// The length of the queue of connections not yet accepted. Default 1024.
  public var backlog: Int
  /// The request parser limits. Default: the documented defaults of ``HTTPParserLimits``. `maxBodyBytes` also
  /// bounds a body once inflated from gzip.
  public var limits: HTTPParserLimits
  /// The read time-outs. Default: the documented defaults of ``HTTPTimeouts``.
  public var timeouts: HTTPTimeouts
  /// The most connections open at once; past it a new connection gets a 503 and is closed. Default 10,000.
  public var maxConnections: Int
  /// How long ``HTTPServer/shutdown()`` lets requests in flight finish before closing their connections.
  /// Default 30 s.
  public var drainTimeout: Duration
  /// When responses are gzipped. Default: the documented defaults of ``HTTPCompression``.
  public var compression: HTTPCompression
  /// The certificate and key for HTTPS; `nil` (the default) serves plain HTTP.
  public var tls: HTTPTLSFiles?

  /// Creates a configuration; every argument has the documented default.
  public init(
    host: String = "127.0.0.1", port: Int = 8080, backlog: Int = 1024, limits: HTTPParserLimits = HTTPParserLimits(),
    timeouts: HTTPTimeouts = HTTPTimeouts(), maxConnections: Int = 10_000, drainTimeout: Duration = .seconds(30),
    compression: HTTPCompression = HTTPCompression(), tls: HTTPTLSFiles? = nil
  ) {
    self.host = host
    self.port = port
    self.backlog = backlog
    self.limits = limits
    self.timeouts = timeouts
    self.maxConnections = maxConnections
    self.drainTimeout = drainTimeout
    self.compression = compression
    self.tls = tls
  }
}

/// The PEM files of a TLS server: TLS 1.2 and 1.3 only, ALPN `http/1.1`.
public struct HTTPTLSFiles: Hashable, Sendable {
  /// The certificate chain: the server's certificate, then any intermediates.
  public var certificatePath: String
  /// The unencrypted private key of the certificate.
  public var keyPath: String

  /// Names the two files.
  public init(certificatePath: String, keyPath: String) {
    self.certificatePath = certificatePath
    self.keyPath = keyPath
  }
}

/// Why an ``HTTPServer`` could not start.
///
/// Compare against the static values (`error == .addressInUse`); ``message`` has the specifics.
public struct HTTPServerError: Error, Hashable, Sendable, CustomStringConvertible {
  private enum Base: Hashable, Sendable {
    case addressInUse
    case invalidAddress
    case alreadyStarted
    case systemCallFailed
    case tlsSetupFailed
  }

  private let base: Base
  /// A human-readable explanation.
  public let message: String
  /// The C error number behind the failure, if any.
  public let errorNumber: Int32?

  private init(_ base: Base, _ message: String, _ errorNumber: Int32? = nil) {
    self.base = base
    self.message = message
    self.errorNumber = errorNumber
  }

  public static func == (lhs: HTTPServerError, rhs: HTTPServerError) -> Bool { lhs.base == rhs.base }
  public func hash(into hasher: inout Hasher) { hasher.combine(base) }
  public var description: String { "HTTPServerError: \(message)" }

  /// The address is already in use by another socket (EADDRINUSE).
  public static let addressInUse = HTTPServerError(.addressInUse, "address already in use")
  /// The host cannot be resolved or is not a local address, or the port is out of range.
  public static let invalidAddress = HTTPServerError(.invalidAddress, "invalid listening address")
  /// ``HTTPServer/start()`` was called more than once.
  public static let alreadyStarted = HTTPServerError(.alreadyStarted, "the server was already started")
  /// A system call failed; ``errorNumber`` says why.
  public static let systemCallFailed = HTTPServerError(.systemCallFailed, "a system call failed")

  /// The certificate or key could not be loaded; ``message`` says why.
  public static let tlsSetupFailed = HTTPServerError(.tlsSetupFailed, "the TLS certificate or key cannot be used")

  static func tlsSetupFailed(_ message: String) -> HTTPServerError {
    HTTPServerError(.tlsSetupFailed, message)
  }

  static func addressInUse(_ address: String) -> HTTPServerError {
    HTTPServerError(.addressInUse, "address already in use: \(address)", Errno.addressInUse.rawValue)
  }

  static func invalidAddress(_ address: String) -> HTTPServerError {
    HTTPServerError(.invalidAddress, "cannot listen on \(address)")
  }

  static func systemCallFailed(_ function: String, _ errno: Errno) -> HTTPServerError {
    HTTPServerError(.systemCallFailed, "\(function) failed: \(errno)", errno.rawValue)
  }
}
