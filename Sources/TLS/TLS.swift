// TLS server contexts over OpenSSL. With TLSClient.swift (client connections), the only Swift code that calls
// OpenSSL; the OpenSSL error queue is drained into TLSError here.

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

/// A server-side TLS configuration: certificate chain, private key and protocol versions (TLS 1.2 and 1.3 only), with
/// ALPN answering `http/1.1`.
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
    // SSL_CTX_set_mode is a macro over SSL_CTX_ctrl. Partial writes let a non-blocking socket take what it can.
    // The record buffers are kept for the connection's life (SSL_MODE_RELEASE_BUFFERS would free and allocate them
    // around every record).
    _ = SSL_CTX_ctrl(
      context, SSL_CTRL_MODE, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), nil)
    // SSL_CTX_set_read_ahead is a macro over SSL_CTX_ctrl: read as much as the socket holds at once, instead of a
    // record's header and then its body in two reads.
    _ = SSL_CTX_ctrl(context, SSL_CTRL_SET_READ_AHEAD, 1, nil)
    // SSL_OP_NO_RENEGOTIATION is SSL_OP_BIT(30), a macro Swift does not import.
    _ = SSL_CTX_set_options(context, UInt64(1) << 30)
    SSL_CTX_set_alpn_select_cb(context, TLSContext.selectHTTP1, nil)
  }

  deinit { SSL_CTX_free(context) }

  /// The lowest protocol version allowed, as OpenSSL's constant (`0x0303` for TLS 1.2).
  public var minimumProtocolVersion: Int { SSL_CTX_ctrl(context, SSL_CTRL_GET_MIN_PROTO_VERSION, 0, nil) }

  /// The highest protocol version allowed, as OpenSSL's constant (`0x0304` for TLS 1.3).
  public var maximumProtocolVersion: Int { SSL_CTX_ctrl(context, SSL_CTRL_GET_MAX_PROTO_VERSION, 0, nil) }

  /// Runs `body` with the `SSL_CTX*`; the pointer must not escape.
  public func withUnsafeContext<R>(_ body: (OpaquePointer) throws -> R) rethrows -> R { try body(context) }
}

extension TLSContext {
  /// Selects `http/1.1` when the client offers it by ALPN; a client that offers only other protocols (such as `h2`)
  /// gets no ALPN answer and may still speak HTTP/1.1.
  static let selectHTTP1:
    @convention(c) (
      OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<UInt8>?,
      UnsafePointer<UInt8>?, UInt32, UnsafeMutableRawPointer?
    ) -> Int32 = { _, out, outLength, offered, offeredLength, _ in
      guard let out, let outLength, let offered else { return SSL_TLSEXT_ERR_NOACK }
      // The offered list is a sequence of length-prefixed names.
      let wanted = Array("http/1.1".utf8)
      var index = 0
      let count = Int(offeredLength)
      while index < count {
        let length = Int(offered[index])
        let start = index + 1
        guard start + length <= count else { break }
        if length == wanted.count && (0..<length).allSatisfy({ offered[start + $0] == wanted[$0] }) {
          out.pointee = offered + start
          outLength.pointee = UInt8(length)
          return SSL_TLSEXT_ERR_OK
        }
        index = start + length
      }
      return SSL_TLSEXT_ERR_NOACK
    }
}

/// One server-side TLS connection over a non-blocking socket descriptor (OpenSSL reads and writes the descriptor
/// itself).
///
/// Not thread-safe: use it from one serial queue. Every call returns at once; `wantRead` and `wantWrite` say which
/// readiness of the socket to wait for before calling again. The descriptor stays owned by the caller and is not
/// closed here.
///
/// ```swift
/// let session = try TLSSession(context: context, descriptor: fd)
/// switch session.handshake() { case .complete: ...; case .wantRead: ...; case .wantWrite: ...; case .failed: ... }
/// ```
public final class TLSSession {
  private let ssl: OpaquePointer
  /// Keeps the context (and so its `SSL_CTX`) alive as long as the session.
  private let context: TLSContext

  /// The outcome of one non-blocking operation.
  public enum Status: Sendable, Equatable {
    /// The operation moved this many bytes (for ``handshake()``: 0, it is complete).
    case done(Int)
    /// Call again once the socket is readable.
    case wantRead
    /// Call again once the socket is writable.
    case wantWrite
    /// The peer closed the TLS connection (close_notify) or the socket.
    case closed
    /// A protocol or system error; the connection is unusable.
    case failed(TLSError)
  }

  /// Creates the session for an accepted socket; call ``handshake()`` next.
  /// - Throws: ``TLSError`` if OpenSSL cannot allocate the connection.
  public init(context: TLSContext, descriptor: Int32) throws(TLSError) {
    ERR_clear_error()
    guard let ssl = context.withUnsafeContext({ SSL_new($0) }) else { throw .drain("creating an SSL") }
    guard SSL_set_fd(ssl, descriptor) == 1 else {
      SSL_free(ssl)
      throw .drain("attaching the socket")
    }
    SSL_set_accept_state(ssl)
    self.ssl = ssl
    self.context = context
  }

  deinit { SSL_free(ssl) }

  /// Advances the server handshake.
  /// - Returns: `.done(0)` once it is complete, else what to wait for or why it failed.
  public func handshake() -> Status {
    ERR_clear_error()
    let result = SSL_do_handshake(ssl)
    return result == 1 ? .done(0) : status(of: result, "handshaking")
  }

  /// Reads decrypted bytes into `buffer` (at most one record's worth).
  public func read(into buffer: UnsafeMutableRawBufferPointer) -> Status {
    guard buffer.count > 0 else { return .done(0) }
    ERR_clear_error()
    let result = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
    return result > 0 ? .done(Int(result)) : status(of: result, "reading")
  }

  /// Encrypts and sends bytes; may send fewer than given.
  public func write(_ bytes: UnsafeRawBufferPointer) -> Status {
    guard bytes.count > 0 else { return .done(0) }
    ERR_clear_error()
    let result = SSL_write(ssl, bytes.baseAddress, Int32(clamping: bytes.count))
    return result > 0 ? .done(Int(result)) : status(of: result, "writing")
  }

  /// Decrypted bytes OpenSSL holds that the socket no longer shows as readable.
  public var bufferedByteCount: Int { Int(SSL_pending(ssl)) }

  /// Whether OpenSSL holds input the socket no longer shows as readable: decrypted bytes, or received bytes not yet
  /// decrypted (with read-ahead, one socket read can take several records).
  public var hasBufferedInput: Bool { SSL_has_pending(ssl) == 1 }

  /// The protocol chosen by ALPN (`"http/1.1"`), or `nil` when the client offered none.
  public var negotiatedProtocol: String? {
    var name: UnsafePointer<UInt8>?
    var length: UInt32 = 0
    SSL_get0_alpn_selected(ssl, &name, &length)
    guard let name, length > 0 else { return nil }
    return String(decoding: UnsafeBufferPointer(start: name, count: Int(length)), as: UTF8.self)
  }

  /// The protocol version in use, e.g. `"TLSv1.3"`.
  public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

  /// Sends close_notify if it can do so without blocking; errors are ignored.
  public func shutdown() {
    ERR_clear_error()
    _ = SSL_shutdown(ssl)
    ERR_clear_error()
  }

  private func status(of result: Int32, _ operation: String) -> Status {
    switch SSL_get_error(ssl, result) {
    case SSL_ERROR_WANT_READ: return .wantRead
    case SSL_ERROR_WANT_WRITE: return .wantWrite
    case SSL_ERROR_ZERO_RETURN: return .closed
    case SSL_ERROR_SYSCALL:
      // An EOF or socket error without an OpenSSL error queued.
      let error = TLSError.drain(operation)
      return error.messages.isEmpty ? .closed : .failed(error)
    default: return .failed(.drain(operation))
    }
  }
}
