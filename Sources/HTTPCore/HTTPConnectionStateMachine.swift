// The life of one HTTP/1.1 connection as a pure state machine: events in, actions out.
//
// The I/O layer owns the socket and only carries out the returned actions; this type owns the parser, the
// serializer, and the policy: one request in flight at a time (later pipelined requests stay buffered and are
// answered in order), reads paused while a request is in flight, keep-alive rules, closing after a parse error, and
// draining for shutdown. Time is passed in with each event that needs it, so tests need no clock.
//
// Each request is given its id (HTTPRequestID) and shown to the screen as soon as its header section is parsed,
// before any byte of its body is looked at or `100 Continue` is sent. A request the screen refuses is answered with
// the screen's response; if it has a body, that body is never read and the connection closes after the response
// (the I/O layer closes lingeringly); a bodiless one leaves the connection open as usual.

/// The state of one server-side HTTP/1.1 connection.
///
/// ```swift
/// var machine = HTTPConnectionStateMachine()
/// switch machine.bytesReceived(bytes) {
/// case .dispatch(let request): ...  // pause reading, hand `request` to the application
/// case .write(let bytes, let close): ...  // write, then call writeCompleted()
/// default: ...
/// }
/// ```
public struct HTTPConnectionStateMachine: Sendable {
  /// What the I/O layer must do next.
  public enum Action: Sendable, Equatable {
    /// Nothing to do now (keep the current reading state).
    case none
    /// Make sure reading is on: the connection is idle and waits for bytes.
    case readMore
    /// Pause reading and hand the request to the application; answer with ``responseReady(_:now:)``.
    case dispatch(HTTPRequest)
    /// Write these bytes (an interim `100 Continue`) and keep reading; no completion event is needed.
    case sendContinue([UInt8])
    /// Pause reading and write these bytes; when all are written, call ``writeCompleted()``. If `thenClose` is true
    /// the connection will close after them.
    case write([UInt8], thenClose: Bool)
    /// ``write(_:thenClose:)`` for a response with a large body: its head, then its body (written from its own
    /// array, not copied behind the head).
    case writeHeadAndBody([UInt8], body: [UInt8], thenClose: Bool)
    /// Close the connection now.
    case close
  }

  private enum State: Sendable {
    /// Waiting for (more of) a request.
    case idle
    /// A request is with the application.
    case awaitingResponse(method: HTTPMethod, version: HTTPVersion, keepAlive: Bool)
    /// A response is being written.
    case writing(thenClose: Bool)
    case closed
  }

  /// Looks at a request's head before its body is read; a non-`nil` response refuses the request.
  public typealias Screen = @Sendable (HTTPRequestHead) -> HTTPResponse?

  private var parser: HTTPRequestParser
  private var serializer = HTTPResponseSerializer()
  private let screen: Screen?
  private var state: State = .idle
  private var draining = false
  private var peerClosed = false
  private var answered = 0

  /// The head of the request being read or answered, its `X-Request-Id` field set to ``currentRequestID``; `nil`
  /// before its header section has been parsed.
  public private(set) var currentHead: HTTPRequestHead?
  /// The id of the request being read or answered (see ``HTTPRequestID``), which every response to it carries in
  /// `X-Request-Id`; also set for an error answered before a head was parsed. `nil` between requests.
  public private(set) var currentRequestID: String?

  /// Creates the state of a new connection.
  /// - Parameters:
  ///   - limits: The parser limits.
  ///   - screen: Called with each request's head (its id included) once its header section is parsed, before any
  ///     byte of its body is read and before `100 Continue` is sent. A non-`nil` response is sent instead of
  ///     dispatching the request; if the request has a body, the body is never read and the connection closes after
  ///     the response. `nil` (the default) dispatches every well-formed request.
  public init(limits: HTTPParserLimits = HTTPParserLimits(), screen: Screen? = nil) {
    parser = HTTPRequestParser(limits: limits, assignsRequestIDs: true)
    self.screen = screen
  }

  /// Whether the connection has been closed (every later event returns ``Action/none``).
  public var isClosed: Bool {
    if case .closed = state { return true }
    return false
  }

  /// Whether no request is in flight or being written.
  public var isIdle: Bool {
    if case .idle = state { return true }
    return false
  }

  /// What the connection waits to read, for its time-outs (see ``HTTPReadDeadline``). A new connection is in
  /// ``HTTPReadPhase/head`` from the start; a kept-alive one is ``HTTPReadPhase/idle`` until its next request's first
  /// byte.
  public var readPhase: HTTPReadPhase {
    guard case .idle = state else { return .none }
    if parser.isReadingBody { return .body }
    if parser.isIdle && answered > 0 { return .idle }
    return .head
  }

  /// The number of responses written so far.
  public var answeredCount: Int { answered }

  /// The time-out of the current ``readPhase`` passed: a partial request is answered with 408 and the connection
  /// closes after it; an idle connection closes at once.
  /// - Parameter now: Seconds since the Unix epoch, for the `Date` of the response.
  public mutating func readTimedOut(now: Int) -> Action {
    switch readPhase {
    case .none:
      return .none
    case .idle:
      state = .closed
      return .close
    case .head, .body:
      var response = HTTPResponse.problem(
        status: .requestTimeout, detail: "the request did not arrive in time")
      response.headers.add(name: "Connection", value: "close")
      let bytes = serializer.serialize(
        response, requestMethod: .get, requestVersion: .http1_1, keepAlive: false, now: now,
        requestID: requestIDForError())
      state = .writing(thenClose: true)
      return .write(bytes, thenClose: true)
    }
  }

  /// Bytes arrived from the peer.
  /// - Parameter now: Seconds since the Unix epoch, for the `Date` of an error response.
  public mutating func bytesReceived(_ bytes: UnsafeRawBufferPointer, now: Int) -> Action {
    guard !isClosed else { return .none }
    parser.feed(bytes)
    return isIdle ? process(now: now) : .none
  }

  /// Whether the next bytes may be read straight into the body of the request being read (a large one, with a
  /// declared length) with ``bodyReceived(now:_:)``, instead of being passed to ``bytesReceived(_:now:)``.
  public var receivesBodyInPlace: Bool { !isClosed && parser.receivesBodyInPlace }

  /// Bytes of a large body arrive in place: `read` is given the room left in the body and returns how many bytes it
  /// wrote there (see ``receivesBodyInPlace``); nothing happens when it wrote none.
  /// - Parameter now: Seconds since the Unix epoch, for the `Date` of an error response.
  public mutating func bodyReceived(now: Int, _ read: (UnsafeMutableRawBufferPointer) -> Int) -> Action {
    guard !isClosed else { return .none }
    var written = 0
    parser.receiveBody { space in
      written = read(space)
      return written
    }
    return written > 0 && isIdle ? process(now: now) : .none
  }

  /// Bytes arrived from the peer.
  public mutating func bytesReceived(_ bytes: [UInt8], now: Int) -> Action {
    bytes.withUnsafeBytes { bytesReceived($0, now: now) }
  }

  /// The peer closed its sending side (read returned 0). Buffered complete requests are still answered; then the
  /// connection closes.
  public mutating func peerClosedInput(now: Int) -> Action {
    guard !isClosed else { return .none }
    peerClosed = true
    return isIdle ? process(now: now) : .none
  }

  /// Bodies of at least this many bytes are written apart from their head
  /// (``Action/writeHeadAndBody(_:body:thenClose:)``).
  static let separateBodyBytes = 64 << 10

  /// The application answered the request in flight. Ignored unless a request is in flight.
  public mutating func responseReady(_ response: HTTPResponse, now: Int) -> Action {
    guard case .awaitingResponse(let method, let version, let requestKeepAlive) = state else { return .none }
    let keepAlive = requestKeepAlive && !response.closesConnection && !draining && !peerClosed
    if response.body.count >= Self.separateBodyBytes
      && HTTPResponseSerializer.writesBody(response, requestMethod: method)
    {
      var head: [UInt8] = []
      serializer.serialize(
        response, requestMethod: method, requestVersion: version, keepAlive: keepAlive, now: now,
        requestID: currentRequestID, appendingBody: false, into: &head)
      state = .writing(thenClose: !keepAlive)
      return .writeHeadAndBody(head, body: response.body, thenClose: !keepAlive)
    }
    let bytes = serializer.serialize(
      response, requestMethod: method, requestVersion: version, keepAlive: keepAlive, now: now,
      requestID: currentRequestID)
    state = .writing(thenClose: !keepAlive)
    return .write(bytes, thenClose: !keepAlive)
  }

  /// Every byte of the last ``Action/write(_:thenClose:)`` (or ``Action/writeHeadAndBody(_:body:thenClose:)``) has
  /// been written.
  public mutating func writeCompleted(now: Int) -> Action {
    guard case .writing(let thenClose) = state else { return .none }
    answered += 1
    currentHead = nil
    currentRequestID = nil
    if thenClose {
      state = .closed
      return .close
    }
    state = .idle
    return process(now: now)
  }

  /// The server is shutting down: close now if idle, otherwise after the response to the request in flight or
  /// partly received (which is sent with `Connection: close`).
  public mutating func startDraining() -> Action {
    guard !isClosed else { return .none }
    draining = true
    if isIdle && parser.isIdle {
      state = .closed
      return .close
    }
    return .none
  }

  /// The socket failed or was reset; nothing more can be sent.
  public mutating func errorCaught() -> Action {
    guard !isClosed else { return .none }
    state = .closed
    return .close
  }

  /// Looks for the next request while idle.
  private mutating func process(now: Int) -> Action {
    do {
      if currentHead == nil, let head = try parser.nextHead() {
        // The parser has given the head its X-Request-Id.
        currentRequestID = parser.currentRequestID
        currentHead = head
        if let screen, let response = screen(head) { return refuse(head, with: response, now: now) }
      }
      if let request = try parser.next() {
        state = .awaitingResponse(method: request.method, version: request.version, keepAlive: request.keepAlive)
        return .dispatch(request)
      }
    } catch {
      let bytes = serializer.serialize(
        error.response, requestMethod: .get, requestVersion: .http1_1, keepAlive: false, now: now,
        requestID: requestIDForError())
      state = .writing(thenClose: true)
      return .write(bytes, thenClose: true)
    }
    if peerClosed || (draining && parser.isIdle) {
      state = .closed
      return .close
    }
    if parser.takeContinueRequest() { return .sendContinue(HTTPResponseSerializer.continueResponse) }
    return .readMore
  }

  /// Answers a request its screen refused. A bodiless request is consumed and the connection may stay open; the body
  /// of any other is left unread, so the connection closes after the response.
  private mutating func refuse(_ head: HTTPRequestHead, with response: HTTPResponse, now: Int) -> Action {
    _ = parser.takeContinueRequest()
    let hasBody = parser.isReadingBody
    // A bodiless request is complete: this returns it at once and cannot fail.
    if !hasBody { _ = try? parser.next() }
    state = .awaitingResponse(method: head.method, version: head.version, keepAlive: !hasBody && head.keepAlive)
    return responseReady(response, now: now)
  }

  /// The current request's id, or one made up for an error answered before any head was parsed.
  private mutating func requestIDForError() -> String {
    let id = currentRequestID ?? HTTPRequestID.generate()
    currentRequestID = id
    return id
  }
}
