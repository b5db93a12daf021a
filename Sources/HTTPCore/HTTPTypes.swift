// The small value types of HTTP/1.1: methods, versions, status codes.

/// An HTTP request method, such as `GET` or `POST`.
///
/// Methods are case-sensitive tokens (RFC 9110 §9.1); any token the parser accepts is representable.
public struct HTTPMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  /// The method token exactly as sent, e.g. `"GET"`.
  public var rawValue: String

  /// Creates a method from its token.
  public init(rawValue: String) { self.rawValue = rawValue }

  /// Creates a method from its token.
  public init(_ rawValue: String) { self.rawValue = rawValue }

  public var description: String { rawValue }

  /// `GET`.
  public static let get = HTTPMethod("GET")
  /// `HEAD`: like `GET`, but the response carries no body.
  public static let head = HTTPMethod("HEAD")
  /// `POST`.
  public static let post = HTTPMethod("POST")
  /// `PUT`.
  public static let put = HTTPMethod("PUT")
  /// `DELETE`.
  public static let delete = HTTPMethod("DELETE")
  /// `PATCH`.
  public static let patch = HTTPMethod("PATCH")
  /// `OPTIONS`.
  public static let options = HTTPMethod("OPTIONS")
  /// `TRACE`.
  public static let trace = HTTPMethod("TRACE")
  /// `CONNECT`.
  public static let connect = HTTPMethod("CONNECT")
}

/// An HTTP protocol version, such as 1.1.
public struct HTTPVersion: Hashable, Sendable, CustomStringConvertible {
  /// The major version (1 for every message this parser accepts).
  public var major: Int
  /// The minor version.
  public var minor: Int

  /// Creates a version from its two numbers.
  public init(major: Int, minor: Int) {
    self.major = major
    self.minor = minor
  }

  /// HTTP/1.0.
  // swift-format-ignore: AlwaysUseLowerCamelCase
  public static let http1_0 = HTTPVersion(major: 1, minor: 0)
  /// HTTP/1.1.
  // swift-format-ignore: AlwaysUseLowerCamelCase
  public static let http1_1 = HTTPVersion(major: 1, minor: 1)

  /// `"HTTP/1.1"` and so on.
  public var description: String { "HTTP/\(major).\(minor)" }
}

/// An HTTP status code with its reason phrase.
///
/// Two statuses are equal when their codes are equal; the reason phrase is informational.
public struct HTTPStatus: Hashable, Sendable, CustomStringConvertible {
  /// The three-digit status code, 100...999.
  public var code: Int
  /// The reason phrase written on the status line, e.g. `"Not Found"`.
  public var reasonPhrase: String

  /// Creates a status.
  /// - Parameters:
  ///   - code: The status code, 100...999.
  ///   - reasonPhrase: The phrase for the status line; `nil` picks the standard one (or `""` for unknown codes).
  public init(code: Int, reasonPhrase: String? = nil) {
    precondition((100...999).contains(code), "status code out of range: \(code)")
    self.code = code
    self.reasonPhrase = reasonPhrase ?? HTTPStatus.standardReasonPhrase(for: code)
  }

  public static func == (lhs: HTTPStatus, rhs: HTTPStatus) -> Bool { lhs.code == rhs.code }
  public func hash(into hasher: inout Hasher) { hasher.combine(code) }

  public var description: String { "\(code) \(reasonPhrase)" }

  /// Whether a response with this status never has a body (1xx, 204, 304).
  public var forbidsBody: Bool { code < 200 || code == 204 || code == 304 }

  /// 100 Continue.
  public static let `continue` = HTTPStatus(code: 100)
  /// 200 OK.
  public static let ok = HTTPStatus(code: 200)
  /// 201 Created.
  public static let created = HTTPStatus(code: 201)
  /// 204 No Content.
  public static let noContent = HTTPStatus(code: 204)
  /// 304 Not Modified.
  public static let notModified = HTTPStatus(code: 304)
  /// 400 Bad Request.
  public static let badRequest = HTTPStatus(code: 400)
  /// 401 Unauthorized.
  public static let unauthorized = HTTPStatus(code: 401)
  /// 404 Not Found.
  public static let notFound = HTTPStatus(code: 404)
  /// 405 Method Not Allowed.
  public static let methodNotAllowed = HTTPStatus(code: 405)
  /// 408 Request Timeout.
  public static let requestTimeout = HTTPStatus(code: 408)
  /// 413 Content Too Large.
  public static let contentTooLarge = HTTPStatus(code: 413)
  /// 415 Unsupported Media Type.
  public static let unsupportedMediaType = HTTPStatus(code: 415)
  /// 417 Expectation Failed.
  public static let expectationFailed = HTTPStatus(code: 417)
  /// 422 Unprocessable Content.
  public static let unprocessableContent = HTTPStatus(code: 422)
  /// 431 Request Header Fields Too Large.
  public static let requestHeaderFieldsTooLarge = HTTPStatus(code: 431)
  /// 500 Internal Server Error.
  public static let internalServerError = HTTPStatus(code: 500)
  /// 501 Not Implemented.
  public static let notImplemented = HTTPStatus(code: 501)
  /// 503 Service Unavailable.
  public static let serviceUnavailable = HTTPStatus(code: 503)
  /// 505 HTTP Version Not Supported.
  public static let httpVersionNotSupported = HTTPStatus(code: 505)

  /// The standard reason phrase of a code (RFC 9110 §15), or `""` if the code is not registered here.
  public static func standardReasonPhrase(for code: Int) -> String {
    switch code {
    case 100: "Continue"
    case 101: "Switching Protocols"
    case 200: "OK"
    case 201: "Created"
    case 202: "Accepted"
    case 204: "No Content"
    case 206: "Partial Content"
    case 301: "Moved Permanently"
    case 302: "Found"
    case 303: "See Other"
    case 304: "Not Modified"
    case 307: "Temporary Redirect"
    case 308: "Permanent Redirect"
    case 400: "Bad Request"
    case 401: "Unauthorized"
    case 403: "Forbidden"
    case 404: "Not Found"
    case 405: "Method Not Allowed"
    case 406: "Not Acceptable"
    case 408: "Request Timeout"
    case 409: "Conflict"
    case 410: "Gone"
    case 411: "Length Required"
    case 412: "Precondition Failed"
    case 413: "Content Too Large"
    case 414: "URI Too Long"
    case 415: "Unsupported Media Type"
    case 417: "Expectation Failed"
    case 422: "Unprocessable Content"
    case 426: "Upgrade Required"
    case 429: "Too Many Requests"
    case 431: "Request Header Fields Too Large"
    case 500: "Internal Server Error"
    case 501: "Not Implemented"
    case 502: "Bad Gateway"
    case 503: "Service Unavailable"
    case 504: "Gateway Timeout"
    case 505: "HTTP Version Not Supported"
    default: ""
    }
  }
}
