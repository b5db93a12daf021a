import AdjointEngine
import AdjointExpressions
import Foundation
import Locking
import XCTest

@testable import AdjointCompute
@testable import AdjointService

/// The shared parts that worker threads use at once: the pool's fan-out, the caches, and the whole service
/// in-process under concurrent clients. `scripts/test` also runs these under ThreadSanitizer.
final class ConcurrencyTests: XCTestCase {
  func testFanOutRunsEveryPartOnceAndNestsWithoutDeadlock() {
    let pool = WorkerPool(workers: 3, maxQueue: 16)
    defer { pool.stop() }
    let done = DispatchSemaphore(value: 0)
    let counts = Counts(101)
    // Jobs that fan out, from several jobs at once, one of them nesting a fan-out inside its parts.
    for job in 0..<4 {
      XCTAssertTrue(
        pool.submit {
          pool.fanOut(25) { part in
            if job == 0 && part == 0 { pool.fanOut(10) { _ in counts.add(100, 1) } }
            counts.add(job * 25 + part, 1)
          }
          done.signal()
        })
    }
    for _ in 0..<4 { XCTAssertEqual(done.wait(timeout: .now() + 30), .success) }
    XCTAssertEqual(counts.values[0..<100].filter { $0 == 1 }.count, 100, "every part ran exactly once")
    XCTAssertEqual(counts.values[100], 10, "every nested part ran exactly once")
    // A worker counts itself idle just after its job returns.
    let deadline = Date().addingTimeInterval(5)
    while pool.busyWorkers != 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.001) }
    XCTAssertEqual(pool.busyWorkers, 0)
  }

  /// Workers given CPUs run on those alone, one each; without, on every CPU the process may use.
  func testWorkersRunOnTheirCPUs() {
    let allowed = CPUAffinity.allowedCPUs()
    XCTAssertFalse(allowed.isEmpty)
    let cpus = [allowed[0], allowed[allowed.count - 1]]
    for (given, expected) in [(cpus, Set([[cpus[0]], [cpus[1]]])), ([], Set([allowed]))] {
      let pool = WorkerPool(workers: 2, maxQueue: 4, cpus: given)
      defer { pool.stop() }
      // Two jobs that wait for each other, so that each worker runs one.
      let arrived = DispatchSemaphore(value: 0)
      let release = DispatchSemaphore(value: 0)
      let seen = Locked<[[Int]]>([])
      for _ in 0..<2 {
        XCTAssertTrue(
          pool.submit {
            seen.withLock { $0.append(CPUAffinity.allowedCPUs()) }
            arrived.signal()
            release.wait()
          })
      }
      for _ in 0..<2 { XCTAssertEqual(arrived.wait(timeout: .now() + 10), .success) }
      release.signal()
      release.signal()
      XCTAssertEqual(Set(seen.withLock { $0 }), expected, "CPUs given: \(given)")
    }
  }

  func testQueueRefusesPastItsLimitAndCountsWaitingJobsOnly() {
    let pool = WorkerPool(workers: 1, maxQueue: 2)
    defer { pool.stop() }
    let release = DispatchSemaphore(value: 0)
    let started = DispatchSemaphore(value: 0)
    XCTAssertTrue(
      pool.submit {
        started.signal()
        release.wait()
      })
    started.wait()
    XCTAssertTrue(pool.submit {})
    XCTAssertTrue(pool.submit {})
    XCTAssertEqual(pool.queueDepth, 2)
    XCTAssertFalse(pool.submit {}, "the third waiting job is refused")
    release.signal()
  }

  func testLRUCacheEvictsTheLeastRecentAndStaysWithinBudgetUnderConcurrentUse() {
    let cache = LRUCache<Int, Int>(budget: 10)
    cache.insert(1, for: 1, cost: 4)
    cache.insert(2, for: 2, cost: 4)
    XCTAssertEqual(cache.value(for: 1), 1)  // 1 is now more recent than 2
    cache.insert(3, for: 3, cost: 4)
    XCTAssertNil(cache.value(for: 2), "the least recent entry goes first")
    XCTAssertEqual(cache.value(for: 1), 1)
    XCTAssertEqual(cache.value(for: 3), 3)
    XCTAssertFalse(cache.insert(4, for: 4, cost: 11), "costlier than the budget: not kept")
    XCTAssertEqual(cache.totalCost, 8)

    let shared = LRUCache<Int, Int>(budget: 100)
    DispatchQueue.concurrentPerform(iterations: 8) { thread in
      for i in 0..<2000 {
        let key = (i * 7 + thread) % 150
        if let value = shared.value(for: key) { XCTAssertEqual(value, key * 2) }
        shared.insert(key * 2, for: key, cost: 1 + key % 3)
        if i % 50 == 0 { shared.removeValue(for: key) }
      }
    }
    XCTAssertLessThanOrEqual(shared.totalCost, 100)
  }

  func testProgramCacheCompilesOnceAndHandsEachThreadItsOwnWorkspace() throws {
    let cache = ProgramCache(budget: 1 << 20, workers: 4)
    let graph = try ExprParser.parse("sum(x * x)")
    let key = ProgramKey(function: "e sum(x * x)", shapes: [[3]])
    let compiles = Counts(1)
    DispatchQueue.concurrentPerform(iterations: 8) { thread in
      for i in 0..<200 {
        let compiled = try? cache.program(for: key, names: ["x"]) { () throws(Problem) -> Program in
          compiles.add(0, 1)
          do throws(Diagnostic) {
            return try GraphCompiler.compile(graph, inputShapes: ["x": [3]])
          } catch {
            throw .unprocessable(error.message, pointer: "")
          }
        }
        let x = Double(thread * 1000 + i)
        let gradient = try? compiled?.withWorkspace { workspace throws(Problem) in
          compiled!.load([Tensor(shape: [3], scalars: [x, x + 1, x + 2])], into: workspace)
          return workspace.valueWithPullback().adjoints[0].scalars
        }
        XCTAssertEqual(gradient, [2 * x, 2 * x + 2, 2 * x + 4])
      }
    }
    XCTAssertLessThanOrEqual(compiles.values[0], 8, "compiled at most once per racing thread, not per request")
    XCTAssertEqual(cache.hits + cache.misses, 1600)
    XCTAssertGreaterThanOrEqual(cache.hits, 1592)
  }

  func testTheServiceInProcessUnderConcurrentClients() throws {
    var configuration = ServiceConfiguration(port: 0, workers: 2)
    configuration.http.maxConnections = 64
    let server = AdjointServer(configuration: configuration)
    let port = try server.start()
    defer {
      server.shutdown()
      server.wait()
    }
    let points = (0..<200).map { #"{"x": \#(Double($0) / 100), "y": 0.5}"# }.joined(separator: ",")
    // 162 x 162 matrices: each product is 4.25M multiply-adds, so it runs as two halves, on two workers when the other
    // is idle; the answers must not depend on which.
    func matrix(_ seed: Int) -> String {
      "["
        + (0..<162).map { i in
          "[" + (0..<162).map { j in "\(((i * 31 + j * 17 + seed) % 97) - 48)e-2" }.joined(separator: ",") + "]"
        }.joined(separator: ",") + "]"
    }
    let bodies: [(String, String)] = [
      ("/gradient", #"{"expr": "sin(x*y) + x^2", "at": {"x": 1.5, "y": -0.5}}"#),
      ("/hessian", #"{"expr": "(1 - x)^2 + 100*(y - x^2)^2", "batch": [\#(points)]}"#),
      (
        "/jacobian",
        #"{"expr": "tanh(x) * sum(x^2)", "at": {"x": [\#((0..<80).map { "\(Double($0) / 80)" }.joined(separator: ","))]}}"#
      ),
      (
        "/hessian",
        #"{"expr": "sum(tanh(x))^2", "at": {"x": [\#((0..<70).map { "\(Double($0) / 70)" }.joined(separator: ","))]}}"#
      ),
      ("/gradient", #"{"expr": "sum(tanh(X @ W) * X)", "at": {"X": \#(matrix(1)), "W": \#(matrix(2))}}"#),
    ]
    let expected = try bodies.map { path, body -> String in
      let connection = try RawConnection(port: port)
      connection.post(path, body)
      return try XCTUnwrap(connection.read()?.body)
    }
    for (body, (path, _)) in zip(expected, bodies) { XCTAssertFalse(body.contains("\"status\""), "\(path): \(body)") }
    DispatchQueue.concurrentPerform(iterations: 6) { client in
      guard let connection = try? RawConnection(port: port) else { return XCTFail("cannot connect") }
      for round in 0..<6 {
        let (path, body) = bodies[(client + round) % bodies.count]
        connection.post(path, body)
        XCTAssertEqual(connection.read()?.body, expected[(client + round) % bodies.count], "\(path) from \(client)")
      }
    }
  }
}

/// Counters that several threads bump.
private final class Counts: @unchecked Sendable {
  private let lock = NSLock()
  private var storage: [Int]

  init(_ count: Int) { storage = Array(repeating: 0, count: count) }

  func add(_ index: Int, _ amount: Int) {
    lock.lock()
    storage[index] += amount
    lock.unlock()
  }

  var values: [Int] {
    lock.lock()
    defer { lock.unlock() }
    return storage
  }
}

/// The media-type check every POST passes through (byte comparisons, no allocation).
final class ContentTypeTests: XCTestCase {
  func testJSONMediaTypes() {
    for accepted in [
      "application/json", "Application/JSON", "application/json; charset=utf-8", " application/json ;x=y",
      "\tAPPLICATION/json\t", "application/json;",
    ] {
      XCTAssertTrue(Service.isJSON(accepted), accepted)
    }
    for refused in [
      nil, "", "application/jsonx", "application/problem+json", "text/plain", "application/js", "application/json5",
      "application /json", "application\u{2F}jsoN\u{0}", "xapplication/json", "application/json\u{0}",
      ";application/json",
      "application-json",
    ] as [String?] {
      XCTAssertFalse(Service.isJSON(refused), refused ?? "nil")
    }
  }
}
