import AdjointCompute
import HTTPServer

/// How the service runs: where it listens, how many workers compute, and its limits.
public struct ServiceConfiguration: Sendable {
  /// The address to listen on.
  public var host: String
  /// The TCP port; 0 picks a free one.
  public var port: Int
  /// Worker threads that run forward and backward passes.
  public var workers: Int
  /// Requests that may wait for a worker before the service answers 503.
  public var maxQueue: Int
  /// Whether each worker is bound to a CPU of its own when there is one worker per CPU the process may use (the
  /// default `workers`); otherwise workers are never bound. Bound, two busy workers cannot end up sharing one CPU
  /// while another idles, which Linux's scheduler was seen to let happen for 10 ms and more at a time.
  public var pinWorkers = true
  /// The request limits.
  public var limits: ServiceLimits
  /// Bearer tokens that may call the service; empty: no token is needed. `/healthz`, `/readyz` and
  /// `/openapi.yaml` stay open either way.
  public var apiKeys: [String] = []
  /// Seconds a request may take from its arrival to its answer, waiting for a worker included (30); past it the
  /// service stops its work and answers 503.
  public var requestTimeout: Double = 30
  /// The most bytes of compiled programs and parsed `expr` texts kept for reuse (64 MiB, three quarters of it for
  /// programs: BENCHMARKS.md's MLP over 256 images, with its spare workspaces, is counted at about 49 MB); 0 turns
  /// the cache off.
  public var programCacheBytes: Int = 64 << 20
  /// The most bytes of graphs kept by `POST /graphs` (their canonical JSON; 256 MiB); past it the least recently used
  /// are forgotten (their ids then answer 404, which clients answer by registering again).
  public var graphRegistryBytes: Int = 256 << 20
  /// The HTTP server's settings: time-outs, connection cap, compression, TLS, drain deadline. Its host, port and
  /// body limit are replaced by the ones above.
  public var http = HTTPServerConfiguration()

  /// Creates a configuration; the defaults are the contract's.
  public init(
    host: String = "127.0.0.1", port: Int = 8080, workers: Int = 1, maxQueue: Int = 1024,
    limits: ServiceLimits = ServiceLimits()
  ) {
    self.host = host
    self.port = port
    self.workers = workers
    self.maxQueue = maxQueue
    self.limits = limits
  }
}
