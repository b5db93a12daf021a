import Dispatch
import Foundation
import Synchronization

/// A fixed set of worker threads that run compute jobs, fed by a bounded FIFO queue.
///
/// The HTTP server's connection queues never run autodiff: they submit a job here and go back to I/O. When the
/// queue already holds `maxQueue` jobs waiting for a worker (running jobs are not counted), ``submit(_:)`` refuses
/// the job and the service answers 503 with `Retry-After`.
final class WorkerPool: Sendable {
  private struct State {
    var waiting: [(@Sendable () -> Void)?] = []
    var head = 0
    var stopped = false
    var waitingCount: Int { waiting.count - head }
  }

  /// The number of worker threads.
  let workers: Int
  /// The most jobs that may wait for a worker; more are refused.
  let maxQueue: Int
  private let state = Mutex(State())
  private let ready = DispatchSemaphore(value: 0)

  /// Starts `workers` threads.
  init(workers: Int, maxQueue: Int) {
    self.workers = max(1, workers)
    self.maxQueue = max(0, maxQueue)
    for index in 0..<self.workers {
      let thread = Thread { [self] in self.run() }
      thread.name = "adjoint-worker-\(index)"
      thread.stackSize = 8 << 20
      thread.start()
    }
  }

  /// The number of jobs waiting for a worker.
  var queueDepth: Int { state.withLock { $0.waitingCount } }

  /// Queues a job; returns false, without queueing it, when the queue is full or the pool is stopped.
  func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
    let accepted = state.withLock { state -> Bool in
      guard !state.stopped, state.waitingCount < maxQueue else { return false }
      state.waiting.append(job)
      return true
    }
    if accepted { ready.signal() }
    return accepted
  }

  /// Lets the queued jobs finish, then ends the worker threads.
  func stop() {
    state.withLock { $0.stopped = true }
    for _ in 0..<workers { ready.signal() }
  }

  private func run() {
    while true {
      ready.wait()
      let job = state.withLock { state -> (@Sendable () -> Void)?? in
        guard state.waitingCount > 0 else { return state.stopped ? .some(nil) : nil }
        let job = state.waiting[state.head]
        state.waiting[state.head] = nil
        state.head += 1
        if state.head > 1024 && state.head * 2 > state.waiting.count {
          state.waiting.removeFirst(state.head)
          state.head = 0
        }
        return .some(job)
      }
      switch job {
      case .some(.some(let work)): work()
      case .some(.none): return
      case .none: continue
      }
    }
  }
}
