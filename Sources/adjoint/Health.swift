import ArgumentParser
import Dispatch
import Foundation
import Synchronization
import TLS

#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif

/// `adjoint health`: asks a running server's `GET /healthz` and exits 0 when it answers 200, 1 otherwise. It is the
/// container image's `HEALTHCHECK`, so it needs nothing but the binary itself.
struct Health: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Check that a running Adjoint server is healthy (GET /healthz answers 200).",
    discussion: """
      Without --url it asks the server that `adjoint serve` would start with the same environment: \
      ADJOINT_HOST (a wildcard address such as 0.0.0.0 is asked on loopback) and ADJOINT_PORT. Exits 0 when \
      /healthz answers 200, 1 otherwise (another status, no answer, or no answer within --timeout). Over https \
      (ADJOINT_TLS_CERT set, or an https --url) the server's certificate is not checked: the probe sends no \
      secret and only reads the status, and the server's certificate need not name the loopback address it is \
      asked on.
      """)

  @Option(help: "The server's base URL, e.g. http://127.0.0.1:8080; default from ADJOINT_HOST and ADJOINT_PORT.")
  var url: String?

  @Option(help: "Seconds to wait for the answer.")
  var timeout: Double = 2

  func validate() throws {
    guard timeout > 0 && timeout <= 300 else { throw ValidationError("--timeout must be between 0 and 300 seconds") }
    if let url {
      guard let parsed = URL(string: url), parsed.scheme == "http" || parsed.scheme == "https", parsed.host != nil
      else { throw ValidationError("--url must be an http:// or https:// URL with a host") }
    }
  }

  func run() throws {
    let base =
      url
      ?? Self.defaultBaseURL(
        host: environment("ADJOINT_HOST"), port: environment("ADJOINT_PORT"),
        tls: environment("ADJOINT_TLS_CERT") != nil)
    guard let target = URL(string: base.hasSuffix("/") ? base + "healthz" : base + "/healthz") else {
      FileHandle.standardError.write(Data("adjoint health: not a URL: \(base)\n".utf8))
      throw ExitCode.failure
    }
    switch Self.status(of: target, timeout: timeout) {
    case .success(200):
      return
    case .success(let status):
      FileHandle.standardError.write(Data("adjoint health: \(target.absoluteString) answered \(status)\n".utf8))
    case .failure(let reason):
      FileHandle.standardError.write(Data("adjoint health: \(target.absoluteString): \(reason.text)\n".utf8))
    }
    throw ExitCode.failure
  }

  /// The base URL of the server `adjoint serve` starts with this environment: a wildcard listening address is
  /// reached on loopback, an IPv6 literal is bracketed, and the port defaults to serve's 8080.
  static func defaultBaseURL(host: String?, port: String?, tls: Bool) -> String {
    var address = host ?? "127.0.0.1"
    switch address {
    case "0.0.0.0": address = "127.0.0.1"
    case "::", "[::]": address = "::1"
    default: break
    }
    if address.contains(":") && !address.hasPrefix("[") { address = "[\(address)]" }
    return "\(tls ? "https" : "http")://\(address):\(port ?? "8080")"
  }

  /// Why a health request got no status.
  struct NoAnswer: Error {
    var text: String
  }

  /// The status `GET url` answers with, or why there was none within `timeout` seconds.
  static func status(of url: URL, timeout: Double) -> Result<Int, NoAnswer> {
    if url.scheme == "https" { return secureStatus(of: url, timeout: timeout) }
    var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
    request.httpMethod = "GET"
    let configuration = URLSessionConfiguration.ephemeral
    configuration.timeoutIntervalForRequest = timeout
    configuration.timeoutIntervalForResource = timeout
    let session = URLSession(configuration: configuration)
    defer { session.invalidateAndCancel() }
    let answer = Answer()
    let done = DispatchSemaphore(value: 0)
    let task = session.dataTask(with: request) { _, response, error in
      let result: Result<Int, NoAnswer> =
        if let response = response as? HTTPURLResponse {
          .success(response.statusCode)
        } else {
          .failure(NoAnswer(text: error?.localizedDescription ?? "no HTTP answer"))
        }
      answer.result.withLock { $0 = result }
      done.signal()
    }
    task.resume()
    // URLSession enforces the timeout itself; the extra second only guards against a completion that never comes.
    guard done.wait(timeout: .now() + timeout + 1) == .success else {
      task.cancel()
      return .failure(NoAnswer(text: "no answer within \(timeout) s"))
    }
    return answer.result.withLock { $0 } ?? .failure(NoAnswer(text: "no answer"))
  }
}

extension Health {
  /// `status(of:timeout:)` over https, through the TLS target's OpenSSL client without checking the certificate
  /// (URLSession on Linux cannot be told to accept a certificate it does not trust, such as a self-signed one or one
  /// that does not name 127.0.0.1). The blocking exchange runs on another thread; past `timeout` it is abandoned
  /// (the command exits right after).
  static func secureStatus(of url: URL, timeout: Double) -> Result<Int, NoAnswer> {
    guard let host = url.host, !host.isEmpty else { return .failure(NoAnswer(text: "no host in the URL")) }
    let address = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
    let port = url.port ?? 443
    let path = url.path.isEmpty ? "/" : url.path
    let hostField = address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
    let answer = Answer()
    let done = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
      let result: Result<Int, NoAnswer>
      do throws(TLSError) {
        let connection = try TLSClientConnection(host: address, port: port, context: try .unverified())
        try connection.write(Array("GET \(path) HTTP/1.1\r\nHost: \(hostField)\r\nConnection: close\r\n\r\n".utf8))
        let bytes = try connection.readToEnd(limit: 1 << 16)
        result = statusCode(of: bytes).map { .success($0) } ?? .failure(NoAnswer(text: "no HTTP answer"))
      } catch {
        result = .failure(NoAnswer(text: error.description))
      }
      answer.result.withLock { $0 = result }
      done.signal()
    }
    guard done.wait(timeout: .now() + timeout) == .success else {
      return .failure(NoAnswer(text: "no answer within \(timeout) s"))
    }
    return answer.result.withLock { $0 } ?? .failure(NoAnswer(text: "no answer"))
  }

  /// The status code of an HTTP/1.x answer's status line (`HTTP/1.1 200 OK`), or `nil`.
  static func statusCode(of answer: [UInt8]) -> Int? {
    let prefix = Array("HTTP/1.".utf8)
    guard answer.count >= 12, Array(answer[0..<7]) == prefix, answer[8] == UInt8(ascii: " ") else { return nil }
    let digits = answer[9..<12]
    guard digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
    guard answer.count == 12 || answer[12] == UInt8(ascii: " ") || answer[12] == UInt8(ascii: "\r") else {
      return nil
    }
    return digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
  }
}

/// What a completion handler saw, handed to the waiting thread.
private final class Answer: Sendable {
  let result = Mutex<Result<Int, Health.NoAnswer>?>(nil)
}
