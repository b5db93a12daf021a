import Foundation

#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif

/// An Adjoint server over HTTP or HTTPS, through Foundation's `URLSession`.
///
/// ```swift
/// let backend = try RemoteBackend(url: URL(string: "https://adjoint.internal:8443")!, token: "s3cret")
/// ```
public final class RemoteBackend: Backend {
  /// The server's base URL (`http://127.0.0.1:8080`).
  public let url: URL
  private let token: String?
  private let session: URLSession
  private let timeout: Double
  /// HTTPS with a custom certificate authority where URLSession cannot trust one (Linux).
  private let tls: TLSTransport?

  /// Creates a backend for the server at `url`.
  ///
  /// - Parameters:
  ///   - url: the server's base URL; `https` for TLS.
  ///   - token: a bearer token, sent as `Authorization: Bearer TOKEN` (for a server with `--api-keys-file`).
  ///   - caCertificatePath: a PEM file of the certificate authority (or the self-signed certificate) to trust for
  ///     this `https` server, in place of the system's roots. On Apple platforms `URLSession` checks the chain
  ///     against it; on Linux, whose `URLSession` (libcurl) cannot trust a custom authority, requests to this
  ///     server go over the SDK's own HTTP/1.1 client on OpenSSL, which verifies the chain and the host name.
  ///   - timeout: seconds a request may take before it fails (and is retried).
  public init(url: URL, token: String? = nil, caCertificatePath: String? = nil, timeout: Double = 60)
    throws(AdjointError)
  {
    guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
      throw .invalidRequest("the server URL must start with http:// or https://, not '\(url.absoluteString)'")
    }
    self.url = url
    self.token = token
    self.timeout = timeout
    let configuration = URLSessionConfiguration.ephemeral
    configuration.timeoutIntervalForRequest = timeout
    configuration.httpAdditionalHeaders = ["Accept-Encoding": "gzip"]
    if let caCertificatePath {
      guard scheme == "https" else { throw .invalidRequest("a certificate authority needs an https:// URL") }
      #if canImport(Security)
        session = URLSession(
          configuration: configuration, delegate: try TrustDelegate(caCertificatePath: caCertificatePath),
          delegateQueue: nil)
        tls = nil
      #else
        guard let host = url.host else { throw .invalidRequest("no host in '\(url.absoluteString)'") }
        session = URLSession(configuration: configuration)
        tls = try TLSTransport(host: host, port: url.port ?? 443, caCertificatePath: caCertificatePath)
      #endif
    } else {
      session = URLSession(configuration: configuration)
      tls = nil
    }
  }

  deinit { session.finishTasksAndInvalidate() }

  /// Sends `request` to the server.
  public func send(_ request: BackendRequest) async throws(AdjointError) -> BackendResponse {
    if let tls {
      let path = url.path.trimmingSuffix("/") + request.path
      var headers: [(String, String)] = []
      if let token { headers.append(("Authorization", "Bearer \(token)")) }
      return try await tls.send(
        BackendRequest(method: request.method, path: path, body: request.body), headers: headers)
    }
    guard let target = URL(string: url.absoluteString.trimmingSuffix("/") + request.path) else {
      throw .invalidRequest("cannot make a URL of \(request.path)")
    }
    var urlRequest = URLRequest(url: target, timeoutInterval: timeout)
    urlRequest.httpMethod = request.method
    if request.method == "POST" {
      urlRequest.setValue("application/json", forHTTPHeaderField: "Content-Type")
      urlRequest.httpBody = Data(request.body)
    }
    if let token { urlRequest.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
    let data: Data
    let response: URLResponse
    do {
      (data, response) = try await session.data(for: urlRequest)
    } catch {
      throw .connection(Self.describe(error))
    }
    guard let http = response as? HTTPURLResponse else { throw .invalidResponse("not an HTTP response") }
    let retryAfter = (http.value(forHTTPHeaderField: "Retry-After")).flatMap { Double($0) }
    return BackendResponse(status: http.statusCode, retryAfter: retryAfter, body: [UInt8](data))
  }

  private static func describe(_ error: any Error) -> String {
    let nsError = error as NSError
    if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError,
      let message = underlying.userInfo[NSLocalizedDescriptionKey] as? String
    {
      return message
    }
    return (nsError.userInfo[NSLocalizedDescriptionKey] as? String) ?? "\(error)"
  }
}

extension String {
  fileprivate func trimmingSuffix(_ suffix: String) -> String {
    hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
  }
}

#if canImport(Security)
  import Security

  /// Trusts the certificates of one PEM file, and only them, for the server's certificate chain.
  private final class TrustDelegate: NSObject, URLSessionDelegate, Sendable {
    private let anchors: [SecCertificate]

    init(caCertificatePath: String) throws(AdjointError) {
      guard let text = try? String(contentsOfFile: caCertificatePath, encoding: .utf8) else {
        throw .invalidRequest("cannot read the certificate file '\(caCertificatePath)'")
      }
      var anchors: [SecCertificate] = []
      for block in text.components(separatedBy: "-----BEGIN CERTIFICATE-----").dropFirst() {
        let base64 = block.components(separatedBy: "-----END CERTIFICATE-----")[0]
          .components(separatedBy: .whitespacesAndNewlines).joined()
        if let der = Data(base64Encoded: base64), let certificate = SecCertificateCreateWithData(nil, der as CFData) {
          anchors.append(certificate)
        }
      }
      guard !anchors.isEmpty else { throw .invalidRequest("no PEM certificate in '\(caCertificatePath)'") }
      self.anchors = anchors
    }

    func urlSession(
      _ session: URLSession, didReceive challenge: URLAuthenticationChallenge,
      completionHandler: @escaping (URLSession.AuthChallengeDisposition, URLCredential?) -> Void
    ) {
      guard challenge.protectionSpace.authenticationMethod == NSURLAuthenticationMethodServerTrust,
        let trust = challenge.protectionSpace.serverTrust
      else { return completionHandler(.performDefaultHandling, nil) }
      SecTrustSetAnchorCertificates(trust, anchors as CFArray)
      SecTrustSetAnchorCertificatesOnly(trust, true)
      if SecTrustEvaluateWithError(trust, nil) {
        completionHandler(.useCredential, URLCredential(trust: trust))
      } else {
        completionHandler(.cancelAuthenticationChallenge, nil)
      }
    }
  }
#endif
