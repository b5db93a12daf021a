// The timing method of the anchors' harness (anchors/engine/bench_common.py and bench_c.h), so that Adjoint's
// medians and the anchors' are comparable: one warm-up call, one call that estimates the cost, then timed calls
// until about two seconds of timed work (at least 5, at most `maxRuns`), all in one process on one thread.

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Median, minimum and maximum of repeated timed calls, in seconds.
struct Timing {
  var median: Double
  var min: Double
  var max: Double
  /// The number of timed calls.
  var runs: Int
  /// The duration of the untimed warm-up call.
  var warmup: Double

  /// The JSON fields every workload line carries: seconds, and milliseconds as the anchors print them.
  var fields: [(String, JSONItem)] {
    [
      ("median_s", .double(median)), ("min_s", .double(min)), ("max_s", .double(max)),
      ("median_ms", .double(median * 1e3)), ("min_ms", .double(min * 1e3)), ("max_ms", .double(max * 1e3)),
      ("runs", .int(runs)), ("warmup_ms", .double(warmup * 1e3)),
    ]
  }
}

/// How long to time each workload.
struct TimingPolicy {
  /// The least number of timed calls.
  var minRuns = 5
  /// The most timed calls.
  var maxRuns = 200
  /// The timed work to aim for, in seconds.
  var targetSeconds = 2.0
}

/// Seconds on the monotonic clock.
func monotonicSeconds() -> Double {
  var now = timespec()
  clock_gettime(CLOCK_MONOTONIC, &now)
  return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
}

/// Times `body` as the anchors do: a warm-up call, an estimating call, then more calls up to the target time.
func measure(_ policy: TimingPolicy, _ body: () -> Void) -> Timing {
  var start = monotonicSeconds()
  body()
  let warmup = monotonicSeconds() - start
  start = monotonicSeconds()
  body()
  let estimate = monotonicSeconds() - start
  let wanted = Int(policy.targetSeconds / Swift.max(estimate, 1e-9))
  let runs = Swift.max(policy.minRuns, Swift.min(policy.maxRuns, wanted))
  var times = [estimate]
  times.reserveCapacity(runs)
  for _ in 1..<runs {
    start = monotonicSeconds()
    body()
    times.append(monotonicSeconds() - start)
  }
  times.sort()
  let middle = runs / 2
  let median = runs % 2 == 1 ? times[middle] : 0.5 * (times[middle - 1] + times[middle])
  return Timing(median: median, min: times[0], max: times[runs - 1], runs: runs, warmup: warmup)
}

/// A value in a JSON line.
enum JSONItem {
  case int(Int)
  case double(Double)
  case doubles([Double])
  case string(String)

  var text: String {
    switch self {
    case .int(let value): "\(value)"
    case .double(let value): JSONItem.format(value)
    case .doubles(let values): "[" + values.map(JSONItem.format).joined(separator: ", ") + "]"
    case .string(let value): JSONItem.quote(value)
    }
  }

  /// Shortest round-trip decimal; JSON has no NaN or infinity, so those become `null`.
  static func format(_ value: Double) -> String { value.isFinite ? "\(value)" : "null" }

  static func quote(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      default:
        if scalar.value < 0x20 {
          let hex = String(scalar.value, radix: 16)
          out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        } else {
          out.unicodeScalars.append(scalar)
        }
      }
    }
    return out + "\""
  }
}

/// Prints one JSON object on one line of standard output, fields in the given order.
func emit(_ fields: [(String, JSONItem)]) {
  let body = fields.map { "\(JSONItem.quote($0.0)): \($0.1.text)" }.joined(separator: ", ")
  writeLine(STDOUT_FILENO, "{" + body + "}")
}

/// Writes a line to standard error.
func note(_ message: String) {
  writeLine(STDERR_FILENO, message)
}

/// Writes a whole line to a file descriptor at once, unbuffered, so lines from stdout and stderr never interleave.
func writeLine(_ descriptor: Int32, _ text: String) {
  var line = text + "\n"
  line.withUTF8 { bytes in
    var offset = 0
    while offset < bytes.count {
      let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
      if written <= 0 { return }
      offset += written
    }
  }
}

/// True when `actual` is within `tolerance`, relative to the larger magnitude, of `expected`.
func agrees(_ actual: Double, _ expected: Double, tolerance: Double) -> Bool {
  if actual == expected { return true }
  let scale = Swift.max(abs(actual), abs(expected), Double.leastNormalMagnitude)
  return abs(actual - expected) <= tolerance * scale
}

/// A benchmark that cannot run or whose result is wrong.
struct BenchError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}
