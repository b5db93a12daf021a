// The service's Prometheus metrics, over swift-prometheus: request counts and durations by route, the work queue,
// the workers, the program cache, the graph registry and the rejected requests.

import AdjointCompute
import HTTPServer
import Locking
import Prometheus

/// The metrics `GET /metrics` exposes, in the Prometheus text format 0.0.4.
///
/// Every method is safe to call from any thread at any rate: the labelled series of a request are created once per
/// label set and then found in a small dictionary, so an observation costs a lock, a lookup and two atomic or locked
/// updates, with no allocation.
///
/// ```swift
/// let metrics = ServiceMetrics()
/// metrics.observe(route: ServiceMetrics.routeTemplate(for: request.path), method: "POST", status: 200, seconds: 0.002)
/// let body = metrics.render()  // served with `ServiceMetrics.contentType`
/// ```
public final class ServiceMetrics: Sendable {
  /// The content type of ``render()``'s output.
  public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

  /// The upper bounds of the request duration histogram's buckets, in seconds: 100 µs to 30 s.
  public static let durationBuckets: [Double] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
  ]

  /// Why a request was turned away, the `reason` label of `adjoint_rejected_total`.
  public enum RejectionReason: String, Sendable, CaseIterable {
    /// The work queue was full (503).
    case queueFull = "queue_full"
    /// The server was draining (503).
    case draining
    /// The request ran past its time limit (503).
    case deadline
    /// A token was required and missing or wrong (401).
    case unauthorized
  }

  private struct RequestKey: Hashable {
    var route: String
    var method: String
    var status: Int

    /// Hashes the lengths of the strings and the last byte of the route rather than their contents: a lookup then costs a few
    /// nanoseconds; the few keys that collide are told apart by `==`.
    func hash(into hasher: inout Hasher) {
      hasher.combine(status &* 4099 &+ route.utf8.count &* 31 &+ method.utf8.count)
      hasher.combine(route.utf8.last ?? 0)
    }
  }

  private struct RequestSeries: Sendable {
    var count: Counter
    var duration: ValueHistogram
  }

  private let registry = PrometheusCollectorRegistry()
  private let requestSeries = Locked<[RequestKey: RequestSeries]>([:])
  private let durationByRoute = Locked<[String: ValueHistogram]>([:])
  private let queueDepth: Gauge
  private let workersBusy: Gauge
  private let workers: Gauge
  private let cacheHits: Counter
  private let cacheMisses: Counter
  private let cacheBytes: Gauge
  private let graphs: Gauge
  private let rejections: [RejectionReason: Counter]

  private static var requests: MetricNameDescriptor {
    name("http_requests", "total", "HTTP requests answered, by route, method and status.")
  }
  private static var duration: MetricNameDescriptor {
    name("http_request_duration", "seconds", "Time from a request's arrival to its answer, in seconds, by route.")
  }

  /// `adjoint_<metric>_<unit>`.
  private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
    MetricNameDescriptor(namespace: "adjoint", metricName: metric, unitName: unit, helpText: help)
  }

  /// Creates the metrics, every series at zero.
  public init() {
    let name = ServiceMetrics.name
    queueDepth = registry.makeGauge(descriptor: name("queue_depth", "", "Requests waiting for a worker."))
    workersBusy = registry.makeGauge(descriptor: name("workers_busy", "", "Workers computing a request."))
    workers = registry.makeGauge(descriptor: name("workers", "", "Worker threads."))
    cacheHits = registry.makeCounter(
      descriptor: name("program_cache_hits", "total", "Compiled programs found in the cache."))
    cacheMisses = registry.makeCounter(
      descriptor: name("program_cache_misses", "total", "Programs compiled because the cache did not hold them."))
    cacheBytes = registry.makeGauge(
      descriptor: name("program_cache", "bytes", "Bytes of compiled programs held by the cache."))
    graphs = registry.makeGauge(descriptor: name("graphs_registered", "", "Graphs registered with POST /graphs."))
    var rejections: [RejectionReason: Counter] = [:]
    for reason in RejectionReason.allCases {
      rejections[reason] = registry.makeCounter(
        descriptor: name("rejected", "total", "Requests turned away, by reason."), labels: [("reason", reason.rawValue)]
      )
    }
    self.rejections = rejections
  }

  /// Records one answered request.
  /// - Parameters:
  ///   - route: The route template, e.g. `"/graphs/{id}"` (see ``routeTemplate(for:)``), never the raw path, so that
  ///     the number of series stays bounded.
  ///   - method: The request method; methods other than the standard ones are counted as `"other"`.
  ///   - status: The response status code.
  ///   - seconds: The time from the request's arrival to its answer.
  public func observe(route: String, method: String, status: Int, seconds: Double) {
    let series = self.series(route: route, method: ServiceMetrics.boundedMethod(method), status: status)
    series.count.increment()
    series.duration.record(seconds.isFinite && seconds > 0 ? seconds : 0)
  }

  /// Sets the number of requests waiting for a worker.
  public func setQueueDepth(_ depth: Int) { queueDepth.set(to: Double(depth)) }

  /// Sets the number of workers computing a request.
  public func setWorkersBusy(_ count: Int) { workersBusy.set(to: Double(count)) }

  /// Sets the number of worker threads.
  public func setWorkers(_ count: Int) { workers.set(to: Double(count)) }

  /// Counts a compiled program found in the cache.
  public func cacheHit() { cacheHits.increment() }

  /// Counts a program that had to be compiled.
  public func cacheMiss() { cacheMisses.increment() }

  /// Sets the bytes held by the program cache.
  public func setCacheBytes(_ bytes: Int) { cacheBytes.set(to: Double(bytes)) }

  /// Sets the number of registered graphs.
  public func setGraphCount(_ count: Int) { graphs.set(to: Double(count)) }

  /// Counts a request turned away for `reason`.
  public func rejected(_ reason: RejectionReason) { rejections[reason]?.increment() }

  /// Every metric in the Prometheus text format 0.0.4 (serve it with ``contentType``).
  public func render() -> [UInt8] { registry.emitToBuffer() }

  /// The route template of a request path, for the `route` label: the contract's paths as they are,
  /// `/graphs/{id}` for a graph, `"other"` for anything else.
  public static func routeTemplate(for path: Substring) -> String {
    // Byte comparisons over contiguous storage: comparing a Substring with String literals costs far more.
    var path = path
    return path.withUTF8 { bytes -> String in
      for route in fixedRoutes where route.utf8.count == bytes.count {
        if route.utf8.withContiguousStorageIfAvailable({ $0.elementsEqual(bytes) }) ?? false { return route }
      }
      let prefix = 8  // "/graphs/"
      if bytes.count > prefix && bytes.starts(with: "/graphs/".utf8)
        && !bytes[prefix...].contains(UInt8(ascii: "/"))
      {
        return "/graphs/{id}"
      }
      return "other"
    }
  }

  /// The contract's paths that are their own route template.
  private static let fixedRoutes = [
    "/evaluate", "/gradient", "/vjp", "/jvp", "/jacobian", "/hessian", "/gradcheck", "/graphs", "/ops", "/healthz",
    "/readyz", "/metrics", "/openapi.yaml",
  ]

  private static func boundedMethod(_ method: String) -> String {
    switch method {
    case "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS": method
    default: "other"
    }
  }

  /// The series of a label set, created on first use.
  private func series(route: String, method: String, status: Int) -> RequestSeries {
    let key = RequestKey(route: route, method: method, status: status)
    if let found = requestSeries.withLock({ $0[key] }) { return found }
    // Created outside the lock (the registry has its own, and returns the existing series for a known label set).
    let duration = durationByRoute.withLock { histograms in
      if let histogram = histograms[route] { return histogram }
      let histogram = registry.makeValueHistogram(
        descriptor: ServiceMetrics.duration, labels: [("route", route)], buckets: ServiceMetrics.durationBuckets)
      histograms[route] = histogram
      return histogram
    }
    let count = registry.makeCounter(
      descriptor: ServiceMetrics.requests, labels: [("route", route), ("method", method), ("status", "\(status)")])
    let series = RequestSeries(count: count, duration: duration)
    requestSeries.withLock { $0[key] = series }
    return series
  }
}
