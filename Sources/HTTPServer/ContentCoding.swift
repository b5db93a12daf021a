// Content codings (RFC 9110 §8.4): inflating gzip request bodies under the body limit, and gzipping responses the
// client accepts.

import Gzip
import HTTPCore

/// When the server gzips responses.
public struct HTTPCompression: Hashable, Sendable {
  /// Whether responses are gzipped at all when the client accepts gzip. Default `true`.
  public var enabled: Bool
  /// The smallest body worth compressing, in bytes. Default 1,024.
  public var minimumBodyBytes: Int
  /// The zlib level, 1 (fastest) to 9 (smallest). Default 6.
  public var level: Int

  /// Creates settings; every argument defaults to the documented default.
  public init(enabled: Bool = true, minimumBodyBytes: Int = 1024, level: Int = 6) {
    self.enabled = enabled
    self.minimumBodyBytes = minimumBodyBytes
    self.level = level
  }
}

/// The content-coding rules, as functions of requests and responses (no I/O).
enum ContentCoding {
  /// Undoes the request's `Content-Encoding` (`gzip`, `x-gzip`, `identity`, in any number of layers), never letting
  /// a layer grow past `limit` bytes.
  /// - Returns: `nil` when `request` is ready for the application (its body decoded and `Content-Encoding` removed),
  ///   else the problem response to send instead: 415 for a coding the server does not speak, 413 for a body over
  ///   the limit once inflated, 400 for corrupt gzip data.
  static func decode(_ request: inout HTTPRequest, limit: Int) -> HTTPResponse? {
    let codings = request.headers.values(for: "content-encoding")
      .flatMap { $0.split(separator: ",") }
      .map { $0.trimmingCharacters(" \t").lowercased() }
      .filter { !$0.isEmpty && $0 != "identity" }
    guard !codings.isEmpty else {
      // Checked first: removing copies the fields when the request shares them, even if none goes.
      if request.headers.contains(name: "content-encoding") { request.headers.remove(name: "content-encoding") }
      return nil
    }
    if let unknown = codings.first(where: { $0 != "gzip" && $0 != "x-gzip" }) {
      return problem(.unsupportedMediaType, "the content coding '\(unknown)' is not supported; use gzip or identity")
    }
    var body = request.body
    // Codings are listed in the order they were applied, so they are undone from the last.
    for _ in codings where !body.isEmpty {
      do {
        body = try Gzip.decompress(body, limit: limit)
      } catch {
        if error == .outputLimitExceeded {
          return problem(.contentTooLarge, "the request body is over the limit of \(limit) bytes once inflated")
        }
        return problem(.badRequest, "the gzip request body cannot be inflated: \(error.message)")
      }
    }
    request.body = body
    request.headers.remove(name: "content-encoding")
    return nil
  }

  /// Whether the request's `Accept-Encoding` allows gzip (RFC 9110 §12.5.3): `gzip` or `x-gzip` with a non-zero
  /// weight, or else `*` with a non-zero weight.
  static func acceptsGzip(_ request: HTTPRequest) -> Bool {
    var gzipWeight: Double?
    var anyWeight: Double?
    for value in request.headers.values(for: "accept-encoding") {
      for element in value.split(separator: ",") {
        let parts = element.split(separator: ";")
        guard let first = parts.first else { continue }
        let name = first.trimmingCharacters(" \t").lowercased()
        var weight = 1.0
        for parameter in parts.dropFirst() {
          let text = parameter.trimmingCharacters(" \t").lowercased()
          if text.hasPrefix("q=") { weight = Double(text.dropFirst(2)) ?? 0 }
        }
        switch name {
        case "gzip", "x-gzip": gzipWeight = max(gzipWeight ?? 0, weight)
        case "*": anyWeight = weight
        default: break
        }
      }
    }
    if let gzipWeight { return gzipWeight > 0 }
    return (anyWeight ?? 0) > 0
  }

  /// Gzips the response body when it is worth it: compression enabled, a body of at least the minimum size, no
  /// `Content-Encoding` of its own, and a status that carries a body. Such a response gets `Vary: Accept-Encoding`
  /// whether or not this client accepts gzip; it is compressed only if `acceptsGzip` and the result is smaller.
  static func encode(_ response: inout HTTPResponse, acceptsGzip: Bool, settings: HTTPCompression) {
    guard settings.enabled, response.body.count >= settings.minimumBodyBytes, !response.status.forbidsBody,
      response.status.code >= 200, response.status.code != 206, !response.headers.contains(name: "content-encoding")
    else { return }
    if let vary = response.headers["vary"] {
      if !response.headers.containsToken("accept-encoding", inField: "vary") && vary.trimmingCharacters(" \t") != "*" {
        response.headers.replaceOrAdd(name: "Vary", value: vary + ", Accept-Encoding")
      }
    } else {
      response.headers.add(name: "Vary", value: "Accept-Encoding")
    }
    guard acceptsGzip, let packed = try? Gzip.compress(response.body, level: settings.level),
      packed.count < response.body.count
    else { return }
    response.body = packed
    response.headers.add(name: "Content-Encoding", value: "gzip")
  }

  /// The body was read whole, so the connection stays usable after these.
  private static func problem(_ status: HTTPStatus, _ detail: String) -> HTTPResponse {
    HTTPResponse.problem(status: status, detail: detail)
  }
}

extension StringProtocol {
  /// The text without the given characters at either end.
  fileprivate func trimmingCharacters(_ characters: String) -> String {
    var result = Substring(self)
    while let first = result.first, characters.contains(first) { result.removeFirst() }
    while let last = result.last, characters.contains(last) { result.removeLast() }
    return String(result)
  }
}
