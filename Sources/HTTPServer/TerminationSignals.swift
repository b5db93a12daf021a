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
  public init(_ handler: @escaping @Sendable () -> Void) {
    let queue = DispatchQueue(label: "adjoint.signals")
    sources = sys_terminationSignals.map { signal in
      sys_ignoreSignal(signal)
      let source = DispatchSource.makeSignalSource(signal: signal, queue: queue)
      source.setEventHandler(handler: handler)
      source.resume()
      return UncheckedSendableBox(source)
    }
  }

  deinit {
    for source in sources { source.value.cancel() }
  }
}
