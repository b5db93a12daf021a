// The listening side: binds, accepts on one queue, hands each connection to one of the shared event loops, and shuts
// down gracefully.

import Dispatch
import HTTPCore
import Locking
import Logging
import TLS

/// An HTTP/1.1 server over non-blocking sockets, epoll and Dispatch, optionally over TLS.
///
/// Connections are spread over a few event loops (one thread per two processors, shared by every server of the
/// process), and each answers one request at a time: pipelined requests are buffered and answered in order, and the
/// socket is not read while a request is with the responder. A malformed request gets
/// its status (400, 413, 431, 501, 505) as `application/problem+json` with `Connection: close`, then the connection
/// closes; so does a request that does not arrive within its time-out (408). Request bodies with
/// `Content-Encoding: gzip` are inflated before the responder sees them (413 past the body limit, 415 for other
/// codings), and responses are gzipped when the client accepts it (see ``HTTPCompression``). Past
/// ``HTTPServerConfiguration/maxConnections`` a new connection gets a 503 and is closed. Every request gets an
/// `X-Request-Id` (the client's when it is sane, else a generated one; see ``HTTPRequestID``) that the responder
/// sees, every response to it echoes, and its log line carries as `request_id`. The responder's
/// ``HTTPResponder/screen(_:)`` sees each request's head before its body is read, and may refuse it there. With a
/// logger, each request is logged at `info` level.
///
/// ```swift
/// let server = HTTPServer(
///   configuration: HTTPServerConfiguration(port: 0),
///   responder: HTTPClosureResponder { request in HTTPResponse(body: request.body) })
/// let port = try server.start()
/// // ...
/// server.shutdown()
/// server.wait()
/// ```
public final class HTTPServer: Sendable {
  /// The configuration the server was created with.
  public let configuration: HTTPServerConfiguration
  private let responder: any HTTPResponder
  private let logger: Logger?
  private let acceptQueue = DispatchQueue(label: "adjoint.http.accept")
  private let stopped = DispatchGroup()
  private let state = Locked(State())

  private enum Phase {
    case idle
    case starting
    case running
    case draining
    case stopped
  }

  private struct State: ~Copyable {
    var phase = Phase.idle
    /// Touched only to store it and to take it for cancelling; the source itself lives on the accept queue.
    var acceptSource: UncheckedSendableBox<any DispatchSourceRead>?
    var listenerOpen = false
    var port: Int?
    var connections: [Int: Connection] = [:]
    var nextConnectionID = 0
    var tls: TLSContext?
    var refused = 0
  }

  /// The number of accepts tried per readable event of the listener, before yielding the accept queue.
  private static let acceptsPerEvent = 64

  /// Creates a server; nothing happens until ``start()``.
  /// - Parameters:
  ///   - configuration: Where to listen and which limits to enforce.
  ///   - responder: Answers the requests.
  ///   - logger: Where to log each request (at `info`) and failures (at `warning`); `nil` logs nothing.
  public init(configuration: HTTPServerConfiguration, responder: any HTTPResponder, logger: Logger? = nil) {
    self.configuration = configuration
    self.responder = responder
    self.logger = logger
  }

  /// The bound port once started, else `nil`.
  public var port: Int? { state.withLock { $0.port } }

  /// The number of open connections.
  public var connectionCount: Int { state.withLock { $0.connections.count } }

  /// Whether ``shutdown()`` has been called and connections are still finishing (for a readiness check to answer
  /// 503 while draining).
  public var isDraining: Bool {
    state.withLock {
      if case .draining = $0.phase { return true }
      return false
    }
  }

  /// The number of connections refused because ``HTTPServerConfiguration/maxConnections`` were open.
  public var refusedConnectionCount: Int { state.withLock { $0.refused } }

  /// Binds, listens and starts accepting connections.
  /// - Returns: The bound port (the one the system picked when the configured port is 0).
  /// - Throws: ``HTTPServerError``: ``HTTPServerError/addressInUse`` if another socket holds the address,
  ///   ``HTTPServerError/invalidAddress`` for an unresolvable host or bad port, ``HTTPServerError/alreadyStarted``,
  ///   ``HTTPServerError/tlsSetupFailed`` when the certificate or key cannot be loaded.
  @discardableResult
  public func start() throws(HTTPServerError) -> Int {
    try state.withLock { (state) throws(HTTPServerError) in
      guard case .idle = state.phase else { throw .alreadyStarted }
      state.phase = .starting
    }
    let listener: Socket
    let port: Int
    var tls: TLSContext?
    do throws(HTTPServerError) {
      if let files = configuration.tls {
        do {
          tls = try TLSContext(certificatePath: files.certificatePath, keyPath: files.keyPath)
        } catch {
          throw HTTPServerError.tlsSetupFailed(error.description)
        }
      }
      guard (0...65_535).contains(configuration.port),
        let address = SocketAddress.resolve(host: configuration.host, port: configuration.port)
      else { throw HTTPServerError.invalidAddress("\(configuration.host):\(configuration.port)") }
      listener = try Socket.listen(on: address, backlog: configuration.backlog)
      port = listener.localAddress?.port ?? configuration.port
    } catch {
      state.withLock { $0.phase = .idle }
      throw error
    }
    HTTPServer.ignoreSIGPIPE
    HTTPServer.raiseOpenFileLimit

    let source = listener.withUnsafeDescriptor {
      DispatchSource.makeReadSource(fileDescriptor: $0, queue: acceptQueue)
    }
    source.setEventHandler { [weak self] in
      guard let self else { return }
      self.acceptConnections(from: listener, source: source)
    }
    source.setCancelHandler { [weak self] in
      listener.close()
      self?.listenerClosed()
    }
    stopped.enter()
    state.withLock { state in
      state.phase = .running
      state.acceptSource = UncheckedSendableBox(source)
      state.listenerOpen = true
      state.port = port
      state.tls = tls
    }
    source.resume()
    return port
  }

  /// Stops accepting, closes idle connections, and lets requests in flight finish (their responses carry
  /// `Connection: close`); connections still open after ``HTTPServerConfiguration/drainTimeout`` are closed.
  /// Returns at once; use ``wait()`` to block until every connection has closed.
  public func shutdown() {
    let (source, connections) = state.withLock {
      state -> (UncheckedSendableBox<any DispatchSourceRead>?, [Connection]) in
      switch state.phase {
      case .idle:
        state.phase = .stopped
        return (nil, [])
      case .running:
        state.phase = .draining
        let source = state.acceptSource
        state.acceptSource = nil
        return (source, Array(state.connections.values))
      case .starting, .draining, .stopped:
        return (nil, [])
      }
    }
    guard let source else { return }
    source.value.cancel()
    // One task per loop for all its connections: a loop that ran the drains one task at a time could handle a
    // request on a connection not yet draining after closing another, and answer it without `Connection: close`.
    for group in Dictionary(grouping: connections, by: { ObjectIdentifier($0.loop) }).values {
      group[0].loop.execute { for connection in group { connection.drainOnLoop() } }
    }
    let (seconds, attoseconds) = configuration.drainTimeout.components
    let (whole, overflow) = max(0, seconds).multipliedReportingOverflow(by: 1_000_000_000)
    let (sum, carry) = whole.addingReportingOverflow(max(0, attoseconds) / 1_000_000_000)
    let nanoseconds = overflow || carry ? Int64.max : sum
    acceptQueue.asyncAfter(deadline: .now() + .nanoseconds(Int(clamping: nanoseconds))) { [weak self] in
      guard let self else { return }
      let left = self.state.withLock { Array($0.connections.values) }
      if !left.isEmpty {
        self.logger?.warning("closing \(left.count) connections still open at the drain deadline")
      }
      for connection in left { connection.forceClose() }
    }
  }

  /// Blocks until the server has shut down and every connection has closed. Returns at once if the server was never
  /// started.
  public func wait() {
    stopped.wait()
  }

  // MARK: - Accepting

  private func acceptConnections(from listener: Socket, source: any DispatchSourceRead) {
    for _ in 0..<HTTPServer.acceptsPerEvent {
      guard listener.isOpen else { return }
      let client: Socket
      do {
        guard let accepted = try listener.accept() else { return }
        client = accepted
      } catch {
        switch error.errno {
        case .connectionAborted, .protocolError:
          continue
        case .tooManyOpenFiles, .tooManyOpenFilesInSystem, .noBufferSpace, .noMemory:
          // The listener stays readable; back off instead of spinning until a descriptor frees up.
          source.suspend()
          let suspended = UncheckedSendableBox(source)
          acceptQueue.asyncAfter(deadline: .now() + .milliseconds(100)) { suspended.value.resume() }
          return
        default:
          return
        }
      }
      try? client.setNoDelay()
      let (connection, full) = state.withLock { state -> (Connection?, Bool) in
        guard case .running = state.phase else { return (nil, false) }
        guard state.connections.count < configuration.maxConnections else {
          state.refused += 1
          return (nil, true)
        }
        let id = state.nextConnectionID
        state.nextConnectionID += 1
        let settings = Connection.Settings(
          limits: configuration.limits, timeouts: configuration.timeouts, compression: configuration.compression,
          tls: state.tls, logger: logger)
        let connection = Connection(
          id: id, socket: client, responder: responder, settings: settings, loop: EventLoop.forConnection(id),
          onClose: { [weak self] id in self?.connectionClosed(id) })
        state.connections[id] = connection
        return (connection, false)
      }
      if let connection {
        connection.start()
      } else {
        // Best effort and never blocking: a refused client learns why if the bytes fit in the socket buffer.
        if full && configuration.tls == nil {
          _ = HTTPServer.refusal.withUnsafeBytes { try? client.send($0) }
        }
        client.close()
      }
    }
  }

  // MARK: - Stopping

  private func connectionClosed(_ id: Int) {
    state.withLock { _ = $0.connections.removeValue(forKey: id) }
    stopIfDone()
  }

  private func listenerClosed() {
    state.withLock { $0.listenerOpen = false }
    stopIfDone()
  }

  private func stopIfDone() {
    let done = state.withLock { state -> Bool in
      guard case .draining = state.phase, !state.listenerOpen, state.connections.isEmpty else { return false }
      state.phase = .stopped
      return true
    }
    if done { stopped.leave() }
  }

  /// The process-wide setup, run once: writes to closed peers must fail with EPIPE, never raise SIGPIPE.
  private static let ignoreSIGPIPE: Void = sys_ignoreSIGPIPE()

  /// The process-wide setup, run once: as many descriptors as the hard limit allows, for many connections.
  private static let raiseOpenFileLimit: Void = { _ = sys_raiseOpenFileLimit() }()

  /// What a connection past ``HTTPServerConfiguration/maxConnections`` is sent before it is closed.
  private static let refusal: [UInt8] = {
    var response = HTTPResponse.problem(status: .serviceUnavailable, detail: "too many connections; retry later")
    response.headers.add(name: "Retry-After", value: "1")
    var serializer = HTTPResponseSerializer()
    return serializer.serialize(
      response, requestMethod: .get, requestVersion: .http1_1, keepAlive: false, now: sys_epochSeconds())
  }()
}

/// Carries a value that is not `Sendable` to another closure on the same serial queue.
struct UncheckedSendableBox<Value>: @unchecked Sendable {
  let value: Value
  init(_ value: Value) { self.value = value }
}
