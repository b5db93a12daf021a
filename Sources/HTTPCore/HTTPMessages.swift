// Requests and responses as plain values.

/// A complete HTTP request, as produced by ``HTTPRequestParser``.
public struct HTTPRequest: Sendable, Hashable {
  /// The request method.
  public var method: HTTPMethod
  /// The request target exactly as sent, e.g. `"/graphs/abc?x=1"`.
  public var target: String
  /// The protocol version of the request line.
  public var version: HTTPVersion
  /// The header fields in order (framing fields such as `Content-Length` included).
  public var headers: HTTPHeaders
  /// The body, already de-chunked; empty when there is none.
  public var body: [UInt8]

  /// Creates a request.
  public init(
    method: HTTPMethod, target: String, version: HTTPVersion = .http1_1, headers: HTTPHeaders = HTTPHeaders(),
    body: [UInt8] = []
  ) {
    self.method = method
    self.target = target
    self.version = version
    self.headers = headers
    self.body = body
  }

  /// Creates a request from its head and body.
  public init(head: HTTPRequestHead, body: [UInt8] = []) {
    self.init(method: head.method, target: head.target, version: head.version, headers: head.headers, body: body)
  }

  /// The request line and header fields.
  public var head: HTTPRequestHead {
    HTTPRequestHead(method: method, target: target, version: version, headers: headers)
  }

  /// The target up to (not including) the first `?`, e.g. `"/graphs/abc"`. Not percent-decoded.
  public var path: Substring { HTTPRequest.path(of: target) }

  /// The part of the target after the first `?`, or `nil` when there is no `?`. Not percent-decoded.
  public var query: Substring? { HTTPRequest.query(of: target) }

  /// Whether the client asked to keep the connection open after this request (RFC 9112 §9.3):
  /// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
  public var keepAlive: Bool { HTTPRequest.keepAlive(version: version, headers: headers) }

  fileprivate static func path(of target: String) -> Substring {
    if let question = target.utf8.firstIndex(of: UInt8(ascii: "?")) { return target[..<question] }
    return target[...]
  }

  fileprivate static func query(of target: String) -> Substring? {
    guard let question = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return nil }
    return target[target.utf8.index(after: question)...]
  }

  fileprivate static func keepAlive(version: HTTPVersion, headers: HTTPHeaders) -> Bool {
    if version.major == 1 && version.minor >= 1 {
      return !headers.containsToken("close", inField: "connection")
    }
    return headers.containsToken("keep-alive", inField: "connection")
      && !headers.containsToken("close", inField: "connection")
  }
}

/// The request line and header fields of a request, known before any byte of its body is read.
///
/// An ``HTTPConnectionStateMachine`` hands it to its screen (see ``HTTPConnectionStateMachine/init(limits:screen:)``)
/// as soon as the header section has been parsed, so a request can be refused (401, 403, ...) without reading or
/// buffering its body.
public struct HTTPRequestHead: Sendable, Hashable {
  /// The request method.
  public var method: HTTPMethod
  /// The request target exactly as sent, e.g. `"/graphs/abc?x=1"`.
  public var target: String
  /// The protocol version of the request line.
  public var version: HTTPVersion
  /// The header fields in order (framing fields such as `Content-Length` included).
  public var headers: HTTPHeaders

  /// Creates a request head.
  public init(method: HTTPMethod, target: String, version: HTTPVersion = .http1_1, headers: HTTPHeaders = HTTPHeaders())
  {
    self.method = method
    self.target = target
    self.version = version
    self.headers = headers
  }

  /// The target up to (not including) the first `?`, e.g. `"/graphs/abc"`. Not percent-decoded.
  public var path: Substring { HTTPRequest.path(of: target) }

  /// The part of the target after the first `?`, or `nil` when there is no `?`. Not percent-decoded.
  public var query: Substring? { HTTPRequest.query(of: target) }

  /// Whether the client asked to keep the connection open after this request (see ``HTTPRequest/keepAlive``).
  public var keepAlive: Bool { HTTPRequest.keepAlive(version: version, headers: headers) }
}

/// A response to send: a status, header fields and a body.
///
/// The serializer adds `Content-Length`, `Date` and, when the connection is closing, `Connection: close`; fields of
/// those names set here are replaced (`Date` is kept if present).
public struct HTTPResponse: Sendable, Hashable {
  /// The status.
  public var status: HTTPStatus
  /// The header fields in order.
  public var headers: HTTPHeaders
  /// The body bytes (not written for `HEAD` requests or bodiless statuses, but still counted in `Content-Length`
  /// for `HEAD`).
  public var body: [UInt8]

  /// Creates a response.
  public init(status: HTTPStatus = .ok, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
    self.status = status
    self.headers = headers
    self.body = body
  }

  /// Whether the response itself asks to close the connection (`Connection: close`).
  public var closesConnection: Bool { headers.containsToken("close", inField: "connection") }

  /// An `application/problem+json` response (RFC 9457):
  /// `{"type":"about:blank","title":"Bad Request","status":400,"detail":"...","errors":[]}`.
  /// - Parameters:
  ///   - status: The status; its reason phrase becomes the `title`.
  ///   - detail: A human-readable explanation, escaped as a JSON string.
  ///   - type: The problem type URI.
  public static func problem(status: HTTPStatus, detail: String, type: String = "about:blank") -> HTTPResponse {
    var body: [UInt8] = []
    body.reserveCapacity(64 + detail.utf8.count)
    body.append(contentsOf: #"{"type":"#.utf8)
    JSONString.append(type, to: &body)
    body.append(contentsOf: #","title":"#.utf8)
    JSONString.append(status.reasonPhrase, to: &body)
    body.append(contentsOf: #","status":"#.utf8)
    body.append(contentsOf: String(status.code).utf8)
    body.append(contentsOf: #","detail":"#.utf8)
    JSONString.append(detail, to: &body)
    body.append(contentsOf: #","errors":[]}"#.utf8)
    return HTTPResponse(status: status, headers: ["Content-Type": "application/problem+json"], body: body)
  }
}

/// Writes JSON string literals without Foundation.
enum JSONString {
  static func append(_ string: String, to out: inout [UInt8]) {
    let hex: [UInt8] = Array("0123456789abcdef".utf8)
    out.append(UInt8(ascii: "\""))
    for byte in string.utf8 {
      switch byte {
      case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
      case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
      case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
      case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
      case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
      case 0..<0x20:
        out.append(contentsOf: Array(#"\u00"#.utf8))
        out.append(hex[Int(byte >> 4)])
        out.append(hex[Int(byte & 0xF)])
      default: out.append(byte)
      }
    }
    out.append(UInt8(ascii: "\""))
  }
}
