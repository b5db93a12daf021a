// The threads that carry the connections: each runs an epoll loop over its connections' sockets.
//
// A connection belongs to one loop for its life, and everything it does (reading, parsing, answering a cheap route,
// writing, its time-outs) runs on that loop's thread, so its state needs no lock. Readiness is level-triggered: a
// connection asks for readable events while it reads and for writable events only while a write waits for room,
// so the steady state of a keep-alive connection costs one epoll_wait share, one read and one send per request.
// Work from other threads (a reply computed elsewhere, a drain) is queued with ``EventLoop/execute(_:)``, which
// wakes the loop through an eventfd. Time-outs are deadlines on the monotonic clock: each connection keeps the
// moment its timer is due, the loop sleeps no longer than the earliest one, and a sweep fires those that are due.

import Dispatch
import Locking
import Synchronization

final class EventLoop: @unchecked Sendable {
  /// The loops every server shares, created on first use and never stopped: one per two processors (at least one).
  /// The other processors are left to the work the responders hand off (the compute pool) and to the clients: on a
  /// busy two-processor machine, two loops beside the load generator measured 30 % more CPU per request and a p99
  /// several times longer than one loop, from threads preempting each other.
  static let shared: [EventLoop] = (0..<max(1, min(sys_processorCount() / 2, 64))).map { EventLoop(index: $0) }

  /// The loop for the connection numbered `id`: the shared loops in turn.
  static func forConnection(_ id: Int) -> EventLoop { shared[id % shared.count] }

  /// Where the loop's connections read into (never freed: the loops live as long as the process). Large, so that
  /// a large body arrives in few reads, and one per loop rather than per connection.
  let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 64)

  private let epoll: CInt
  private let wakeDescriptor: CInt
  /// The Dispatch queue whose thread runs the loop (never returned to the pool).
  private let host: DispatchQueue
  private let pending = Locked<[@Sendable () -> Void]>([])
  /// Whether a wake-up has been signalled and not yet taken by the loop.
  private let wakeSignalled = Atomic<Bool>(false)

  // Touched only on the loop's thread.
  private var clients: [UInt64: Connection] = [:]
  private var nextToken: UInt64 = 1
  /// The earliest moment a client's timer is due (`.max`: none).
  private var earliestDeadline = UInt64.max
  private static let wakeToken: UInt64 = 0
  private static let eventsPerWait = 256

  private init(index: Int) {
    epoll = sys_epollCreate()
    wakeDescriptor = sys_eventCounter()
    precondition(epoll >= 0 && wakeDescriptor >= 0, "cannot create an event loop (errno \(sys_errno()))")
    let added = sys_epollControl(
      epoll, wakeDescriptor, add: true, events: .readable, token: EventLoop.wakeToken)
    precondition(added == 0, "cannot watch the event loop's eventfd (errno \(sys_errno()))")
    host = DispatchQueue(label: "adjoint.http.loop.\(index)")
    host.async { self.run() }
  }

  /// The monotonic clock of deadlines, in nanoseconds.
  static var now: UInt64 { DispatchTime.now().uptimeNanoseconds }

  /// Runs `task` on the loop's thread, after the events being handled. Callable from any thread.
  func execute(_ task: @escaping @Sendable () -> Void) {
    pending.withLock { $0.append(task) }
    if !wakeSignalled.exchange(true, ordering: .acquiringAndReleasing) {
      sys_signalEventCounter(wakeDescriptor)
    }
  }

  // MARK: - For connections, on the loop's thread

  /// Starts delivering events to `connection`; returns the token to pass to ``setInterest(_:in:token:)``.
  func register(_ connection: Connection) -> UInt64 {
    let token = nextToken
    nextToken += 1
    clients[token] = connection
    return token
  }

  /// Stops delivering events and timer calls to the client with `token` (its descriptor is about to close).
  func unregister(_ token: UInt64) {
    clients[token] = nil
  }

  /// Changes which readiness of `descriptor` the loop watches: `old` is what it watched so far (empty: not
  /// watched), `new` what it must watch (empty: stop watching).
  func setInterest(_ new: SysEvents, from old: SysEvents, descriptor: CInt, token: UInt64) {
    let result = sys_epollControl(epoll, descriptor, add: old.isEmpty, events: new, token: token)
    precondition(result == 0 || new.isEmpty, "epoll_ctl failed (errno \(sys_errno()))")
  }

  /// Makes the loop wake by `deadline` (monotonic nanoseconds) to sweep the timers.
  func noteDeadline(_ deadline: UInt64) {
    if deadline < earliestDeadline { earliestDeadline = deadline }
  }

  // MARK: - The loop

  private func run() {
    let events = SysEventBuffer(capacity: EventLoop.eventsPerWait)
    while true {
      var timeout: CInt = -1
      if earliestDeadline != .max {
        let now = EventLoop.now
        timeout = earliestDeadline <= now ? 0 : CInt(clamping: (earliestDeadline - now + 999_999) / 1_000_000)
      }
      let count = Int(sys_epollWait(epoll, events, timeout))
      for index in 0..<max(0, count) {
        let (token, happened) = events[index]
        if token == EventLoop.wakeToken {
          runPending()
        } else if let client = clients[token] {
          client.handle(happened)
        }
      }
      if earliestDeadline != .max && EventLoop.now >= earliestDeadline { sweepTimers() }
    }
  }

  private func runPending() {
    sys_drainEventCounter(wakeDescriptor)
    // Cleared before the tasks are taken: a task queued after this signals again.
    wakeSignalled.store(false, ordering: .releasing)
    let tasks = pending.withLock { tasks in
      var taken: [@Sendable () -> Void] = []
      swap(&taken, &tasks)
      return taken
    }
    for task in tasks { task() }
  }

  private func sweepTimers() {
    let now = EventLoop.now
    earliestDeadline = .max
    for client in Array(clients.values) {
      client.fireTimerIfDue(now: now)
      if let deadline = client.timerDeadline { noteDeadline(deadline) }
    }
  }
}
