// Bearer tokens: loading them from a file and checking an `Authorization` field in constant time.

import AdjointCompute
import AdjointExpressions
import Foundation
import HTTPCore
import Locking

/// The bearer tokens that may call the service.
///
/// Tokens are kept only as SHA-256 digests, and a presented token is checked against every one of them, so the time
/// taken depends neither on where a wrong token first differs from a right one nor on which token matches.
///
/// ```swift
/// let keys = try APIKeys.load(contentsOfFile: "/etc/adjoint/tokens")
/// if !keys.isEmpty && !keys.authorizes(request.headers["authorization"]) {
///   return APIKeys.unauthorized(detail: "a valid bearer token is required")
/// }
/// ```
public struct APIKeys: Sendable {
  /// Why a tokens file cannot be used.
  public struct LoadError: Error, Sendable, CustomStringConvertible {
    /// A human-readable explanation naming the file (and the line, for a bad token).
    public let description: String
  }

  /// The digests of the tokens, one after another.
  private let digests: [UInt8]
  /// The number of distinct tokens.
  public let count: Int

  private static let digestSize = 32

  /// Creates the set of tokens. Empty strings are ignored (an empty token could never be presented).
  public init(tokens: [String]) {
    var seen = Set<String>()
    var digests: [UInt8] = []
    for token in tokens where !token.isEmpty && seen.insert(token).inserted {
      digests.append(contentsOf: SHA256.hash(token.utf8).bytes)
    }
    self.digests = digests
    count = seen.count
  }

  /// Whether no token is configured (the service then needs none).
  public var isEmpty: Bool { count == 0 }

  /// Reads a tokens file (see ``tokens(contentsOfFile:)``).
  /// - Throws: ``LoadError`` when the file cannot be read, holds a line that is not a valid token, or holds no token
  ///   at all (an empty file would silently open the server).
  public static func load(contentsOfFile path: String) throws(LoadError) -> APIKeys {
    APIKeys(tokens: try tokens(contentsOfFile: path))
  }

  /// The tokens of a tokens file: one token per line; blank lines, surrounding whitespace and lines starting with
  /// `#` are ignored. A token is 1 or more visible ASCII characters (`!` to `~`).
  /// - Throws: ``LoadError`` when the file cannot be read, holds a line that is not a valid token, or holds no token
  ///   at all (an empty file would silently open the server).
  public static func tokens(contentsOfFile path: String) throws(LoadError) -> [String] {
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
      throw LoadError(description: "cannot read the API keys file \(path): \(error.localizedDescription)")
    }
    return try tokens(parsing: String(decoding: data, as: UTF8.self), path: path)
  }

  /// The tokens of the text of a tokens file (see ``tokens(contentsOfFile:)``); `path` names the file in errors.
  /// - Throws: ``LoadError`` for a line that is not a valid token, or when there is no token.
  public static func tokens(parsing text: String, path: String = "-") throws(LoadError) -> [String] {
    var tokens: [String] = []
    for (index, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
      let line = rawLine.trimmingWhitespace
      if line.isEmpty || line.hasPrefix("#") { continue }
      guard line.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
        throw LoadError(
          description: "\(path), line \(index + 1): a token must be visible ASCII characters without spaces")
      }
      tokens.append(String(line))
    }
    guard !tokens.isEmpty else {
      throw LoadError(description: "the API keys file \(path) holds no token; it would leave the server open")
    }
    return tokens
  }

  /// Whether an `Authorization` field value grants access: exactly `Bearer <token>` with a configured token. The
  /// scheme is case-insensitive (RFC 9110 §11.1) and followed by one or more spaces; `nil`, other schemes and
  /// malformed values are refused. Always `false` when no token is configured.
  public func authorizes(_ authorization: String?) -> Bool {
    guard let authorization, let token = APIKeys.bearerToken(authorization) else { return false }
    let presented = SHA256.hash(token).bytes
    // Every byte of every digest is looked at, whatever matches.
    var matched: UInt8 = 0
    digests.withUnsafeBufferPointer { digests in
      presented.withUnsafeBufferPointer { presented in
        for start in stride(from: 0, to: digests.count, by: APIKeys.digestSize) {
          var difference: UInt8 = 0
          for offset in 0..<APIKeys.digestSize { difference |= digests[start + offset] ^ presented[offset] }
          // 1 when `difference` is 0, else 0, without a branch on the data.
          matched |= UInt8(truncatingIfNeeded: (UInt16(difference) &- 1) >> 8) & 1
        }
      }
    }
    return matched == 1
  }

  /// The token of `Bearer <token>`, or `nil` when the value is not of that form.
  private static func bearerToken(_ value: String) -> Substring.UTF8View? {
    let utf8 = value.utf8
    let scheme = "bearer".utf8
    guard utf8.count > scheme.count + 1 else { return nil }
    var index = utf8.startIndex
    for expected in scheme {
      let byte = utf8[index]
      guard byte | 0x20 == expected else { return nil }
      index = utf8.index(after: index)
    }
    guard utf8[index] == UInt8(ascii: " ") else { return nil }
    while index < utf8.endIndex && utf8[index] == UInt8(ascii: " ") { index = utf8.index(after: index) }
    let token = value[index...].utf8
    guard !token.isEmpty, token.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else { return nil }
    return token
  }

  /// The response to a request without a valid token: 401 with `WWW-Authenticate: Bearer` and an
  /// `application/problem+json` body.
  /// - Parameter detail: The explanation in the body, e.g. `"a valid bearer token is required"`.
  public static func unauthorized(detail: String) -> HTTPResponse {
    let problem = Problem(
      status: 401, type: "https://adjoint.dev/problems/unauthorized", title: "Unauthorized", detail: detail,
      errors: [], headers: [("WWW-Authenticate", "Bearer")])
    var headers: HTTPHeaders = ["Content-Type": "application/problem+json"]
    for (name, value) in problem.headers { headers.add(name: name, value: value) }
    return HTTPResponse(status: .unauthorized, headers: headers, body: problem.body)
  }
}

extension Substring {
  fileprivate var trimmingWhitespace: Substring {
    var result = self
    while let first = result.first, first.isWhitespace { result.removeFirst() }
    while let last = result.last, last.isWhitespace { result.removeLast() }
    return result
  }
}
