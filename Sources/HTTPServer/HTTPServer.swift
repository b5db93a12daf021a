// The listening side: binds, accepts on one queue, hands each connection its own serial queue, and shuts down
// gracefully.

import Dispatch
import HTTPCore
import Synchronization

/// An HTTP/1.1 server over non-blocking sockets and Dispatch.
///
/// Each connection has its own serial queue and answers one request at a time: pipelined requests are buffered and
/// answered in order, and the socket is not read while a request is with the responder. A malformed request gets
/// its status (400, 413, 431, 501, 505) as `application/problem+json` with `Connection: close`, then the connection
/// closes.
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
  private let acceptQueue = DispatchQueue(label: "adjoint.http.accept")
  private let stopped = DispatchGroup()
  private let state = Mutex(State())

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
  }

  /// The number of accepts tried per readable event of the listener, before yielding the accept queue.
  private static let acceptsPerEvent = 64

  /// Creates a server; nothing happens until ``start()``.
  /// - Parameters:
  ///   - configuration: Where to listen and which limits to enforce.
  ///   - responder: Answers the requests.
  public init(configuration: HTTPServerConfiguration, responder: any HTTPResponder) {
    self.configuration = configuration
    self.responder = responder
  }

  /// The bound port once started, else `nil`.
  public var port: Int? { state.withLock { $0.port } }

  /// The number of open connections.
  public var connectionCount: Int { state.withLock { $0.connections.count } }

  /// Binds, listens and starts accepting connections.
  /// - Returns: The bound port (the one the system picked when the configured port is 0).
  /// - Throws: ``HTTPServerError``: ``HTTPServerError/addressInUse`` if another socket holds the address,
  ///   ``HTTPServerError/invalidAddress`` for an unresolvable host or bad port, ``HTTPServerError/alreadyStarted``.
  @discardableResult
  public func start() throws(HTTPServerError) -> Int {
    try state.withLock { (state) throws(HTTPServerError) in
      guard case .idle = state.phase else { throw .alreadyStarted }
      state.phase = .starting
    }
    let listener: Socket
    let port: Int
    do throws(HTTPServerError) {
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
    }
    source.resume()
    return port
  }

  /// Stops accepting, closes idle connections, and lets requests in flight finish (their responses carry
  /// `Connection: close`). Returns at once; use ``wait()`` to block until every connection has closed.
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
    source?.value.cancel()
    for connection in connections { connection.drain() }
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
      let connection = state.withLock { state -> Connection? in
        guard case .running = state.phase else { return nil }
        let id = state.nextConnectionID
        state.nextConnectionID += 1
        let connection = Connection(
          id: id, socket: client, responder: responder, limits: configuration.limits,
          onClose: { [weak self] id in self?.connectionClosed(id) })
        state.connections[id] = connection
        return connection
      }
      if let connection {
        connection.start()
      } else {
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
}

/// Carries a value that is not `Sendable` to another closure on the same serial queue.
struct UncheckedSendableBox<Value>: @unchecked Sendable {
  let value: Value
  init(_ value: Value) { self.value = value }
}
