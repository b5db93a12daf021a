// The owner of one socket descriptor, with typed operations over the `sys_*` wrappers.

/// Owns one open socket descriptor until ``close()`` or ``takeOwnership()``.
///
/// Not thread-safe: a socket is used from one serial queue at a time (the accept queue for the listener, the
/// connection's queue for a connection), which is why it is `@unchecked Sendable`. In debug builds, dropping a socket
/// that is still open is a failed assertion (an fd leak).
final class Socket: @unchecked Sendable {
  private var descriptor: CInt

  /// Takes ownership of an open descriptor.
  init(taking descriptor: CInt) {
    precondition(descriptor >= 0)
    self.descriptor = descriptor
  }

  deinit {
    assert(descriptor < 0, "leak of an open Socket (fd \(descriptor))")
  }

  /// Whether the descriptor is still open.
  var isOpen: Bool { descriptor >= 0 }

  /// Runs `body` with the descriptor; it must not be closed or kept.
  func withUnsafeDescriptor<R>(_ body: (CInt) throws -> R) rethrows -> R {
    precondition(descriptor >= 0, "use of a closed Socket")
    return try body(descriptor)
  }

  /// Gives up ownership without closing: the caller now owns the descriptor.
  func takeOwnership() -> CInt {
    precondition(descriptor >= 0, "use of a closed Socket")
    defer { descriptor = -1 }
    return descriptor
  }

  /// Closes the descriptor (once; later calls do nothing). EINTR is not retried: Linux releases the descriptor
  /// anyway, and retrying could close a descriptor another thread has just been given.
  func close() {
    guard descriptor >= 0 else { return }
    _ = sys_close(descriptor)
    descriptor = -1
  }

  /// Creates a non-blocking TCP socket bound to `address` and listening.
  /// - Throws: ``HTTPServerError`` (`addressInUse` for EADDRINUSE).
  static func listen(on address: SocketAddress, backlog: Int) throws(HTTPServerError) -> Socket {
    let fd = sys_socket(address.family, SysConstants.streamSocketFlags, 0)
    guard fd >= 0 else { throw .systemCallFailed("socket", Errno.current) }
    let socket = Socket(taking: fd)
    do {
      try socket.setOption(level: SysConstants.solSocket, name: SysConstants.reuseAddress, value: 1)
      let bound = address.withSockaddr { sys_bind(fd, $0, $1) }
      if bound != 0 {
        let errno = Errno.current
        if errno == .addressInUse { throw HTTPServerError.addressInUse(address.description) }
        if errno == .addressNotAvailable { throw HTTPServerError.invalidAddress(address.description) }
        throw HTTPServerError.systemCallFailed("bind", errno)
      }
      guard sys_listen(fd, CInt(clamping: backlog)) == 0 else {
        throw HTTPServerError.systemCallFailed("listen", Errno.current)
      }
    } catch let error as HTTPServerError {
      socket.close()
      throw error
    } catch {
      socket.close()
      throw .systemCallFailed("setsockopt", (error as? SyscallError)?.errno ?? Errno(rawValue: 0))
    }
    return socket
  }

  /// The address the socket is bound to.
  var localAddress: SocketAddress? { withUnsafeDescriptor { SocketAddress.local(of: $0) } }

  /// Accepts one pending connection as a non-blocking, close-on-exec socket; `nil` when none is pending.
  func accept() throws(SyscallError) -> Socket? {
    let fd = descriptor
    guard case .processed(let client) = try retryingSyscall("accept", { sys_accept(fd, nil, nil) }) else {
      return nil
    }
    let socket = Socket(taking: client)
    do throws(SyscallError) {
      guard
        case .processed(let flags) = try retryingSyscall(
          "fcntl", { sys_fcntl(client, SysConstants.getStatusFlags, 0) })
      else { throw SyscallError(function: "fcntl", errno: .wouldBlock) }
      _ = try retryingSyscall(
        "fcntl", { sys_fcntl(client, SysConstants.setStatusFlags, flags | SysConstants.nonBlocking) })
      _ = try retryingSyscall(
        "fcntl", { sys_fcntl(client, SysConstants.setDescriptorFlags, SysConstants.closeOnExec) })
    } catch {
      socket.close()
      throw error
    }
    return socket
  }

  /// Reads into `buffer`; `.processed(0)` means the peer closed its side.
  func read(into buffer: UnsafeMutableRawBufferPointer) throws(SyscallError) -> IOResult<Int> {
    let fd = descriptor
    return try retryingSyscall("read", { sys_read(fd, buffer.baseAddress, buffer.count) })
  }

  /// Copies the first bytes waiting on the socket into `buffer` without consuming them; `.processed(0)` means the
  /// peer closed its side.
  func peek(into buffer: UnsafeMutableRawBufferPointer) throws(SyscallError) -> IOResult<Int> {
    let fd = descriptor
    return try retryingSyscall(
      "recv", { sys_recv(fd, buffer.baseAddress, buffer.count, SysConstants.peekFlags) })
  }

  /// Sends bytes with `MSG_NOSIGNAL` (a closed peer gives EPIPE, never SIGPIPE); may send fewer than given.
  func send(_ bytes: UnsafeRawBufferPointer) throws(SyscallError) -> IOResult<Int> {
    let fd = descriptor
    return try retryingSyscall("send", { sys_send(fd, bytes.baseAddress, bytes.count, SysConstants.sendFlags) })
  }

  /// Sets an integer socket option.
  func setOption(level: CInt, name: CInt, value: CInt) throws(SyscallError) {
    var value = value
    let fd = descriptor
    let size = SysConstants.intOptionLength
    _ = try retryingSyscall("setsockopt", { sys_setsockopt(fd, level, name, &value, size) })
  }

  /// Disables Nagle's algorithm, so small responses leave at once.
  func setNoDelay() throws(SyscallError) {
    try setOption(level: SysConstants.ipprotoTCP, name: SysConstants.tcpNoDelay, value: 1)
  }

  /// Shuts down the sending side (the peer reads end-of-file); errors are ignored.
  func shutdownOutput() {
    guard descriptor >= 0 else { return }
    _ = sys_shutdown(descriptor, SysConstants.shutdownWrite)
  }
}
