// Turns responses into bytes: status line, fields, framing, body.

/// Formats HTTP dates (RFC 9110 §5.6.7 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`) without Foundation.
public enum HTTPDate {
  /// The IMF-fixdate for a number of seconds since 1970-01-01T00:00:00Z.
  public static func imfFixdate(epochSeconds: Int) -> String {
    String(decoding: bytes(epochSeconds: epochSeconds), as: UTF8.self)
  }

  /// The proleptic Gregorian date of a day counted from 1970-01-01 (negative before it): Howard Hinnant's
  /// civil_from_days.
  public static func civilDate(daysSince1970 days: Int) -> (year: Int, month: Int, day: Int) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let shiftedMonth = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
    let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
    return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
  }

  /// The 29 bytes of the IMF-fixdate for a number of seconds since the Unix epoch.
  public static func bytes(epochSeconds: Int) -> [UInt8] {
    let days = epochSeconds >= 0 ? epochSeconds / 86_400 : (epochSeconds - 86_399) / 86_400
    let secondOfDay = epochSeconds - days * 86_400
    let (year, month, day) = civilDate(daysSince1970: days)
    let weekday = ((days % 7) + 11) % 7  // 1970-01-01 was a Thursday (index 4, Sunday = 0).

    let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    var out: [UInt8] = []
    out.reserveCapacity(29)
    out.append(contentsOf: weekdays[weekday].utf8)
    out.append(contentsOf: ", ".utf8)
    appendDigits(day, count: 2, to: &out)
    out.append(ASCII.space)
    out.append(contentsOf: months[month - 1].utf8)
    out.append(ASCII.space)
    appendDigits(year, count: 4, to: &out)
    out.append(ASCII.space)
    appendDigits(secondOfDay / 3600, count: 2, to: &out)
    out.append(ASCII.colon)
    appendDigits(secondOfDay / 60 % 60, count: 2, to: &out)
    out.append(ASCII.colon)
    appendDigits(secondOfDay % 60, count: 2, to: &out)
    out.append(contentsOf: " GMT".utf8)
    return out
  }

  private static func appendDigits(_ value: Int, count: Int, to out: inout [UInt8]) {
    var divisor = 1
    for _ in 1..<count { divisor *= 10 }
    var value = value
    while divisor > 0 {
      out.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
      value %= divisor
      divisor /= 10
    }
  }
}

/// Serializes responses, caching the `Date` value for the current second.
///
/// The serializer owns the framing: it writes `Content-Length` (except for 1xx, 204 and 304), `Date` (unless the
/// response sets one), `Connection: close` when the connection will close and `Connection: keep-alive` when an
/// HTTP/1.0 connection stays open. `Content-Length`, `Transfer-Encoding` and `Connection` fields of the response are
/// replaced. For `HEAD` requests the body is counted but not written. CR, LF and NUL in field names or values are
/// written as spaces, so a response cannot split itself.
///
/// ```swift
/// var serializer = HTTPResponseSerializer()
/// var bytes: [UInt8] = []
/// serializer.serialize(HTTPResponse(body: Array("hi".utf8)), requestMethod: .get, requestVersion: .http1_1,
///                      keepAlive: true, now: 784_111_777, into: &bytes)
/// ```
public struct HTTPResponseSerializer: Sendable {
  private var cachedSecond = Int.min
  private var cachedDate: [UInt8] = []

  /// The bytes of an interim `100 Continue` response.
  public static let continueResponse: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

  /// Creates a serializer.
  public init() {}

  /// The IMF-fixdate for `now`, recomputed only when the second changes.
  public mutating func date(now epochSeconds: Int) -> [UInt8] {
    if epochSeconds != cachedSecond {
      cachedSecond = epochSeconds
      cachedDate = HTTPDate.bytes(epochSeconds: epochSeconds)
    }
    return cachedDate
  }

  /// Whether the answer to a request with this method carries `response`'s body (not for `HEAD`, nor for a status
  /// that forbids one).
  static func writesBody(_ response: HTTPResponse, requestMethod: HTTPMethod) -> Bool {
    !response.status.forbidsBody && requestMethod != .head
  }

  /// Appends the bytes of `response` to `out`.
  /// - Parameters:
  ///   - response: The response.
  ///   - requestMethod: The method of the request answered (`HEAD` suppresses the body).
  ///   - requestVersion: The version of the request answered (HTTP/1.0 needs an explicit `keep-alive`).
  ///   - keepAlive: Whether the connection stays open after this response.
  ///   - now: The current time in seconds since the Unix epoch, for `Date`.
  ///   - requestID: When not `nil`, written as the only `X-Request-Id` field (the response's own are dropped). It
  ///     must be a valid id (``HTTPRequestID/isValid(_:)``): it is written as it is.
  ///   - appendingBody: Whether to append the body after the head (default); without it, only the head is appended
  ///     (with the body's `Content-Length`), and the caller writes the body itself.
  ///   - out: The buffer to append to.
  public mutating func serialize(
    _ response: HTTPResponse, requestMethod: HTTPMethod, requestVersion: HTTPVersion, keepAlive: Bool, now: Int,
    requestID: String? = nil, appendingBody: Bool = true, into out: inout [UInt8]
  ) {
    let status = response.status
    let writesBody = appendingBody && Self.writesBody(response, requestMethod: requestMethod)
    out.reserveCapacity(out.count + 128 + response.headers.count * 32 + (writesBody ? response.body.count : 0))

    out.append(contentsOf: "HTTP/1.1 ".utf8)
    out.append(UInt8(ascii: "0") + UInt8(status.code / 100))
    out.append(UInt8(ascii: "0") + UInt8(status.code / 10 % 10))
    out.append(UInt8(ascii: "0") + UInt8(status.code % 10))
    out.append(ASCII.space)
    Self.appendSanitized(status.reasonPhrase, to: &out)
    Self.appendLineEnd(to: &out)

    var hasDate = false
    for field in response.headers {
      // The length first: most names are none of these, and are told so without comparing a byte.
      switch field.name.utf8.count {
      case 14 where HTTPHeaders.namesEqual(field.name, "content-length"): continue
      case 10 where HTTPHeaders.namesEqual(field.name, "connection"): continue
      case 17 where HTTPHeaders.namesEqual(field.name, "transfer-encoding"): continue
      case 12 where requestID != nil && HTTPHeaders.namesEqual(field.name, HTTPRequestID.fieldName): continue
      case 4 where HTTPHeaders.namesEqual(field.name, "date"): hasDate = true
      default: break
      }
      Self.appendSanitized(field.name, to: &out)
      out.append(ASCII.colon)
      out.append(ASCII.space)
      Self.appendSanitized(field.value, to: &out)
      Self.appendLineEnd(to: &out)
    }
    if let requestID {
      out.append(contentsOf: "X-Request-Id: ".utf8)
      out.append(contentsOf: requestID.utf8)
      Self.appendLineEnd(to: &out)
    }
    if !status.forbidsBody {
      out.append(contentsOf: "Content-Length: ".utf8)
      out.append(contentsOf: String(response.body.count).utf8)
      Self.appendLineEnd(to: &out)
    }
    if !hasDate {
      out.append(contentsOf: "Date: ".utf8)
      out.append(contentsOf: date(now: now))
      Self.appendLineEnd(to: &out)
    }
    if !keepAlive {
      out.append(contentsOf: "Connection: close\r\n".utf8)
    } else if requestVersion.minor == 0 {
      out.append(contentsOf: "Connection: keep-alive\r\n".utf8)
    }
    Self.appendLineEnd(to: &out)
    if writesBody { out.append(contentsOf: response.body) }
  }

  /// The bytes of `response`; see ``serialize(_:requestMethod:requestVersion:keepAlive:now:requestID:into:)``.
  public mutating func serialize(
    _ response: HTTPResponse, requestMethod: HTTPMethod, requestVersion: HTTPVersion, keepAlive: Bool, now: Int,
    requestID: String? = nil
  ) -> [UInt8] {
    var out: [UInt8] = []
    serialize(
      response, requestMethod: requestMethod, requestVersion: requestVersion, keepAlive: keepAlive, now: now,
      requestID: requestID, into: &out)
    return out
  }

  @inline(__always)
  private static func appendLineEnd(to out: inout [UInt8]) {
    out.append(ASCII.cr)
    out.append(ASCII.lf)
  }

  /// Appends `string`'s bytes with CR, LF and NUL replaced by spaces (so no value can split the head). Copies them
  /// in one piece and fixes up afterwards, only when one of those bytes is there (they almost never are).
  private static func appendSanitized(_ string: String, to out: inout [UInt8]) {
    var string = string
    string.withUTF8 { bytes in
      let start = out.count
      out.append(contentsOf: bytes)
      guard bytes.contains(where: { $0 == ASCII.cr || $0 == ASCII.lf || $0 == 0 }) else { return }
      for index in start..<out.count where out[index] == ASCII.cr || out[index] == ASCII.lf || out[index] == 0 {
        out[index] = ASCII.space
      }
    }
  }
}
