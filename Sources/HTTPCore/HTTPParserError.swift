// Why a request could not be parsed, and the status that answers it.

/// A request the parser rejects, with the status the server answers it with.
///
/// Compare against the static values (`error == .obsoleteLineFolding`); new reasons may be added later without
/// breaking callers. After any of these errors the connection must be closed.
public struct HTTPParserError: Error, Hashable, Sendable, CustomStringConvertible {
  private enum Base: Hashable, Sendable {
    case invalidRequestLine
    case unsupportedVersion
    case invalidHeaderField
    case obsoleteLineFolding
    case bareCarriageReturn
    case bareLineFeed
    case invalidHost
    case invalidContentLength
    case conflictingContentLength
    case contentLengthWithTransferEncoding
    case invalidTransferEncoding
    case unsupportedTransferEncoding
    case invalidChunk
    case unsupportedExpectation
    case headerSectionTooLarge
    case tooManyHeaderFields
    case bodyTooLarge
  }

  private let base: Base
  /// The status the server replies with (400, 413, 417, 431, 501 or 505).
  public let status: HTTPStatus
  /// A short human-readable explanation, suitable for the `detail` of a problem response.
  public let detail: String

  private init(_ base: Base, _ status: HTTPStatus, _ detail: String) {
    self.base = base
    self.status = status
    self.detail = detail
  }

  public static func == (lhs: HTTPParserError, rhs: HTTPParserError) -> Bool { lhs.base == rhs.base }
  public func hash(into hasher: inout Hasher) { hasher.combine(base) }
  public var description: String { "HTTPParserError(\(status.code): \(detail))" }

  /// The request line is not `method SP target SP HTTP/x.y`. (400)
  public static let invalidRequestLine = HTTPParserError(.invalidRequestLine, .badRequest, "malformed request line")
  /// A well-formed version other than HTTP/1.x. (505)
  public static let unsupportedVersion = HTTPParserError(
    .unsupportedVersion, .httpVersionNotSupported, "only HTTP/1.0 and HTTP/1.1 are supported")
  /// A header line that is not `token ":" OWS value OWS`, or a value with control characters. (400)
  public static let invalidHeaderField = HTTPParserError(.invalidHeaderField, .badRequest, "malformed header field")
  /// A header line starting with whitespace (obs-fold, RFC 9112 §5.2). (400)
  public static let obsoleteLineFolding = HTTPParserError(
    .obsoleteLineFolding, .badRequest, "obsolete line folding is not allowed")
  /// A CR not followed by LF. (400)
  public static let bareCarriageReturn = HTTPParserError(
    .bareCarriageReturn, .badRequest, "bare CR in the header section")
  /// An LF not preceded by CR. (400)
  public static let bareLineFeed = HTTPParserError(.bareLineFeed, .badRequest, "bare LF in the header section")
  /// HTTP/1.1 without exactly one `Host` field, or HTTP/1.0 with several. (400)
  public static let invalidHost = HTTPParserError(.invalidHost, .badRequest, "exactly one Host header is required")
  /// A `Content-Length` that is not a decimal number. (400)
  public static let invalidContentLength = HTTPParserError(
    .invalidContentLength, .badRequest, "invalid Content-Length")
  /// Several `Content-Length` values that differ. (400)
  public static let conflictingContentLength = HTTPParserError(
    .conflictingContentLength, .badRequest, "conflicting Content-Length values")
  /// Both `Content-Length` and `Transfer-Encoding` (a request-smuggling vector). (400)
  public static let contentLengthWithTransferEncoding = HTTPParserError(
    .contentLengthWithTransferEncoding, .badRequest, "Content-Length together with Transfer-Encoding")
  /// A `Transfer-Encoding` whose final coding is not `chunked`, or in an HTTP/1.0 request. (400)
  public static let invalidTransferEncoding = HTTPParserError(
    .invalidTransferEncoding, .badRequest, "invalid Transfer-Encoding")
  /// A transfer coding other than `chunked`. (501)
  public static let unsupportedTransferEncoding = HTTPParserError(
    .unsupportedTransferEncoding, .notImplemented, "only the chunked transfer coding is supported")
  /// A malformed chunk size line or a chunk not followed by CRLF. (400)
  public static let invalidChunk = HTTPParserError(.invalidChunk, .badRequest, "malformed chunked body")
  /// An `Expect` other than `100-continue`. (417)
  public static let unsupportedExpectation = HTTPParserError(
    .unsupportedExpectation, .expectationFailed, "only Expect: 100-continue is supported")
  /// The header section (or chunked trailer section) exceeds ``HTTPParserLimits/maxHeaderSectionBytes``. (431)
  public static let headerSectionTooLarge = HTTPParserError(
    .headerSectionTooLarge, .requestHeaderFieldsTooLarge, "header section too large")
  /// More header fields than ``HTTPParserLimits/maxHeaderFields``. (431)
  public static let tooManyHeaderFields = HTTPParserError(
    .tooManyHeaderFields, .requestHeaderFieldsTooLarge, "too many header fields")
  /// A body longer than ``HTTPParserLimits/maxBodyBytes``. (413)
  public static let bodyTooLarge = HTTPParserError(.bodyTooLarge, .contentTooLarge, "request body too large")

  /// The problem+json response that answers this error (sent with `Connection: close`).
  public var response: HTTPResponse {
    var response = HTTPResponse.problem(status: status, detail: detail)
    response.headers.add(name: "Connection", value: "close")
    return response
  }
}
