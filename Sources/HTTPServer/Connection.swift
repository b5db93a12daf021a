// One accepted connection: a socket, a serial queue, dispatch sources, and an HTTPConnectionStateMachine.
//
// Every mutable property is touched only on `queue`; that confinement is why the class is `@unchecked Sendable`.
// The policy (one request in flight, pipelining, keep-alive, closing after errors) lives in the state machine; this
// type only carries out its actions: pausing and resuming the read source, writing bytes (arming a write source on
// EAGAIN), calling the responder and closing. The descriptor is closed only after both dispatch sources have been
// cancelled and their cancel handlers have run, so the fd number cannot be reused under a live source.

import Dispatch
import HTTPCore

final class Connection: @unchecked Sendable {
  let id: Int
  private let queue: DispatchQueue
  private let socket: Socket
  private let responder: any HTTPResponder
  private let onClose: @Sendable (Int) -> Void

  private var machine: HTTPConnectionStateMachine
  private var readSource: (any DispatchSourceRead)?
  private var writeSource: (any DispatchSourceWrite)?
  private var readSuspended = false
  private var writeSuspended = false
  private var liveSources = 0
  private var closing = false

  /// Bytes not yet written, from `outboundOffset` on.
  private var outbound: [UInt8] = []
  private var outboundOffset = 0
  /// Whether the state machine waits for `writeCompleted` once `outbound` drains.
  private var awaitingWriteCompletion = false
  /// Identifies the request in flight, so a late or repeated reply cannot answer a later request.
  private var requestNumber = 0

  /// Scratch space for reads, owned by this connection.
  private let readBuffer: UnsafeMutableRawBufferPointer
  private static let readBufferSize = 16 * 1024
  /// How much one readable event may read before yielding the thread to other connections.
  private static let maxBytesPerReadEvent = 1 << 20

  init(
    id: Int, socket: Socket, responder: any HTTPResponder, limits: HTTPParserLimits,
    onClose: @escaping @Sendable (Int) -> Void
  ) {
    self.id = id
    self.socket = socket
    self.responder = responder
    self.onClose = onClose
    self.queue = DispatchQueue(label: "adjoint.http.connection")
    self.machine = HTTPConnectionStateMachine(limits: limits)
    self.readBuffer = .allocate(byteCount: Connection.readBufferSize, alignment: 16)
  }

  deinit {
    readBuffer.deallocate()
  }

  /// Starts reading. Call once, from any thread.
  func start() {
    queue.async { self.startOnQueue() }
  }

  /// Closes the connection once idle; a request in flight is answered (with `Connection: close`) first.
  func drain() {
    queue.async { self.perform(self.machine.startDraining()) }
  }

  private func startOnQueue() {
    let source = socket.withUnsafeDescriptor { DispatchSource.makeReadSource(fileDescriptor: $0, queue: queue) }
    source.setEventHandler { [self] in readable() }
    source.setCancelHandler { [self] in sourceCancelled() }
    readSource = source
    liveSources += 1
    source.resume()
  }

  // MARK: - Actions

  private func perform(_ action: HTTPConnectionStateMachine.Action) {
    switch action {
    case .none:
      break
    case .readMore:
      resumeReading()
    case .dispatch(let request):
      pauseReading()
      requestNumber += 1
      let number = requestNumber
      responder.respond(to: request) { [self] response in
        queue.async { self.responseArrived(response, number: number) }
      }
    case .sendContinue(let bytes):
      enqueue(bytes)
      flush()
    case .write(let bytes, _):
      pauseReading()
      enqueue(bytes)
      awaitingWriteCompletion = true
      flush()
    case .close:
      close()
    }
  }

  private func responseArrived(_ response: HTTPResponse, number: Int) {
    guard !closing, number == requestNumber else { return }
    perform(machine.responseReady(response, now: sys_epochSeconds()))
  }

  // MARK: - Reading

  private func readable() {
    var total = 0
    while !closing && !readSuspended && total < Connection.maxBytesPerReadEvent {
      let result: IOResult<Int>
      do {
        result = try socket.read(into: readBuffer)
      } catch {
        perform(machine.errorCaught())
        return
      }
      switch result {
      case .wouldBlock:
        return
      case .processed(0):
        // End of input: the source would fire forever, so stop reading for good.
        pauseReading()
        perform(machine.peerClosedInput(now: sys_epochSeconds()))
        return
      case .processed(let count):
        total += count
        let bytes = UnsafeRawBufferPointer(rebasing: readBuffer[0..<count])
        perform(machine.bytesReceived(bytes, now: sys_epochSeconds()))
        if count < readBuffer.count { return }
      }
    }
  }

  private func pauseReading() {
    guard !readSuspended, let readSource else { return }
    readSuspended = true
    readSource.suspend()
  }

  private func resumeReading() {
    guard readSuspended, let readSource, !closing else { return }
    readSuspended = false
    readSource.resume()
  }

  // MARK: - Writing

  private func enqueue(_ bytes: [UInt8]) {
    if outboundOffset == outbound.count {
      outbound = bytes
      outboundOffset = 0
    } else {
      outbound.append(contentsOf: bytes)
    }
  }

  private func flush() {
    while outboundOffset < outbound.count {
      let result: IOResult<Int>
      do {
        result = try outbound.withUnsafeBytes { all throws(SyscallError) in
          try socket.send(UnsafeRawBufferPointer(rebasing: all[outboundOffset...]))
        }
      } catch {
        perform(machine.errorCaught())
        return
      }
      switch result {
      case .processed(let count):
        outboundOffset += count
      case .wouldBlock:
        armWriteSource()
        return
      }
    }
    outbound = []
    outboundOffset = 0
    disarmWriteSource()
    if awaitingWriteCompletion {
      awaitingWriteCompletion = false
      perform(machine.writeCompleted(now: sys_epochSeconds()))
    }
  }

  private func armWriteSource() {
    if let writeSource {
      if writeSuspended {
        writeSuspended = false
        writeSource.resume()
      }
      return
    }
    let source = socket.withUnsafeDescriptor { DispatchSource.makeWriteSource(fileDescriptor: $0, queue: queue) }
    source.setEventHandler { [self] in
      if !closing { flush() }
    }
    source.setCancelHandler { [self] in sourceCancelled() }
    writeSource = source
    liveSources += 1
    source.resume()
  }

  private func disarmWriteSource() {
    guard let writeSource, !writeSuspended else { return }
    writeSuspended = true
    writeSource.suspend()
  }

  // MARK: - Closing

  private func close() {
    guard !closing else { return }
    closing = true
    if liveSources == 0 {
      finishClose()
      return
    }
    // A suspended source must be resumed to deliver its cancel handler (and must not be released suspended).
    if let readSource {
      if readSuspended {
        readSuspended = false
        readSource.resume()
      }
      readSource.cancel()
    }
    if let writeSource {
      if writeSuspended {
        writeSuspended = false
        writeSource.resume()
      }
      writeSource.cancel()
    }
  }

  private func sourceCancelled() {
    liveSources -= 1
    if liveSources == 0 { finishClose() }
  }

  private func finishClose() {
    readSource = nil
    writeSource = nil
    socket.close()
    outbound = []
    onClose(id)
  }
}
