import Dispatch
import Foundation
import Locking
import Synchronization

/// A fixed set of worker threads that run compute jobs, fed by a bounded FIFO queue.
///
/// The HTTP server's connection queues never run autodiff: they submit a job here and go back to I/O. When the
/// queue already holds `maxQueue` jobs waiting for a worker (running jobs are not counted), ``submit(_:)`` refuses
/// the job and the service answers 503 with `Retry-After`.
package final class WorkerPool: Sendable {
  private struct State {
    /// Parts of fanned-out jobs: taken before waiting jobs, and not counted against `maxQueue`.
    var parts: [FanOut] = []
    var waiting: [(@Sendable () -> Void)?] = []
    var head = 0
    var stopped = false
    var waitingCount: Int { waiting.count - head }
  }

  /// The number of worker threads.
  package let workers: Int
  /// The most jobs that may wait for a worker; more are refused.
  package let maxQueue: Int
  private let state = Locked(State())
  private let ready = DispatchSemaphore(value: 0)

  /// Starts `workers` threads; with `cpus`, worker `i` runs on CPU `cpus[i % cpus.count]` only.
  package init(workers: Int, maxQueue: Int, cpus: [Int] = []) {
    self.workers = max(1, workers)
    self.maxQueue = max(0, maxQueue)
    for index in 0..<self.workers {
      let cpu = cpus.isEmpty ? nil : cpus[index % cpus.count]
      let thread = Thread { [self] in
        if let cpu { CPUAffinity.pinCurrentThread(to: cpu) }
        self.run()
      }
      thread.name = "adjoint-worker-\(index)"
      thread.stackSize = 8 << 20
      thread.start()
    }
  }

  /// The number of jobs waiting for a worker.
  package var queueDepth: Int { state.withLock { $0.waitingCount } }

  /// The number of workers running a job.
  package var busyWorkers: Int { busy.load(ordering: .relaxed) }
  private let busy = Atomic<Int>(0)

  /// Runs `body(0)`, …, `body(count - 1)` on the calling thread and on idle workers, and returns when all have
  /// returned. Meant to be called from a job: the caller works through the parts itself, so the call finishes even
  /// when no other worker is free, and it never waits for a part that no thread has started.
  package func fanOut(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    guard count > 1, workers > 1 else {
      for index in 0..<count { body(index) }
      return
    }
    let job = FanOut(count: count, body: body)
    let helpers = min(workers - 1, count - 1)
    let queued = state.withLock { state -> Bool in
      guard !state.stopped else { return false }
      for _ in 0..<helpers { state.parts.append(job) }
      return true
    }
    if queued { for _ in 0..<helpers { ready.signal() } }
    job.work()
    job.waitUntilDone()
  }

  /// Queues a job; returns false, without queueing it, when the pool is stopped or `maxQueue` jobs already wait
  /// beyond those that idle workers are about to take.
  package func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
    let accepted = state.withLock { state -> Bool in
      // Idle workers take waiting jobs at once: they do not count against the queue's limit.
      let idle = max(0, workers - busy.load(ordering: .relaxed) - state.parts.count)
      guard !state.stopped, state.waitingCount < maxQueue + idle else { return false }
      state.waiting.append(job)
      return true
    }
    if accepted { ready.signal() }
    return accepted
  }

  /// Lets the queued jobs finish, then ends the worker threads.
  package func stop() {
    state.withLock { $0.stopped = true }
    for _ in 0..<workers { ready.signal() }
  }

  private func run() {
    while true {
      ready.wait()
      let job = state.withLock { state -> (@Sendable () -> Void)?? in
        if let part = state.parts.popLast() {
          busy.add(1, ordering: .relaxed)  // under the lock, so that `submit` never sees a job in neither place
          return .some({ part.work() })
        }
        guard state.waitingCount > 0 else { return state.stopped ? .some(nil) : nil }
        let job = state.waiting[state.head]
        state.waiting[state.head] = nil
        state.head += 1
        if state.head > 1024 && state.head * 2 > state.waiting.count {
          state.waiting.removeFirst(state.head)
          state.head = 0
        }
        busy.add(1, ordering: .relaxed)
        return .some(job)
      }
      switch job {
      case .some(.some(let work)):
        work()
        busy.subtract(1, ordering: .relaxed)
      case .some(.none): return
      case .none: continue
      }
    }
  }
}

/// One fanned-out job: its parts are claimed one at a time by whichever threads call ``work()``.
private final class FanOut: Sendable {
  let count: Int
  let body: @Sendable (Int) -> Void
  private let next = Atomic<Int>(0)
  private let remaining: Atomic<Int>
  private let finished = DispatchSemaphore(value: 0)

  init(count: Int, body: @escaping @Sendable (Int) -> Void) {
    self.count = count
    self.body = body
    remaining = Atomic(count)
  }

  /// Runs unclaimed parts until none is left.
  func work() {
    while true {
      let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
      guard index < count else { return }
      body(index)
      if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { finished.signal() }
    }
  }

  /// Blocks until every part has returned.
  func waitUntilDone() {
    finished.wait()
  }
}
