import AdjointService
import Dispatch
import Foundation
import XCTest

final class MetricsTests: XCTestCase {
  /// The sample lines of `text` (no comments), as name-with-labels → value.
  private func samples(_ metrics: ServiceMetrics) -> [String: Double] {
    let text = String(decoding: metrics.render(), as: UTF8.self)
    var result: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
      guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
        XCTFail("unparsable line: \(line)")
        continue
      }
      XCTAssertNil(result[String(line[..<space])], "repeated series \(line)")
      result[String(line[..<space])] = value
    }
    return result
  }

  func testRenderAfterObservations() throws {
    let metrics = ServiceMetrics()
    metrics.observe(route: "/evaluate", method: "POST", status: 200, seconds: 0.0003)
    metrics.observe(route: "/evaluate", method: "POST", status: 200, seconds: 0.02)
    metrics.observe(route: "/evaluate", method: "POST", status: 422, seconds: 0.001)
    metrics.observe(route: "other", method: "BREW", status: 404, seconds: 0.00005)
    metrics.setQueueDepth(7)
    metrics.setWorkers(4)
    metrics.setWorkersBusy(2)
    metrics.setWorkersBusy(1)
    metrics.cacheHit()
    metrics.cacheHit()
    metrics.cacheMiss()
    metrics.setCacheBytes(12_345)
    metrics.setGraphCount(3)
    metrics.rejected(.queueFull)
    metrics.rejected(.unauthorized)
    metrics.rejected(.unauthorized)

    let text = String(decoding: metrics.render(), as: UTF8.self)
    XCTAssertTrue(text.contains("# TYPE adjoint_http_requests_total counter\n"), text)
    XCTAssertTrue(text.contains("# TYPE adjoint_http_request_duration_seconds histogram\n"), text)
    XCTAssertTrue(text.contains("# HELP adjoint_queue_depth "), text)
    XCTAssertEqual(ServiceMetrics.contentType, "text/plain; version=0.0.4; charset=utf-8")

    let values = samples(metrics)
    XCTAssertEqual(values[#"adjoint_http_requests_total{route="/evaluate",method="POST",status="200"}"#], 2, text)
    XCTAssertEqual(values[#"adjoint_http_requests_total{route="/evaluate",method="POST",status="422"}"#], 1, text)
    // Unknown methods are folded into "other", so clients cannot grow the label set.
    XCTAssertEqual(values[#"adjoint_http_requests_total{route="other",method="other",status="404"}"#], 1, text)
    XCTAssertEqual(values[#"adjoint_http_request_duration_seconds_count{route="/evaluate"}"#], 3, text)
    let sum = try XCTUnwrap(values[#"adjoint_http_request_duration_seconds_sum{route="/evaluate"}"#])
    XCTAssertEqual(sum, 0.0213, accuracy: 1e-12)
    // Cumulative buckets: 0.0003 and 0.001 are under 1 ms, 0.02 is not; everything is under 30 s.
    XCTAssertEqual(values[#"adjoint_http_request_duration_seconds_bucket{route="/evaluate",le="0.0001"}"#], 0, text)
    XCTAssertEqual(values[#"adjoint_http_request_duration_seconds_bucket{route="/evaluate",le="0.0005"}"#], 1, text)
    XCTAssertEqual(values[#"adjoint_http_request_duration_seconds_bucket{route="/evaluate",le="0.001"}"#], 2, text)
    XCTAssertEqual(values[#"adjoint_http_request_duration_seconds_bucket{route="/evaluate",le="30.0"}"#], 3, text)
    XCTAssertEqual(values[#"adjoint_http_request_duration_seconds_bucket{route="/evaluate",le="+Inf"}"#], 3, text)
    XCTAssertEqual(values[#"adjoint_http_request_duration_seconds_bucket{route="other",le="0.0001"}"#], 1, text)
    XCTAssertEqual(values["adjoint_queue_depth"], 7)
    XCTAssertEqual(values["adjoint_workers"], 4)
    XCTAssertEqual(values["adjoint_workers_busy"], 1)
    XCTAssertEqual(values["adjoint_program_cache_hits_total"], 2)
    XCTAssertEqual(values["adjoint_program_cache_misses_total"], 1)
    XCTAssertEqual(values["adjoint_program_cache_bytes"], 12_345)
    XCTAssertEqual(values["adjoint_graphs_registered"], 3)
    XCTAssertEqual(values[#"adjoint_rejected_total{reason="queue_full"}"#], 1)
    XCTAssertEqual(values[#"adjoint_rejected_total{reason="unauthorized"}"#], 2)
    XCTAssertEqual(values[#"adjoint_rejected_total{reason="draining"}"#], 0)
    XCTAssertEqual(values[#"adjoint_rejected_total{reason="deadline"}"#], 0)
  }

  func testTwoInstancesDoNotShareSeries() {
    let first = ServiceMetrics()
    let second = ServiceMetrics()
    first.cacheHit()
    XCTAssertEqual(samples(first)["adjoint_program_cache_hits_total"], 1)
    XCTAssertEqual(samples(second)["adjoint_program_cache_hits_total"], 0)
  }

  func testRouteTemplates() {
    let cases: [(String, String)] = [
      ("/evaluate", "/evaluate"), ("/gradient", "/gradient"), ("/vjp", "/vjp"), ("/jvp", "/jvp"),
      ("/jacobian", "/jacobian"), ("/hessian", "/hessian"), ("/gradcheck", "/gradcheck"), ("/graphs", "/graphs"),
      ("/graphs/sha256:abc", "/graphs/{id}"), ("/graphs/", "other"), ("/graphs/a/b", "other"), ("/ops", "/ops"),
      ("/healthz", "/healthz"), ("/readyz", "/readyz"), ("/metrics", "/metrics"),
      ("/openapi.yaml", "/openapi.yaml"), ("/", "other"), ("/evaluate/", "other"), ("/wp-login.php", "other"),
    ]
    for (path, template) in cases {
      XCTAssertEqual(ServiceMetrics.routeTemplate(for: path[...]), template, path)
    }
  }

  func testConcurrentObservationsAreAllCounted() {
    let metrics = ServiceMetrics()
    let threads = 4
    let perThread = 20_000
    let routes = ["/evaluate", "/gradient", "/graphs/{id}", "other"]
    DispatchQueue.concurrentPerform(iterations: threads) { thread in
      for index in 0..<perThread {
        let route = routes[(index + thread) % routes.count]
        metrics.observe(route: route, method: index % 2 == 0 ? "GET" : "POST", status: 200, seconds: 0.001)
        metrics.setWorkersBusy(thread + 1)
        metrics.cacheHit()
        if index % 1000 == 0 { _ = metrics.render() }
      }
    }
    let values = samples(metrics)
    var total = 0.0
    for route in routes {
      for method in ["GET", "POST"] {
        total += values[#"adjoint_http_requests_total{route="\#(route)",method="\#(method)",status="200"}"#] ?? 0
      }
      XCTAssertEqual(
        values[#"adjoint_http_request_duration_seconds_count{route="\#(route)"}"#], Double(threads * perThread / 4))
    }
    XCTAssertEqual(total, Double(threads * perThread))
    XCTAssertEqual(values["adjoint_program_cache_hits_total"], Double(threads * perThread))
    XCTAssertEqual(values["adjoint_workers_busy"].map { (1...Double(threads)).contains($0) }, true)
  }

  /// Prints the cost of one `observe` (run with `--filter MetricsTests/testObserveCost`; release builds are what
  /// counts). Asserts only a generous bound, so that a pathological slowdown fails.
  func testObserveCost() {
    let metrics = ServiceMetrics()
    let routes = ["/evaluate", "/gradient", "/graphs/{id}", "/healthz"]
    for route in routes { metrics.observe(route: route, method: "POST", status: 200, seconds: 0.001) }
    var medians: [Double] = []
    for _ in 0..<5 {
      let count = 200_000
      let start = DispatchTime.now().uptimeNanoseconds
      for index in 0..<count {
        metrics.observe(route: routes[index & 3], method: "POST", status: 200, seconds: 0.0004)
      }
      medians.append(Double(DispatchTime.now().uptimeNanoseconds - start) / Double(count))
    }
    medians.sort()
    print("ServiceMetrics.observe: median \(medians[2]) ns per call (of 5 runs of 200,000)")
    XCTAssertLessThan(medians[2], 20_000)
  }
}
