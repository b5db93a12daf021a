// swift-format-ignore-file: AlwaysUseLowerCamelCase
// (The `sys_` prefix marks the raw C calls, as swift-system's `system_` does.)

// The one door to Glibc: every C function the server calls is wrapped here, and nowhere else.
//
// Each `sys_*` wrapper does nothing but the raw call, so that reading `errno` right after it is reliable: the
// wrappers are `@inline(never)` and `Errno.current` is read by the caller immediately after the wrapper returns,
// with no allocation or ARC traffic in between that could clobber errno (the same reasoning as SwiftNIO's
// `System.swift`). Retrying on EINTR and turning errno into typed errors happen one layer up, in `Socket.swift`.
// The last section turns host names into socket addresses (`inet_pton`, `inet_ntop`, `getaddrinfo`), because that is
// all C structure juggling and belongs behind the same door.

import CEpoll
import Glibc

// MARK: - errno and time

/// The calling thread's `errno`. The corresponding C variable is `errno`.
func sys_errno() -> CInt { Glibc.errno }

/// Seconds since the Unix epoch. The corresponding C function is `clock_gettime(CLOCK_REALTIME, ...)`.
func sys_epochSeconds() -> Int {
  var now = timespec()
  _ = Glibc.clock_gettime(CLOCK_REALTIME, &now)
  return Int(now.tv_sec)
}

/// The number of processors online (at least 1). The corresponding C function is `sysconf(_SC_NPROCESSORS_ONLN)`.
func sys_processorCount() -> Int {
  max(1, Int(Glibc.sysconf(CInt(_SC_NPROCESSORS_ONLN))))
}

/// Ignores SIGPIPE process-wide, so that writing to a closed peer fails with EPIPE instead of killing the process
/// (needed for writes that cannot pass `MSG_NOSIGNAL`, such as TLS later). The corresponding C function is
/// `signal(SIGPIPE, SIG_IGN)`.
func sys_ignoreSIGPIPE() {
  _ = Glibc.signal(SIGPIPE, SIG_IGN)
}

/// Stops the default action of a signal (so a Dispatch signal source can handle it instead). The corresponding C
/// function is `signal(signal, SIG_IGN)`.
func sys_ignoreSignal(_ signal: CInt) {
  _ = Glibc.signal(signal, SIG_IGN)
}

/// The numbers of the termination signals. The corresponding C constants are `SIGTERM` and `SIGINT`.
let sys_terminationSignals: [CInt] = [SIGTERM, SIGINT]

// MARK: - Sockets

/// Creates a socket. The corresponding C function is `socket`.
@inline(never)
func sys_socket(_ domain: CInt, _ type: CInt, _ protocol: CInt) -> CInt {
  Glibc.socket(domain, type, `protocol`)
}

/// Sets a socket option. The corresponding C function is `setsockopt`.
@inline(never)
func sys_setsockopt(
  _ fd: CInt, _ level: CInt, _ name: CInt, _ value: UnsafeRawPointer, _ length: socklen_t
) -> CInt {
  Glibc.setsockopt(fd, level, name, value, length)
}

/// Binds a socket to an address. The corresponding C function is `bind`.
@inline(never)
func sys_bind(_ fd: CInt, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> CInt {
  Glibc.bind(fd, address, length)
}

/// Marks a socket as listening. The corresponding C function is `listen`.
@inline(never)
func sys_listen(_ fd: CInt, _ backlog: CInt) -> CInt {
  Glibc.listen(fd, backlog)
}

/// Reads the address a socket is bound to. The corresponding C function is `getsockname`.
@inline(never)
func sys_getsockname(
  _ fd: CInt, _ address: UnsafeMutablePointer<sockaddr>, _ length: UnsafeMutablePointer<socklen_t>
) -> CInt {
  Glibc.getsockname(fd, address, length)
}

/// Accepts a connection. The corresponding C function is `accept`. (`accept4` is hidden behind `_GNU_SOURCE` in
/// the Glibc module, so flags are set with ``sys_fcntl(_:_:_:)`` afterwards.)
@inline(never)
func sys_accept(_ fd: CInt, _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?)
  -> CInt
{
  Glibc.accept(fd, address, length)
}

/// Reads bytes. The corresponding C function is `read`.
@inline(never)
func sys_read(_ fd: CInt, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
  Glibc.read(fd, buffer, count)
}

/// Writes bytes. The corresponding C function is `write`. (Sockets use ``sys_send(_:_:_:_:)`` with
/// `MSG_NOSIGNAL`.)
@inline(never)
func sys_write(_ fd: CInt, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
  Glibc.write(fd, buffer, count)
}

/// Writes bytes from several buffers. The corresponding C function is `writev`.
@inline(never)
func sys_writev(_ fd: CInt, _ vectors: UnsafePointer<iovec>, _ count: CInt) -> Int {
  Glibc.writev(fd, vectors, count)
}

/// Sends bytes on a socket. The corresponding C function is `send`.
@inline(never)
func sys_send(_ fd: CInt, _ buffer: UnsafeRawPointer?, _ count: Int, _ flags: CInt) -> Int {
  Glibc.send(fd, buffer, count, flags)
}

/// Receives bytes from a socket with flags (`MSG_PEEK` leaves them queued). The corresponding C function is `recv`.
@inline(never)
func sys_recv(_ fd: CInt, _ buffer: UnsafeMutableRawPointer?, _ count: Int, _ flags: CInt) -> Int {
  Glibc.recv(fd, buffer, count, flags)
}

/// Shuts down one or both directions of a socket. The corresponding C function is `shutdown`.
@inline(never)
func sys_shutdown(_ fd: CInt, _ how: CInt) -> CInt {
  Glibc.shutdown(fd, how)
}

/// Closes a descriptor. Never retried on EINTR: on Linux the descriptor is released even then.
/// The corresponding C function is `close`.
@inline(never)
func sys_close(_ fd: CInt) -> CInt {
  Glibc.close(fd)
}

/// Gets or sets descriptor flags. The corresponding C function is `fcntl`.
@inline(never)
func sys_fcntl(_ fd: CInt, _ command: CInt, _ argument: CInt) -> CInt {
  Glibc.fcntl(fd, command, argument)
}

// MARK: - Event loops

/// The readiness events an event loop asks for and is told about.
struct SysEvents: OptionSet, Sendable {
  let rawValue: UInt32
  /// Readable (`EPOLLIN`).
  static let readable = SysEvents(rawValue: EPOLLIN.rawValue)
  /// Writable (`EPOLLOUT`).
  static let writable = SysEvents(rawValue: EPOLLOUT.rawValue)
  /// An error or a hang-up, reported whether asked for or not (`EPOLLERR | EPOLLHUP`).
  static let failure = SysEvents(rawValue: EPOLLERR.rawValue | EPOLLHUP.rawValue)
}

/// Creates a close-on-exec epoll instance. The corresponding C function is `epoll_create1(EPOLL_CLOEXEC)`.
@inline(never)
func sys_epollCreate() -> CInt {
  CEpoll.epoll_create1(CInt(EPOLL_CLOEXEC))
}

/// Adds (`add`), changes or (with empty `events`) removes the interest of an epoll instance in a descriptor,
/// tagged with `token`; level-triggered. The corresponding C function is `epoll_ctl`.
@inline(never)
func sys_epollControl(_ epoll: CInt, _ fd: CInt, add: Bool, events: SysEvents, token: UInt64) -> CInt {
  var event = epoll_event()
  event.events = events.rawValue
  event.data.u64 = token
  let operation = events.isEmpty ? EPOLL_CTL_DEL : add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD
  return CEpoll.epoll_ctl(epoll, operation, fd, &event)
}

/// Room for the events one ``sys_epollWait(_:_:_:)`` returns.
struct SysEventBuffer: ~Copyable {
  fileprivate let events: UnsafeMutablePointer<epoll_event>
  let capacity: Int

  init(capacity: Int) {
    self.capacity = capacity
    events = .allocate(capacity: capacity)
    events.initialize(repeating: epoll_event(), count: capacity)
  }

  deinit { events.deallocate() }

  /// The token and events of the `index`th event returned.
  subscript(index: Int) -> (token: UInt64, events: SysEvents) {
    (events[index].data.u64, SysEvents(rawValue: events[index].events))
  }
}

/// Waits up to `timeoutMilliseconds` (-1: for ever) for events; returns how many were stored, or -1 (see errno).
/// The corresponding C function is `epoll_wait`.
@inline(never)
func sys_epollWait(_ epoll: CInt, _ buffer: borrowing SysEventBuffer, _ timeoutMilliseconds: CInt) -> CInt {
  CEpoll.epoll_wait(epoll, buffer.events, CInt(buffer.capacity), timeoutMilliseconds)
}

/// Creates a non-blocking, close-on-exec event counter to wake an event loop. The corresponding C function is
/// `eventfd`.
@inline(never)
func sys_eventCounter() -> CInt {
  CEpoll.eventfd(0, CInt(EFD_NONBLOCK) | CInt(EFD_CLOEXEC))
}

/// Adds one to an event counter (makes it readable). The corresponding C function is `eventfd_write`.
@inline(never)
func sys_signalEventCounter(_ fd: CInt) {
  _ = CEpoll.eventfd_write(fd, 1)
}

/// Resets an event counter to zero. The corresponding C function is `eventfd_read`.
@inline(never)
func sys_drainEventCounter(_ fd: CInt) {
  var value: eventfd_t = 0
  _ = CEpoll.eventfd_read(fd, &value)
}

// MARK: - Resource limits

/// Raises the soft limit on open descriptors to the hard limit, so that many connections can be open at once.
/// Returns the soft limit in force afterwards (or `nil` if it cannot be read). The corresponding C functions are
/// `getrlimit` and `setrlimit` with `RLIMIT_NOFILE`.
func sys_raiseOpenFileLimit() -> Int? {
  var limit = rlimit()
  let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
  guard Glibc.getrlimit(resource, &limit) == 0 else { return nil }
  if limit.rlim_cur < limit.rlim_max {
    var raised = limit
    raised.rlim_cur = limit.rlim_max
    if Glibc.setrlimit(resource, &raised) == 0 { limit = raised }
  }
  return Int(clamping: limit.rlim_cur)  // RLIM_INFINITY is the largest value, so it clamps to Int.max.
}

// MARK: - Constants, named once

enum SysConstants {
  static let streamSocketFlags =
    CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue)
    | CInt(SOCK_CLOEXEC.rawValue)
  static let getStatusFlags = F_GETFL
  static let setStatusFlags = F_SETFL
  static let nonBlocking = O_NONBLOCK
  static let setDescriptorFlags = F_SETFD
  static let closeOnExec = FD_CLOEXEC
  static let sendFlags = CInt(MSG_NOSIGNAL)
  static let peekFlags = CInt(MSG_PEEK)
  static let shutdownWrite = CInt(SHUT_WR)
  static let solSocket = CInt(SOL_SOCKET)
  static let reuseAddress = CInt(SO_REUSEADDR)
  static let ipprotoTCP = CInt(IPPROTO_TCP)
  static let tcpNoDelay = CInt(TCP_NODELAY)
  static let intOptionLength = socklen_t(MemoryLayout<CInt>.size)
}

// MARK: - Addresses

/// An IPv4 or IPv6 socket address.
struct SocketAddress: Sendable, CustomStringConvertible {
  fileprivate var storage = sockaddr_storage()
  fileprivate var length: socklen_t = 0

  /// The address family (`AF_INET` or `AF_INET6`).
  var family: CInt { CInt(storage.ss_family) }

  /// The port, in host byte order.
  var port: Int {
    withUnsafeBytes(of: storage) { raw in
      if family == AF_INET6 {
        return Int(UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port))
      }
      return Int(UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port))
    }
  }

  var description: String {
    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    var copy = storage
    _ = withUnsafeMutableBytes(of: &copy) { raw in
      if family == AF_INET6 {
        let offset = MemoryLayout<sockaddr_in6>.offset(of: \.sin6_addr)!
        return Glibc.inet_ntop(AF_INET6, raw.baseAddress! + offset, &text, socklen_t(text.count))
      }
      let offset = MemoryLayout<sockaddr_in>.offset(of: \.sin_addr)!
      return Glibc.inet_ntop(AF_INET, raw.baseAddress! + offset, &text, socklen_t(text.count))
    }
    let host = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)"
  }

  /// Runs `body` with the address as a `sockaddr` pointer and its length.
  func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
    try withUnsafeBytes(of: storage) { raw in
      try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
    }
  }

  /// Resolves a listening address: a numeric IPv4 or IPv6 address (brackets allowed), `localhost` (127.0.0.1), or a
  /// name resolved with `getaddrinfo` (IPv4 preferred). Returns `nil` if the host cannot be resolved.
  static func resolve(host: String, port: Int) -> SocketAddress? {
    var name = host
    if name.hasPrefix("[") && name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
    if name == "localhost" { name = "127.0.0.1" }

    var address = SocketAddress()
    var v4 = sockaddr_in()
    if Glibc.inet_pton(AF_INET, name, &v4.sin_addr) == 1 {
      v4.sin_family = sa_family_t(AF_INET)
      v4.sin_port = UInt16(port).bigEndian
      address.set(v4)
      return address
    }
    var v6 = sockaddr_in6()
    if Glibc.inet_pton(AF_INET6, name, &v6.sin6_addr) == 1 {
      v6.sin6_family = sa_family_t(AF_INET6)
      v6.sin6_port = UInt16(port).bigEndian
      address.set(v6)
      return address
    }

    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
    var results: UnsafeMutablePointer<addrinfo>?
    guard Glibc.getaddrinfo(name, nil, &hints, &results) == 0, let first = results else { return nil }
    defer { Glibc.freeaddrinfo(first) }
    var chosen: UnsafeMutablePointer<addrinfo>?
    var cursor: UnsafeMutablePointer<addrinfo>? = first
    while let entry = cursor {
      if entry.pointee.ai_family == AF_INET || (entry.pointee.ai_family == AF_INET6 && chosen == nil) {
        chosen = entry
        if entry.pointee.ai_family == AF_INET { break }
      }
      cursor = entry.pointee.ai_next
    }
    guard let entry = chosen, let raw = entry.pointee.ai_addr else { return nil }
    withUnsafeMutableBytes(of: &address.storage) { storage in
      storage.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: Int(entry.pointee.ai_addrlen)))
    }
    address.length = entry.pointee.ai_addrlen
    // sin_port and sin6_port share offset 2.
    withUnsafeMutableBytes(of: &address.storage) {
      $0.storeBytes(of: UInt16(port).bigEndian, toByteOffset: 2, as: UInt16.self)
    }
    return address
  }

  /// The address a socket is bound to, or `nil` if `getsockname` fails.
  static func local(of fd: CInt) -> SocketAddress? {
    var address = SocketAddress()
    address.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let result = withUnsafeMutableBytes(of: &address.storage) { raw in
      sys_getsockname(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &address.length)
    }
    return result == 0 ? address : nil
  }

  private mutating func set<T>(_ value: T) {
    withUnsafeMutableBytes(of: &storage) { storage in
      withUnsafeBytes(of: value) { storage.copyMemory(from: $0) }
    }
    length = socklen_t(MemoryLayout<T>.size)
  }
}
