// Typed errno values and the single place that retries EINTR.

import Glibc

/// An error number from the C library, with Swift names for the values the server handles.
struct Errno: RawRepresentable, Hashable, Sendable, Error, CustomStringConvertible {
  /// The C value.
  var rawValue: CInt

  init(rawValue: CInt) { self.rawValue = rawValue }

  /// The calling thread's current errno. Read it immediately after the failing `sys_*` call.
  static var current: Errno { Errno(rawValue: sys_errno()) }

  /// Interrupted system call. The corresponding C error is `EINTR`.
  static let interrupted = Errno(rawValue: Glibc.EINTR)
  /// Resource temporarily unavailable; also "operation would block". The corresponding C error is `EAGAIN`.
  static let wouldBlock = Errno(rawValue: Glibc.EAGAIN)
  /// Bad file descriptor. The corresponding C error is `EBADF`.
  static let badFileDescriptor = Errno(rawValue: Glibc.EBADF)
  /// Bad address. The corresponding C error is `EFAULT`.
  static let badAddress = Errno(rawValue: Glibc.EFAULT)
  /// Address already in use. The corresponding C error is `EADDRINUSE`.
  static let addressInUse = Errno(rawValue: Glibc.EADDRINUSE)
  /// Cannot assign requested address. The corresponding C error is `EADDRNOTAVAIL`.
  static let addressNotAvailable = Errno(rawValue: Glibc.EADDRNOTAVAIL)
  /// Permission denied. The corresponding C error is `EACCES`.
  static let permissionDenied = Errno(rawValue: Glibc.EACCES)
  /// Software caused connection abort. The corresponding C error is `ECONNABORTED`.
  static let connectionAborted = Errno(rawValue: Glibc.ECONNABORTED)
  /// Connection reset by peer. The corresponding C error is `ECONNRESET`.
  static let connectionReset = Errno(rawValue: Glibc.ECONNRESET)
  /// Broken pipe. The corresponding C error is `EPIPE`.
  static let brokenPipe = Errno(rawValue: Glibc.EPIPE)
  /// Protocol error. The corresponding C error is `EPROTO`.
  static let protocolError = Errno(rawValue: Glibc.EPROTO)
  /// Too many open files in the process. The corresponding C error is `EMFILE`.
  static let tooManyOpenFiles = Errno(rawValue: Glibc.EMFILE)
  /// Too many open files in the system. The corresponding C error is `ENFILE`.
  static let tooManyOpenFilesInSystem = Errno(rawValue: Glibc.ENFILE)
  /// No buffer space available. The corresponding C error is `ENOBUFS`.
  static let noBufferSpace = Errno(rawValue: Glibc.ENOBUFS)
  /// Out of memory. The corresponding C error is `ENOMEM`.
  static let noMemory = Errno(rawValue: Glibc.ENOMEM)

  // swift-format-ignore: AlwaysUseLowerCamelCase
  @available(*, unavailable, renamed: "interrupted")
  static var EINTR: Errno { interrupted }
  // swift-format-ignore: AlwaysUseLowerCamelCase
  @available(*, unavailable, renamed: "wouldBlock")
  static var EAGAIN: Errno { wouldBlock }

  var description: String {
    switch self {
    case .interrupted: "EINTR"
    case .wouldBlock: "EAGAIN"
    case .badFileDescriptor: "EBADF"
    case .addressInUse: "EADDRINUSE"
    case .addressNotAvailable: "EADDRNOTAVAIL"
    case .permissionDenied: "EACCES"
    case .connectionAborted: "ECONNABORTED"
    case .connectionReset: "ECONNRESET"
    case .brokenPipe: "EPIPE"
    case .tooManyOpenFiles: "EMFILE"
    case .tooManyOpenFilesInSystem: "ENFILE"
    default: "errno \(rawValue)"
    }
  }
}

/// A failed system call: which one, and its errno.
struct SyscallError: Error, CustomStringConvertible {
  /// The C function, e.g. `"accept4"`.
  var function: StaticString
  /// The error number.
  var errno: Errno

  var description: String { "\(function) failed: \(errno)" }
}

/// The result of an I/O call on a non-blocking descriptor.
enum IOResult<Value> {
  /// The call did something and returned this value (bytes moved, a new descriptor).
  case processed(Value)
  /// The descriptor is not ready (EAGAIN); wait for the dispatch source.
  case wouldBlock
}

/// Runs a `sys_*` wrapper until it is not interrupted: `-1` with EINTR is retried, EAGAIN becomes
/// ``IOResult/wouldBlock``, any other errno is thrown. EBADF and EFAULT are programming errors and stop the process.
/// Never use this for `close`.
@inline(__always)
func retryingSyscall<T: FixedWidthInteger>(
  _ function: StaticString, _ call: () -> T
) throws(SyscallError) -> IOResult<T> {
  while true {
    let result = call()
    if result != -1 { return .processed(result) }
    let errno = Errno.current
    switch errno {
    case .interrupted:
      continue
    case .wouldBlock:
      return .wouldBlock
    case .badFileDescriptor, .badAddress:
      preconditionFailure("\(function) failed with \(errno): a bug in descriptor handling")
    default:
      throw SyscallError(function: function, errno: errno)
    }
  }
}
