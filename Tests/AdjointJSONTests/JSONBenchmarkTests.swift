import AdjointJSON
import Foundation
import XCTest

/// Times the JSON work of the S2/S3 scenarios, single-threaded, the Swift half of `scripts/bench_json.sh` (whose
/// `scripts/bench_json.py` times the same operations with orjson).
///
/// Runs only with `ADJOINT_JSON_BENCH=1`; `ADJOINT_JSON_BODIES` names the folder with `s2.json`, `s3.json` (from the
/// anchors' `gen_bodies.py`), `s3_grad.json` and `s3_b64.json` (from `bench_json.py`). Prints one line per
/// operation, `BENCH<TAB>name<TAB>median seconds` (of this thread's CPU time). Build in release mode for meaningful numbers.
final class JSONBenchmarkTests: XCTestCase {
  private struct Tensor {
    var shape: [Int]
    var data: [Double]
  }

  /// This thread's CPU time in seconds (steadier than the wall clock on a shared machine).
  private func threadTime() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
  }

  /// The median CPU time of `body`, over at least 7 runs and 1 s (at most 2,000 runs), after one warm-up run.
  ///
  /// With `ADJOINT_JSON_BENCH_SECONDS` set, runs for that many seconds instead; with `ADJOINT_JSON_BENCH_ONLY` set
  /// (a comma-separated list of names), runs the other operations once only (both for `perf record`).
  private func median(_ name: String, _ body: () throws -> Void) rethrows -> Double {
    let environment = ProcessInfo.processInfo.environment
    if let only = environment["ADJOINT_JSON_BENCH_ONLY"], !only.split(separator: ",").contains(Substring(name)) {
      try body()
      return .nan
    }
    let seconds = Double(environment["ADJOINT_JSON_BENCH_SECONDS"] ?? "") ?? 1
    let maxRuns = seconds > 1 ? Int.max : 2000
    try body()
    var times: [Double] = []
    let start = threadTime()
    while times.count < 7 || (threadTime() - start < seconds && times.count < maxRuns) {
      let t0 = threadTime()
      try body()
      times.append(threadTime() - t0)
    }
    times.sort()
    return times[times.count / 2]
  }

  private func report(_ name: String, _ seconds: Double) {
    print("BENCH\t\(name)\t\(String(format: "%.9f", seconds))")
  }

  private func tensors(of object: JSONObject) throws -> [(String, Tensor)] {
    try object.map { key, value in
      let (shape, data) = try JSONTensorDecoding.decode(value)
      return (key, Tensor(shape: shape, data: data))
    }
  }

  func testBenchmark() throws {
    let environment = ProcessInfo.processInfo.environment
    guard environment["ADJOINT_JSON_BENCH"] == "1" else {
      throw XCTSkip("set ADJOINT_JSON_BENCH=1 (and ADJOINT_JSON_BODIES) to run the JSON benchmark")
    }
    let bodies = try XCTUnwrap(environment["ADJOINT_JSON_BODIES"], "ADJOINT_JSON_BODIES is not set")
    func read(_ name: String) throws -> [UInt8] {
      [UInt8](try Data(contentsOf: URL(fileURLWithPath: bodies).appendingPathComponent(name)))
    }
    let s2 = try read("s2.json")
    let s3 = try read("s3.json")
    let s3Gradient = try read("s3_grad.json")
    let s3Base64 = try read("s3_b64.json")

    // S3 request: parse, then every tensor of "at" to shape + [Double].
    var sink = 0
    let nested = try median("s3_decode_nested") {
      let at = try XCTUnwrap(try JSONParser.parse(s3)["at"]?.objectValue)
      sink &+= try tensors(of: at).count
    }
    report("s3_decode_nested", nested)

    // S3 response: {"value": v, "gradient": {"W1": [[...]], ...}}, the gradient read from s3_grad.json.
    let response = try XCTUnwrap(try JSONParser.parse(s3Gradient).objectValue)
    let value = try XCTUnwrap(response["value"]?.doubleValue)
    let gradient = try tensors(of: try XCTUnwrap(response["gradient"]?.objectValue))
    func writeGradient(_ layout: JSONTensorLayout) -> [UInt8] {
      var w = JSONWriter(capacity: 256)
      w.beginObject()
      w.writeKey("value")
      w.write(value)
      w.writeKey("gradient")
      w.beginObject()
      for (name, t) in gradient {
        w.writeKey(name)
        w.writeTensor(shape: t.shape, data: t.data, layout: layout)
      }
      w.endObject()
      w.endObject()
      return w.bytes
    }
    let encodedNested = median("s3_encode_nested") { sink &+= writeGradient(.nested).count }
    report("s3_encode_nested", encodedNested)
    if environment["ADJOINT_JSON_BENCH_DETAIL"] == "1" {
      var keep = JSONWriter(capacity: 6_000_000)
      report(
        "detail_w1_reused_buffer",
        median("detail_w1_reused_buffer") {
          keep.bytes.removeAll(keepingCapacity: true)
          keep.write(doubles: gradient[0].1.data, shape: gradient[0].1.shape)
        })
      report(
        "detail_w1_alloc_only",
        median("detail_w1_alloc_only") { sink &+= JSONWriter(capacity: 5_000_000).bytes.capacity })
      report(
        "detail_w1_fresh",
        median("detail_w1_fresh") {
          var w = JSONWriter()
          w.write(doubles: gradient[0].1.data, shape: gradient[0].1.shape)
          sink &+= w.bytes.count
        })
    }
    // Same numbers as orjson wrote (the texts may differ in exponent notation only).
    XCTAssertEqual(try JSONParser.parse(writeGradient(.nested)), try JSONParser.parse(s3Gradient))

    // S2 request to a JSONValue.
    report("s2_decode", try median("s2_decode") { sink &+= try JSONParser.parse(s2)["batch"]?.arrayValue?.count ?? 0 })

    // S2 response, written member by member as the service does.
    let batch = try XCTUnwrap(try JSONParser.parse(s2)["batch"]?.arrayValue)
    let points = try batch.map { p in
      (try XCTUnwrap(p["x"]?.doubleValue), try XCTUnwrap(p["y"]?.doubleValue))
    }
    report(
      "s2_encode",
      median("s2_encode") {
        var w = JSONWriter(capacity: 256)
        w.beginObject()
        w.writeKey("results")
        w.beginArray()
        for (x, y) in points {
          w.beginObject()
          w.writeKey("value")
          w.write(x * y)
          w.writeKey("gradient")
          w.beginObject()
          w.writeKey("x")
          w.write(x)
          w.writeKey("y")
          w.write(y)
          w.endObject()
          w.endObject()
        }
        w.endArray()
        w.endObject()
        sink &+= w.bytes.count
      })

    // The base64 forms of the same S3 request and response.
    let decodedBase64 = try median("s3_decode_base64") {
      let at = try XCTUnwrap(try JSONParser.parse(s3Base64)["at"]?.objectValue)
      sink &+= try tensors(of: at).count
    }
    report("s3_decode_base64", decodedBase64)
    let encodedBase64 = median("s3_encode_base64") { sink &+= writeGradient(.base64).count }
    report("s3_encode_base64", encodedBase64)
    let fromBase64 = try tensors(of: try XCTUnwrap(try JSONParser.parse(s3Base64)["at"]?.objectValue))
    let fromNested = try tensors(of: try XCTUnwrap(try JSONParser.parse(s3)["at"]?.objectValue))
    XCTAssertEqual(fromBase64.map(\.0), fromNested.map(\.0))
    for (a, b) in zip(fromBase64, fromNested) {
      XCTAssertEqual(a.1.shape, b.1.shape)
      XCTAssertEqual(a.1.data.map(\.bitPattern), b.1.data.map(\.bitPattern))
    }
    XCTAssertGreaterThan(sink, 0)
  }
}
