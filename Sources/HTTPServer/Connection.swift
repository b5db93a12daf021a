// One accepted connection: a socket (with its TLS session on an HTTPS server), the event loop that carries it, and
// an HTTPConnectionStateMachine.
//
// Every mutable property is touched only on the loop's thread; that confinement is why the class is
// `@unchecked Sendable`. The policy (one request in flight, pipelining, keep-alive, closing after errors, which read
// phase is timed) lives in the state machine; this type only carries out its actions: pausing and resuming reading,
// writing bytes (watching for writability on EAGAIN), keeping the time-out deadlines, decoding and encoding gzip
// bodies, calling the responder and closing. It leaves its loop before its descriptor closes.
//
// On an HTTPS server the first byte decides: a TLS handshake record (0x16) starts a non-blocking handshake on the
// connection's loop (so a slow handshake blocks nothing); anything else is plaintext sent to the TLS port, answered
// with a plaintext 400 and closed. After a response with `Connection: close` the connection closes lingeringly: it
// shuts down its sending side and discards input for a moment, so that unread request bytes do not turn the close
// into a reset that would destroy the response before the client reads it.

import HTTPCore
import Locking
import Logging
import Synchronization
import TLS

final class Connection: @unchecked Sendable {
  /// What every connection of a server shares.
  struct Settings: Sendable {
    var limits: HTTPParserLimits
    var timeouts: HTTPTimeouts
    var compression: HTTPCompression
    var tls: TLSContext?
    var logger: Logger?
  }

  private enum TLSPhase {
    /// Plain HTTP.
    case none
    /// Waiting for the first byte, to tell a TLS client from a plaintext one.
    case sniffing
    case handshaking
    case established
  }

  let id: Int
  /// The loop that serves the connection.
  let loop: EventLoop
  /// Names this connection to its loop; set when it starts.
  private var token: UInt64 = 0
  private var started = false
  private let socket: Socket
  private let responder: any HTTPResponder
  private let settings: Settings
  private let onClose: @Sendable (Int) -> Void

  private var machine: HTTPConnectionStateMachine
  private var readDeadline: HTTPReadDeadline
  /// The readiness the loop watches for this socket (empty: not watched).
  private var interest: SysEvents = []
  /// When the timer is due, on the monotonic clock; `nil` when it is not armed. It may be due before the deadline it
  /// watches (which is then rechecked and the timer re-armed), never after, so that it is re-armed only when a
  /// deadline comes earlier than the armed one, not at every change of phase.
  private var armedDeadline: UInt64?
  /// Reading is paused (a request is in flight or its response is being written). The socket stops being watched
  /// for reading lazily, only when it turns readable while reading is paused, so a request answered at once costs
  /// no change of interest.
  private var readPaused = false
  /// The loop does not watch the socket for reading.
  private var readSuspended = false
  /// The loop watches the socket for writing.
  private var writeArmed = false
  private var closing = false

  private var tlsPhase: TLSPhase
  private var tlsSession: TLSSession?
  /// A TLS read needs the socket to be writable first (a rare protocol message in the middle of reading).
  private var readWantsWrite = false

  /// When a response the client does not take is given up, on the monotonic clock; `nil` when nothing waits.
  private var sendDeadline: UInt64?
  /// The last write closes the connection: do it lingeringly.
  private var lingerAfterWrite = false
  /// The sending side is shut down; input is read and discarded until the peer closes or the linger time passes.
  private var lingering = false
  private static let lingerNanoseconds: UInt64 = 2_000_000_000

  /// Bytes not yet written: `outbound` from `outboundOffset` on, then `outboundTail` (a large body, written from its
  /// own array rather than copied behind its head).
  private var outbound: [UInt8] = []
  private var outboundOffset = 0
  private var outboundTail: [UInt8] = []
  /// Whether bytes wait to be written.
  private var hasOutbound: Bool { outboundOffset < outbound.count || !outboundTail.isEmpty }
  /// Whether the state machine waits for `writeCompleted` once `outbound` drains.
  private var awaitingWriteCompletion = false
  /// Bytes written outside the state machine (the plaintext refusal); the connection closes after them.
  private var closeAfterFlush = false
  /// Identifies the request in flight, so a late or repeated reply cannot answer a later request.
  private var requestNumber = 0
  /// Hands a reply given during the responder's call back to the loop's thread without a hop through
  /// ``EventLoop/execute(_:)``.
  private let replySlot = Locked(ReplySlot.idle)
  /// How many synchronous replies are being processed inside one another (pipelined requests answered at once).
  private var replyDepth = 0
  /// Past this depth of synchronous replies, replies go through ``EventLoop/execute(_:)``, so pipelining cannot grow
  /// the stack.
  private static let maxReplyDepth = 4

  private enum ReplySlot: Sendable {
    case idle
    /// The responder is being called for this request number.
    case calling(Int)
    /// The responder replied during its call.
    case replied(HTTPResponse, Int)
  }
  /// Whether the request in flight accepts a gzipped response.
  private var acceptsGzip = false
  /// Whether requests are logged (the logger's level is `info` or finer).
  private let logsAccess: Bool
  /// The request in flight, for its access log line (only while ``logsAccess``).
  private var inFlight: InFlight?

  private struct InFlight {
    var method: String
    var path: String
    var requestID: String
    var started: UInt64
  }

  /// Scratch space for reads: the loop's, shared by its connections (each read's bytes are consumed before the
  /// loop's thread does anything else).
  private var readBuffer: UnsafeMutableRawBufferPointer { loop.readBuffer }
  /// How much one readable event may read before yielding the thread to other connections.
  private static let maxBytesPerReadEvent = 1 << 20

  init(
    id: Int, socket: Socket, responder: any HTTPResponder, settings: Settings, loop: EventLoop,
    onClose: @escaping @Sendable (Int) -> Void
  ) {
    self.id = id
    self.socket = socket
    self.responder = responder
    self.settings = settings
    self.onClose = onClose
    self.loop = loop
    self.machine = HTTPConnectionStateMachine(limits: settings.limits) { [responder] head in responder.screen(head) }
    self.readDeadline = HTTPReadDeadline(timeouts: settings.timeouts)
    self.tlsPhase = settings.tls == nil ? .none : .sniffing
    self.logsAccess = settings.logger.map { $0.logLevel <= .info } ?? false
  }

  /// Starts reading. Call once, from any thread.
  func start() {
    loop.execute { self.startOnLoop() }
  }

  /// Closes the connection once idle; a request in flight or partly received is answered (with
  /// `Connection: close`) first. On the loop's thread.
  func drainOnLoop() {
    if tlsPhase == .sniffing || tlsPhase == .handshaking {
      close()
    } else {
      perform(machine.startDraining())
    }
  }

  /// Closes the connection now, whatever it is doing (the drain deadline has passed).
  func forceClose() {
    loop.execute { self.close() }
  }

  private static var monotonicNow: UInt64 { EventLoop.now }

  private func startOnLoop() {
    // A drain may have closed the connection before it started.
    guard !closing, !started else { return }
    started = true
    token = loop.register(self)
    updateInterest()
    updateTimer()
  }

  // MARK: - Events from the loop

  /// The socket is ready for what the connection watches (or failed).
  func handle(_ events: SysEvents) {
    if !events.isDisjoint(with: [.readable, .failure]) && interest.contains(.readable) { readable() }
    if !closing && !events.isDisjoint(with: [.writable, .failure]) && interest.contains(.writable) { writable() }
  }

  /// When the timer is due, if armed.
  var timerDeadline: UInt64? { closing ? nil : armedDeadline }

  /// Runs the timer if it is due at `now`.
  func fireTimerIfDue(now: UInt64) {
    guard !closing, let armedDeadline, armedDeadline <= now else { return }
    timerFired()
  }

  /// Tells the loop what to watch, when that changed.
  private func updateInterest() {
    guard started, !closing else { return }
    var wanted: SysEvents = []
    if !readSuspended { wanted.insert(.readable) }
    if writeArmed { wanted.insert(.writable) }
    guard wanted != interest else { return }
    let old = interest
    interest = wanted
    socket.withUnsafeDescriptor { loop.setInterest(wanted, from: old, descriptor: $0, token: token) }
  }

  // MARK: - Actions

  /// Carries out an action; `isReply` says it answers ``HTTPConnectionStateMachine/responseReady(_:now:)`` (a write
  /// not logged as a rejection).
  private func perform(_ action: HTTPConnectionStateMachine.Action, isReply: Bool = false) {
    switch action {
    case .none:
      break
    case .readMore:
      resumeReading()
    case .dispatch(let request):
      pauseReading()
      dispatch(request)
    case .sendContinue(let bytes):
      enqueue(bytes)
      flush()
    case .write(let bytes, let thenClose):
      if logsAccess && !isReply { logRejection(bytes) }
      write(bytes, thenClose: thenClose)
    case .writeHeadAndBody(let head, let body, let thenClose):
      write(head, then: body, thenClose: thenClose)
    case .close:
      if lingerAfterWrite { lingeringClose() } else { close() }
    }
    updateTimer()
  }

  /// Writes `bytes` (and then `body`, from its own array), then tells the state machine
  /// (``HTTPConnectionStateMachine/writeCompleted(now:)``).
  private func write(_ bytes: [UInt8], then body: [UInt8]? = nil, thenClose: Bool) {
    pauseReading()
    lingerAfterWrite = thenClose
    enqueue(bytes)
    if let body { enqueue(body) }
    awaitingWriteCompletion = true
    flush()
  }

  private func dispatch(_ received: HTTPRequest) {
    var request = received
    requestNumber += 1
    let number = requestNumber
    if logsAccess {
      // The state machine has given every request a valid id.
      let requestID = machine.currentRequestID ?? "-"
      inFlight = InFlight(
        method: request.method.rawValue, path: String(request.path.prefix(1024)), requestID: requestID,
        started: Connection.monotonicNow)
    }
    acceptsGzip = ContentCoding.acceptsGzip(request)
    if let problem = ContentCoding.decode(&request, limit: settings.limits.maxBodyBytes) {
      // Answered like any late reply, from the loop's task list, so pipelined failures cannot recurse.
      loop.execute { self.responseArrived(problem, number: number) }
      return
    }
    // A reply given while `respond` runs (a fixed or cheap route) is taken from the slot when it returns and
    // processed at once; a later one (from a worker) comes through the loop's task list.
    let inline = replyDepth < Connection.maxReplyDepth
    if inline { replySlot.withLock { $0 = .calling(number) } }
    responder.respond(to: request) { [self] response in
      let taken =
        inline
        && replySlot.withLock { slot -> Bool in
          guard case .calling(number) = slot else { return false }
          slot = .replied(response, number)
          return true
        }
      if !taken { loop.execute { self.responseArrived(response, number: number) } }
    }
    guard inline else { return }
    let replied = replySlot.withLock { slot -> (HTTPResponse, Int)? in
      defer { slot = .idle }
      guard case .replied(let response, let number) = slot else { return nil }
      return (response, number)
    }
    if let replied {
      replyDepth += 1
      responseArrived(replied.0, number: replied.1)
      replyDepth -= 1
    }
  }

  private func responseArrived(_ received: HTTPResponse, number: Int) {
    guard !closing, number == requestNumber else { return }
    var response = received
    ContentCoding.encode(&response, acceptsGzip: acceptsGzip, settings: settings.compression)
    if let request = inFlight, let logger = settings.logger {
      inFlight = nil
      let micros = (Connection.monotonicNow &- request.started) / 1000
      logger.info(
        "\(request.method) \(request.path) \(response.status.code)",
        metadata: [
          "method": "\(request.method)", "path": "\(request.path)", "status": "\(response.status.code)",
          "bytes": "\(response.body.count)", "duration_ms": "\(Double(micros) / 1000)",
          "request_id": "\(request.requestID)", "connection": "\(id)",
        ])
    }
    perform(machine.responseReady(response, now: sys_epochSeconds()), isReply: true)
  }

  /// Logs a response the state machine wrote without a request in flight: a parse error, a read time-out, or a
  /// request refused by the responder's screen.
  private func logRejection(_ bytes: [UInt8]) {
    let status = bytes.count > 12 ? String(decoding: bytes[9..<12], as: UTF8.self) : "?"
    let head = machine.currentHead
    settings.logger?.info(
      "rejected \(status)",
      metadata: [
        "status": "\(status)", "bytes_written": "\(bytes.count)", "connection": "\(id)",
        "method": "\(head?.method.rawValue ?? "-")", "path": "\(head.map { String($0.path.prefix(1024)) } ?? "-")",
        "request_id": "\(machine.currentRequestID ?? "-")",
      ])
  }

  // MARK: - Time-outs

  /// Re-arms the timer when the read phase changed.
  private func updateTimer() {
    guard !closing, !lingering else { return }
    let phase = tlsPhase == .sniffing || tlsPhase == .handshaking ? HTTPReadPhase.head : machine.readPhase
    if readDeadline.update(phase: phase, now: Connection.monotonicNow) { scheduleTimer() }
  }

  /// Makes sure the timer fires no later than the earlier of the read deadline and the send deadline. A timer armed
  /// for an earlier moment is left alone: when it fires, ``timerFired()`` finds nothing expired and re-arms it.
  private func scheduleTimer() {
    guard !closing, !lingering else { return }
    let earliest: UInt64?
    switch (readDeadline.deadline, sendDeadline) {
    case (let read?, let send?): earliest = min(read, send)
    case (let read?, nil): earliest = read
    case (nil, let send?): earliest = send
    case (nil, nil): earliest = nil
    }
    guard let earliest else { return }
    if let armedDeadline, armedDeadline <= earliest { return }
    armedDeadline = earliest
    loop.noteDeadline(earliest)
  }

  private func timerFired() {
    guard !closing else { return }
    armedDeadline = nil
    if lingering {
      close()
      return
    }
    let now = Connection.monotonicNow
    if let sendDeadline, now >= sendDeadline {
      // The client takes none of the response: nothing more can be said to it.
      if logsAccess { settings.logger?.info("send time-out", metadata: ["connection": "\(id)"]) }
      return close()
    }
    guard readDeadline.hasExpired(now: now) else {
      // Fired early (for a deadline since moved later): wait for the one in force.
      return scheduleTimer()
    }
    if tlsPhase == .sniffing || tlsPhase == .handshaking {
      close()
      return
    }
    if logsAccess {
      settings.logger?.info(
        "read time-out", metadata: ["phase": "\(machine.readPhase)", "connection": "\(id)"])
    }
    perform(machine.readTimedOut(now: sys_epochSeconds()))
  }

  // MARK: - Reading

  private enum TransportResult {
    case bytes(Int)
    case wouldBlock
    case endOfInput
    case failed
  }

  private func transportRead(into buffer: UnsafeMutableRawBufferPointer) -> TransportResult {
    if let tlsSession {
      switch tlsSession.read(into: buffer) {
      case .done(let count): return .bytes(count)
      case .wantRead: return .wouldBlock
      case .wantWrite:
        readWantsWrite = true
        armWriteSource()
        return .wouldBlock
      case .closed: return .endOfInput
      case .failed: return .failed
      }
    }
    do {
      switch try socket.read(into: buffer) {
      case .wouldBlock: return .wouldBlock
      case .processed(0): return .endOfInput
      case .processed(let count): return .bytes(count)
      }
    } catch {
      return .failed
    }
  }

  private func readable() {
    if closing { return }
    if lingering { return discardInput() }
    switch tlsPhase {
    case .sniffing: return sniff()
    case .handshaking: return continueHandshake()
    case .none, .established: break
    }
    if readPaused {
      // Bytes arrived while a request is in flight: stop watching for them until the response is written.
      return suspendReadSource()
    }
    var total = 0
    while !closing && !readPaused && total < Connection.maxBytesPerReadEvent {
      // A large body is read straight into place; anything else through the loop's read buffer.
      var result = TransportResult.wouldBlock
      var action = HTTPConnectionStateMachine.Action.none
      var room = readBuffer.count
      if machine.receivesBodyInPlace {
        action = machine.bodyReceived(now: sys_epochSeconds()) { space in
          room = space.count
          result = transportRead(into: space)
          if case .bytes(let count) = result { return count }
          return 0
        }
      } else {
        result = transportRead(into: readBuffer)
        if case .bytes(let count) = result {
          action = machine.bytesReceived(
            UnsafeRawBufferPointer(rebasing: readBuffer[0..<count]), now: sys_epochSeconds())
        }
      }
      switch result {
      case .wouldBlock:
        return
      case .failed:
        perform(machine.errorCaught())
        return
      case .endOfInput:
        // The socket would stay readable for ever, so stop watching it for reading for good.
        pauseReading()
        suspendReadSource()
        perform(machine.peerClosedInput(now: sys_epochSeconds()))
        return
      case .bytes(let count):
        total += count
        perform(action)
        // A short plaintext read emptied the socket. TLS reads return one record at a time: keep going while
        // OpenSSL holds more, else wait for the socket (readiness is level-triggered, so nothing is missed).
        if let tlsSession {
          if !tlsSession.hasBufferedInput { return }
        } else if count < room {
          return
        }
      }
    }
  }

  private func pauseReading() {
    readPaused = true
  }

  private func suspendReadSource() {
    guard !readSuspended else { return }
    readSuspended = true
    updateInterest()
  }

  private func resumeReading() {
    guard readPaused, !closing else { return }
    readPaused = false
    if readSuspended {
      readSuspended = false
      updateInterest()
    }
    // Bytes OpenSSL has already decrypted do not make the socket readable again.
    if let tlsSession, tlsSession.hasBufferedInput {
      loop.execute { [self] in readable() }
    }
  }

  // MARK: - TLS

  /// Looks at the first byte: a TLS handshake record starts the handshake; anything else is refused in plaintext.
  private func sniff() {
    let result: IOResult<Int>
    do {
      result = try socket.peek(into: UnsafeMutableRawBufferPointer(rebasing: readBuffer[0..<1]))
    } catch {
      return close()
    }
    switch result {
    case .wouldBlock:
      return
    case .processed(0):
      return close()
    case .processed:
      break
    }
    guard readBuffer[0] == Connection.tlsHandshakeRecord, let context = settings.tls else {
      return refusePlaintext()
    }
    do {
      tlsSession = try socket.withUnsafeDescriptor { (fd) throws(TLSError) in
        try TLSSession(context: context, descriptor: fd)
      }
    } catch {
      settings.logger?.warning("cannot start a TLS session: \(error)")
      return close()
    }
    tlsPhase = .handshaking
    continueHandshake()
  }

  private static let tlsHandshakeRecord: UInt8 = 0x16

  private func continueHandshake() {
    guard let tlsSession else { return close() }
    switch tlsSession.handshake() {
    case .done:
      tlsPhase = .established
      disarmWriteSource()
      updateTimer()
      readable()
    case .wantRead:
      disarmWriteSource()
    case .wantWrite:
      armWriteSource()
    case .closed, .failed:
      close()
    }
  }

  /// Answers plaintext HTTP sent to the TLS port with a plaintext 400, then closes.
  private func refusePlaintext() {
    tlsPhase = .none
    pauseReading()
    var serializer = HTTPResponseSerializer()
    var response = HTTPResponse.problem(
      status: .badRequest, detail: "this port speaks HTTPS: plain HTTP was sent to a TLS port")
    response.headers.add(name: "Connection", value: "close")
    enqueue(
      serializer.serialize(
        response, requestMethod: .get, requestVersion: .http1_1, keepAlive: false, now: sys_epochSeconds()))
    closeAfterFlush = true
    flush()
  }

  // MARK: - Writing

  private func enqueue(_ bytes: [UInt8]) {
    if !hasOutbound {
      outbound = bytes
      outboundOffset = 0
    } else if outboundTail.isEmpty {
      outboundTail = bytes
    } else {
      outboundTail.append(contentsOf: bytes)
    }
  }

  private func transportSend(_ bytes: UnsafeRawBufferPointer) -> TransportResult {
    if let tlsSession {
      switch tlsSession.write(bytes) {
      case .done(let count): return .bytes(count)
      case .wantWrite: return .wouldBlock
      // Renegotiation is off, so a write never waits for the peer's bytes; treat it as broken.
      case .wantRead, .closed, .failed: return .failed
      }
    }
    do {
      switch try socket.send(bytes) {
      case .processed(let count): return .bytes(count)
      case .wouldBlock: return .wouldBlock
      }
    } catch {
      return .failed
    }
  }

  private func flush() {
    var progressed = false
    while hasOutbound {
      if outboundOffset == outbound.count {
        outbound = []
        swap(&outbound, &outboundTail)
        outboundOffset = 0
      }
      let result = outbound.withUnsafeBytes { all in
        transportSend(UnsafeRawBufferPointer(rebasing: all[outboundOffset...]))
      }
      switch result {
      case .bytes(let count):
        outboundOffset += count
        progressed = true
      case .wouldBlock:
        // The send time-out counts from the last progress.
        if progressed || sendDeadline == nil {
          let (deadline, overflow) = Connection.monotonicNow.addingReportingOverflow(settings.timeouts.sendNanoseconds)
          sendDeadline = overflow ? .max : deadline
          scheduleTimer()
        }
        armWriteSource()
        return
      case .endOfInput, .failed:
        if closeAfterFlush { return close() }
        perform(machine.errorCaught())
        return
      }
    }
    outbound = []
    outboundOffset = 0
    if sendDeadline != nil {
      sendDeadline = nil
      scheduleTimer()
    }
    if !readWantsWrite { disarmWriteSource() }
    if closeAfterFlush {
      lingeringClose()
    } else if awaitingWriteCompletion {
      awaitingWriteCompletion = false
      perform(machine.writeCompleted(now: sys_epochSeconds()))
    }
  }

  private func writable() {
    if closing { return }
    if tlsPhase == .handshaking { return continueHandshake() }
    if readWantsWrite {
      readWantsWrite = false
      if !hasOutbound { disarmWriteSource() }
      readable()
    }
    if hasOutbound { flush() }
  }

  private func armWriteSource() {
    guard !writeArmed else { return }
    writeArmed = true
    updateInterest()
  }

  private func disarmWriteSource() {
    guard writeArmed else { return }
    writeArmed = false
    updateInterest()
  }

  // MARK: - Closing

  /// Shuts down the sending side, then reads and discards input until the peer closes or the linger time passes.
  private func lingeringClose() {
    guard !closing, !lingering else { return }
    lingering = true
    tlsSession?.shutdown()
    socket.shutdownOutput()
    let lingerDeadline = Connection.monotonicNow + Connection.lingerNanoseconds
    armedDeadline = lingerDeadline
    loop.noteDeadline(lingerDeadline)
    if readSuspended {
      resumeReading()
    } else {
      readPaused = false
      discardInput()
    }
  }

  private func discardInput() {
    var total = 0
    while !closing && total < Connection.maxBytesPerReadEvent {
      let result: IOResult<Int>
      do {
        result = try socket.read(into: readBuffer)
      } catch {
        return close()
      }
      switch result {
      case .wouldBlock: return
      case .processed(0): return close()
      case .processed(let count): total += count
      }
    }
  }

  private func close() {
    guard !closing else { return }
    closing = true
    // Closing the descriptor also takes it out of the loop's epoll set.
    if started { loop.unregister(token) }
    interest = []
    armedDeadline = nil
    tlsSession = nil
    socket.close()
    outbound = []
    outboundTail = []
    onClose(id)
  }
}
