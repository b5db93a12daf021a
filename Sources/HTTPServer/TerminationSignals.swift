import Dispatch

/// Runs a handler when the process receives SIGTERM or SIGINT, instead of dying.
///
/// ```swift
/// let signals = TerminationSignals { server.shutdown() }
/// server.wait()
/// ```
public final class TerminationSignals: Sendable {
  private let sources: [UncheckedSendableBox<any DispatchSourceSignal>]

  /// Installs the handler; it runs on a private queue each time a termination signal arrives. Keep the returned
  /// object alive for as long as the handler should run.
  ///
  /// Returns once Dispatch has registered the sources (at most a second): a signal that arrived before would be
  /// lost (the default action is already ignored), so a server that says it is ready after this call does not
  /// miss a SIGTERM sent the moment it says so.
  public init(_ handler: @escaping @Sendable () -> Void) {
    let queue = DispatchQueue(label: "adjoint.signals")
    let registered = DispatchSemaphore(value: 0)
    sources = sys_terminationSignals.map { signal in
      sys_ignoreSignal(signal)
      let source = DispatchSource.makeSignalSource(signal: signal, queue: queue)
      source.setEventHandler(handler: handler)
      source.setRegistrationHandler { registered.signal() }
      source.resume()
      return UncheckedSendableBox(source)
    }
    let deadline = DispatchTime.now() + 1
    for _ in sources { _ = registered.wait(timeout: deadline) }
  }

  deinit {
    for source in sources { source.value.cancel() }
  }
}
