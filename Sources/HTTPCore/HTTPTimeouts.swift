// Read time-outs as pure values: which phase a connection is reading in, and when that phase must end.

/// How long a connection may take to send what the server waits for. Each is measured from the start of its phase.
public struct HTTPTimeouts: Hashable, Sendable {
  /// From the connection's start (TLS handshake included) or a request's first byte to the end of its header
  /// section; past it the server answers 408 and closes. Default 10 s.
  public var header: Duration
  /// From the end of the header section to the end of the body; past it the server answers 408 and closes.
  /// Default 30 s.
  public var body: Duration
  /// How long a keep-alive connection may wait for the first byte of its next request before it is closed
  /// (without a response). Default 30 s.
  public var idle: Duration
  /// How long a response may wait for the client to take any more of its bytes (a client that does not read);
  /// past it the connection is closed. Default 30 s.
  public var send: Duration

  /// Creates time-outs; every argument defaults to the documented default.
  public init(
    header: Duration = .seconds(10), body: Duration = .seconds(30), idle: Duration = .seconds(30),
    send: Duration = .seconds(30)
  ) {
    self.header = header
    self.body = body
    self.idle = idle
    self.send = send
  }

  /// ``send`` in nanoseconds.
  public var sendNanoseconds: UInt64 { Self.nanoseconds(send) }

  /// The time-out of `phase` in nanoseconds, or `nil` when the phase has none.
  public func nanoseconds(for phase: HTTPReadPhase) -> UInt64? {
    let duration: Duration
    switch phase {
    case .none: return nil
    case .idle: duration = idle
    case .head: duration = header
    case .body: duration = body
    }
    return Self.nanoseconds(duration)
  }

  private static func nanoseconds(_ duration: Duration) -> UInt64 {
    let (seconds, attoseconds) = duration.components
    guard seconds >= 0 else { return 0 }
    let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
    return overflow ? UInt64.max : whole &+ UInt64(max(0, attoseconds) / 1_000_000_000)
  }
}

/// What a connection is waiting to read, for its time-outs.
public enum HTTPReadPhase: Hashable, Sendable {
  /// Nothing is awaited from the peer: a request is with the application or its response is being written.
  case none
  /// A keep-alive connection waits for the next request.
  case idle
  /// The header section of a request is arriving (or, on a new connection, has not started yet).
  case head
  /// The body of a request is arriving.
  case body
}

/// The deadline of the current read phase, on a monotonic clock the caller supplies (nanoseconds).
///
/// Call ``update(phase:now:)`` after every event; when it returns `true`, re-arm the timer for ``deadline`` (or
/// cancel it when `nil`). A phase keeps its deadline while it lasts, so a client cannot extend it by trickling bytes.
///
/// ```swift
/// var timer = HTTPReadDeadline(timeouts: HTTPTimeouts())
/// if timer.update(phase: machine.readPhase, now: clock()) { rearm(timer.deadline) }
/// ```
public struct HTTPReadDeadline: Sendable {
  /// The time-outs in force.
  public let timeouts: HTTPTimeouts
  /// The phase the deadline belongs to.
  public private(set) var phase: HTTPReadPhase = .none
  /// When the current phase times out, or `nil` if it cannot.
  public private(set) var deadline: UInt64?

  /// Creates a tracker in phase ``HTTPReadPhase/none``.
  public init(timeouts: HTTPTimeouts) {
    self.timeouts = timeouts
  }

  /// Records the current phase.
  /// - Returns: `true` if the phase changed, so the deadline did.
  public mutating func update(phase: HTTPReadPhase, now: UInt64) -> Bool {
    guard phase != self.phase else { return false }
    self.phase = phase
    deadline = timeouts.nanoseconds(for: phase).map { now.addingReportingOverflow($0).overflow ? .max : now + $0 }
    return true
  }

  /// Whether the current phase's deadline has passed at `now`.
  public func hasExpired(now: UInt64) -> Bool {
    guard let deadline else { return false }
    return now >= deadline
  }
}
