import AdjointClient
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
    var task: URLSessionDataTask?
    // URLSession enforces the timeout itself; the extra second only guards against a completion that never comes.
    let result = awaitAnswer(within: timeout + 1) { deliver in
      let started = session.dataTask(with: request) { _, response, error in
        if let response = response as? HTTPURLResponse {
          deliver(.success(response.statusCode))
        } else {
          deliver(.failure(NoAnswer(text: error?.localizedDescription ?? "no HTTP answer")))
        }
      }
      task = started
      started.resume()
    }
    guard let result else {
      task?.cancel()
      return .failure(NoAnswer(text: "no answer within \(timeout) s"))
    }
    return result
  }

  /// `status(of:timeout:)` over https, through the SDK's HTTP/1.1 client over OpenSSL with a context that checks no
  /// certificate (URLSession on Linux cannot be told to accept a certificate it does not trust, such as a self-signed
  /// one or one that does not name 127.0.0.1). Past `timeout` the exchange is abandoned (the command exits right
  /// after).
  static func secureStatus(of url: URL, timeout: Double) -> Result<Int, NoAnswer> {
    guard let host = url.host, !host.isEmpty else { return .failure(NoAnswer(text: "no host in the URL")) }
    let context: TLSClientContext
    do {
      context = try .unverified()
    } catch {
      return .failure(NoAnswer(text: error.description))
    }
    let transport = TLSTransport(
      host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host, port: url.port ?? 443, context: context)
    let request = BackendRequest(method: "GET", path: url.path.isEmpty ? "/" : url.path)
    let result = awaitAnswer(within: timeout) { deliver in
      Task {
        do throws(AdjointError) {
          deliver(.success(try await transport.send(request, headers: []).status))
        } catch {
          deliver(.failure(NoAnswer(text: error.description)))
        }
      }
    }
    return result ?? .failure(NoAnswer(text: "no answer within \(timeout) s"))
  }

  /// Starts an exchange with `start`, which calls its argument once with the outcome (from any thread), and waits
  /// for that outcome at most `seconds`; `nil` when it did not come in time.
  private static func awaitAnswer(
    within seconds: Double, _ start: (@escaping @Sendable (Result<Int, NoAnswer>) -> Void) -> Void
  ) -> Result<Int, NoAnswer>? {
    let answer = Answer()
    let done = DispatchSemaphore(value: 0)
    start { result in
      answer.result.withLock { $0 = result }
      done.signal()
    }
    guard done.wait(timeout: .now() + seconds) == .success else { return nil }
    return answer.result.withLock { $0 }
  }
}

/// What a completion handler saw, handed to the waiting thread.
private final class Answer: Sendable {
  let result = Mutex<Result<Int, Health.NoAnswer>?>(nil)
}
