// TLS client connections over OpenSSL, for a client that must trust a certificate authority of its own (the SDK's
// `caCertificatePath` on Linux, where URLSession cannot), or check no certificate at all (`adjoint health` asking
// the server beside it). OpenSSL makes the TCP connection itself (a connect BIO), so no socket call is needed
// outside this target.

import COpenSSL

/// A client-side TLS configuration that trusts only the certificates of one PEM file (TLS 1.2 and 1.3 only), or
/// (``unverified()``) none at all.
///
/// Owns one `SSL_CTX`; after initialization it is only read, which OpenSSL allows from any thread.
public final class TLSClientContext: @unchecked Sendable {
  private let context: OpaquePointer
  /// Whether connections check the server's certificate chain and name.
  let verifies: Bool

  /// Loads the certificate authorities (or self-signed certificates) to trust from a PEM file.
  ///
  /// - Throws: ``TLSError`` when the file is missing or holds no certificate.
  public convenience init(trustingCertificatesAt caCertificatePath: String) throws(TLSError) {
    try self.init(caCertificatePath: caCertificatePath)
  }

  /// A context whose connections check no certificate: for a probe that only asks whether a server answers, sends
  /// no secret and trusts nothing it reads (`adjoint health` asking the server beside it, as a container's
  /// health check does, whatever names the server's certificate carries). Never for anything else.
  public static func unverified() throws(TLSError) -> TLSClientContext {
    try TLSClientContext(caCertificatePath: nil)
  }

  private init(caCertificatePath: String?) throws(TLSError) {
    ERR_clear_error()
    guard let context = SSL_CTX_new(TLS_client_method()) else { throw .drain("creating an SSL_CTX") }
    self.context = context
    verifies = caCertificatePath != nil
    guard SSL_CTX_ctrl(context, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_2_VERSION), nil) == 1 else {
      throw .drain("restricting the protocol to TLS 1.2-1.3")
    }
    guard let caCertificatePath else {
      SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
      return
    }
    guard SSL_CTX_load_verify_locations(context, caCertificatePath, nil) == 1 else {
      throw .drain("loading the certificate authorities from \(caCertificatePath)")
    }
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
  }

  deinit { SSL_CTX_free(context) }

  fileprivate var pointer: OpaquePointer { context }
}

/// One blocking TLS client connection: connects, verifies the server's certificate chain and name, then reads and
/// writes bytes. Not thread-safe: use it from one thread at a time.
///
/// ```swift
/// let connection = try TLSClientConnection(host: "localhost", port: 8443, context: context)
/// try connection.write(Array("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8))
/// let answer = try connection.readToEnd(limit: 1 << 20)
/// ```
public final class TLSClientConnection {
  private let bio: OpaquePointer

  /// Connects to `host:port` and completes the handshake.
  ///
  /// - Throws: ``TLSError`` when the connection fails, or (unless the context is ``TLSClientContext/unverified()``)
  ///   when the certificate chain does not lead to one of the context's authorities or does not name `host` (a DNS
  ///   name or an IP address).
  public init(host: String, port: Int, context: TLSClientContext) throws(TLSError) {
    ERR_clear_error()
    guard let bio = BIO_new_ssl_connect(context.pointer) else { throw .drain("creating a connection") }
    self.bio = bio
    var ssl: OpaquePointer?
    // BIO_get_ssl is a macro over BIO_ctrl.
    _ = withUnsafeMutablePointer(to: &ssl) { BIO_ctrl(bio, BIO_C_GET_SSL, 0, UnsafeMutableRawPointer($0)) }
    guard let ssl else { throw .drain("reaching the connection's SSL object") }
    // SSL_set_mode is a macro over SSL_ctrl: let reads retry across handshake messages.
    _ = SSL_ctrl(ssl, SSL_CTRL_MODE, Int(SSL_MODE_AUTO_RETRY), nil)
    let isAddress = host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." }
    if isAddress {
      if context.verifies {
        guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 else {
          throw .drain("setting the address to verify to \(host)")
        }
      }
    } else {
      if context.verifies {
        guard SSL_set1_host(ssl, host) == 1 else { throw .drain("setting the name to verify to \(host)") }
      }
      // SSL_set_tlsext_host_name (SNI) is a macro over SSL_ctrl.
      _ = host.withCString {
        SSL_ctrl(
          ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: $0))
      }
    }
    let target = isAddress && host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    // BIO_set_conn_hostname and BIO_do_connect/BIO_do_handshake are macros over BIO_ctrl.
    _ = target.withCString { BIO_ctrl(bio, BIO_C_SET_CONNECT, 0, UnsafeMutableRawPointer(mutating: $0)) }
    guard BIO_ctrl(bio, BIO_C_DO_STATE_MACHINE, 0, nil) > 0 else {
      throw .drain("connecting to \(target) and verifying its certificate")
    }
    guard !context.verifies || SSL_get_verify_result(ssl) == Int(X509_V_OK) else {
      throw .drain("verifying the certificate of \(target)")
    }
  }

  deinit { BIO_free_all(bio) }

  /// Writes all of `bytes`.
  public func write(_ bytes: [UInt8]) throws(TLSError) {
    var sent = 0
    while sent < bytes.count {
      let count = bytes[sent...].withUnsafeBytes { BIO_write(bio, $0.baseAddress, Int32(min($0.count, 1 << 30))) }
      guard count > 0 else { throw .drain("writing to the connection") }
      sent += Int(count)
    }
  }

  /// Reads until the server closes the connection, or `limit` bytes have arrived.
  public func readToEnd(limit: Int) throws(TLSError) -> [UInt8] {
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while received.count < limit {
      let count = buffer.withUnsafeMutableBytes { BIO_read(bio, $0.baseAddress, Int32($0.count)) }
      if count <= 0 { break }
      received.append(contentsOf: buffer[..<Int(count)])
    }
    return received
  }
}
