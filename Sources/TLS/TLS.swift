// TLS server contexts over OpenSSL. The only Swift file that calls OpenSSL; the OpenSSL error queue is drained into
// TLSError here.

import COpenSSL

/// An OpenSSL failure, with the messages drained from OpenSSL's error queue.
public struct TLSError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What was being done, e.g. `"loading the certificate chain from cert.pem"`.
  public let operation: String
  /// OpenSSL's error strings, oldest first (may be empty).
  public let messages: [String]

  init(operation: String, messages: [String]) {
    self.operation = operation
    self.messages = messages
  }

  public var description: String {
    messages.isEmpty ? "TLS error: \(operation)" : "TLS error: \(operation): \(messages.joined(separator: "; "))"
  }

  /// Builds an error from the calling thread's OpenSSL error queue, emptying it.
  static func drain(_ operation: String) -> TLSError {
    var messages: [String] = []
    while true {
      let code = ERR_get_error()
      if code == 0 { break }
      var buffer = [CChar](repeating: 0, count: 256)
      ERR_error_string_n(code, &buffer, buffer.count)
      messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    return TLSError(operation: operation, messages: messages)
  }
}

/// Facts about the linked TLS library.
public enum TLS {
  /// The OpenSSL version linked at run time, e.g. `"OpenSSL 3.0.19 27 Jan 2026"`.
  public static var libraryVersion: String { String(cString: OpenSSL_version(Int32(OPENSSL_VERSION))) }
}

/// A server-side TLS configuration: certificate chain, private key and protocol versions (TLS 1.2 and 1.3 only).
///
/// Owns one `SSL_CTX`. After initialization it is only read, which OpenSSL allows from any thread.
///
/// ```swift
/// let context = try TLSContext(certificatePath: "cert.pem", keyPath: "key.pem")
/// ```
public final class TLSContext: @unchecked Sendable {
  private let context: OpaquePointer

  /// Loads a PEM certificate chain and its PEM private key into a new server context.
  /// - Parameters:
  ///   - certificatePath: A PEM file with the certificate, then any intermediates.
  ///   - keyPath: A PEM file with the matching private key (unencrypted).
  /// - Throws: ``TLSError`` if a file is missing or invalid, or the key does not match the certificate.
  public init(certificatePath: String, keyPath: String) throws(TLSError) {
    ERR_clear_error()
    guard let context = SSL_CTX_new(TLS_server_method()) else { throw .drain("creating an SSL_CTX") }
    self.context = context
    // SSL_CTX_set_min/max_proto_version are macros over SSL_CTX_ctrl.
    guard SSL_CTX_ctrl(context, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_2_VERSION), nil) == 1,
      SSL_CTX_ctrl(context, SSL_CTRL_SET_MAX_PROTO_VERSION, Int(TLS1_3_VERSION), nil) == 1
    else { throw .drain("restricting the protocol to TLS 1.2-1.3") }
    guard SSL_CTX_use_certificate_chain_file(context, certificatePath) == 1 else {
      throw .drain("loading the certificate chain from \(certificatePath)")
    }
    guard SSL_CTX_use_PrivateKey_file(context, keyPath, SSL_FILETYPE_PEM) == 1 else {
      throw .drain("loading the private key from \(keyPath)")
    }
    guard SSL_CTX_check_private_key(context) == 1 else {
      throw .drain("checking that the private key matches the certificate")
    }
  }

  deinit { SSL_CTX_free(context) }

  /// The lowest protocol version allowed, as OpenSSL's constant (`0x0303` for TLS 1.2).
  public var minimumProtocolVersion: Int { SSL_CTX_ctrl(context, SSL_CTRL_GET_MIN_PROTO_VERSION, 0, nil) }

  /// The highest protocol version allowed, as OpenSSL's constant (`0x0304` for TLS 1.3).
  public var maximumProtocolVersion: Int { SSL_CTX_ctrl(context, SSL_CTRL_GET_MAX_PROTO_VERSION, 0, nil) }

  /// Runs `body` with the `SSL_CTX*`; the pointer must not escape.
  public func withUnsafeContext<R>(_ body: (OpaquePointer) throws -> R) rethrows -> R { try body(context) }
}
