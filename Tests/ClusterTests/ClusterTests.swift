import Foundation
import ServerTestSupport
import Synchronization
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// Three replicas behind nginx on loopback (scripts/cluster): requests spread over all of them, a replica stopped
/// with SIGTERM under load loses no request, and graph ids work across replicas through re-registration.
final class ClusterTests: XCTestCase {
  /// `sin(x*y) + x^2` at `(x, y)`: the value and both partial derivatives, in closed form.
  private static func expected(x: Double, y: Double) -> (value: Double, dx: Double, dy: Double) {
    (sin(x * y) + x * x, y * cos(x * y) + 2 * x, x * cos(x * y))
  }

  private static func close(_ a: Any?, _ b: Double) -> Bool {
    guard let a = a as? Double else { return false }
    return abs(a - b) <= 1e-12 * max(1, abs(b))
  }

  /// A gradient request whose answer `isCorrect` can check: one point, or a batch of `points` points.
  private struct Probe {
    var body: String
    var points: [(x: Double, y: Double)]
    var batch: Bool

    init(seed: Int, points count: Int) {
      points = (0..<count).map { (x: Double((seed + $0) % 1000) / 250 - 2, y: -0.5 + Double($0 % 7) / 10) }
      batch = count > 1
      let at = points.map { #"{"x": \#($0.x), "y": \#($0.y)}"# }
      body =
        batch
        ? #"{"expr": "sin(x*y) + x^2", "batch": [\#(at.joined(separator: ", "))]}"#
        : #"{"expr": "sin(x*y) + x^2", "at": \#(at[0])}"#
    }

    func isCorrect(_ exchange: Exchange) -> Bool {
      guard exchange.status == 200, let object = exchange.object else { return false }
      let answers: [[String: Any]]
      if batch {
        guard let results = object["results"] as? [[String: Any]] else { return false }
        answers = results
      } else {
        answers = [object]
      }
      guard answers.count == points.count else { return false }
      return zip(answers, points).allSatisfy { answer, point in
        let want = ClusterTests.expected(x: point.x, y: point.y)
        let gradient = answer["gradient"] as? [String: Any]
        return ClusterTests.close(answer["value"], want.value) && ClusterTests.close(gradient?["x"], want.dx)
          && ClusterTests.close(gradient?["y"], want.dy)
      }
    }
  }

  func testRequestsSpreadOverEveryReplica() throws {
    let cluster = try Cluster(replicas: 3)
    var counts: [String: Int] = [:]
    let total = 90
    for i in 0..<total {
      let probe = Probe(seed: i, points: 1)
      let answer = try HTTP.post(cluster.url, "gradient", probe.body)
      XCTAssertTrue(
        probe.isCorrect(answer), "request \(i): \(answer.status) \(String(decoding: answer.body, as: UTF8.self))")
      counts[answer.answeredBy, default: 0] += 1
    }
    XCTAssertEqual(Set(counts.keys), Set(cluster.replicas.map(\.address)), "answered by \(counts)")
    for replica in cluster.replicas {
      // Round robin gives each a third; a quarter of that is a generous floor.
      XCTAssertGreaterThanOrEqual(counts[replica.address] ?? 0, total / 12, "\(counts)")
      // What nginx says answered is what the replica counted itself.
      XCTAssertEqual(try replica.gradients(answered: 200), counts[replica.address] ?? 0, replica.address)
    }
  }

  func testStoppingAReplicaUnderLoadLosesNoRequest() throws {
    let cluster = try Cluster(replicas: 3)
    let victim = cluster.replicas[0]

    struct Record {
      var started: Date
      var answeredBy: String
      var retried: Bool
      var failure: String?
    }
    let records = Mutex<[Record]>([])
    let stop = Atomic<Bool>(false)
    let clients = 6
    let url = cluster.url
    let group = DispatchGroup()
    for client in 0..<clients {
      DispatchQueue.global().async(group: group) {
        var sent = 0
        // Bounded: at most 3,000 requests per client, and the test stops them after a few seconds.
        while !stop.load(ordering: .relaxed) && sent < 3000 {
          // Every fifth request is a 256-point batch, so that requests are in flight when SIGTERM comes.
          let probe = Probe(seed: client * 10_000 + sent, points: sent % 5 == 4 ? 256 : 1)
          let started = Date()
          var record = Record(started: started, answeredBy: "", retried: false, failure: nil)
          do {
            let answer = try HTTP.post(url, "gradient", probe.body)
            record.answeredBy = answer.answeredBy
            record.retried = answer.upstream.contains(",")
            if !probe.isCorrect(answer) {
              record.failure = "\(answer.status) \(String(decoding: answer.body.prefix(300), as: UTF8.self))"
            }
          } catch {
            record.failure = "\(error)"
          }
          records.withLock { $0.append(record) }
          sent += 1
        }
      }
    }
    func waitFor(_ condition: () -> Bool, seconds: Double) -> Bool {
      let deadline = Date().addingTimeInterval(seconds)
      while !condition() {
        if Date() > deadline { return false }
        usleep(10_000)
      }
      return true
    }
    defer {
      stop.store(true, ordering: .relaxed)
      group.wait()
    }

    // Load first, then SIGTERM to one replica while the clients keep sending.
    XCTAssertTrue(waitFor({ records.withLock { $0.count } >= 150 }, seconds: 60), "the load did not start")
    let killed = Date()
    XCTAssertEqual(kill(victim.pid, SIGTERM), 0)
    XCTAssertTrue(waitFor({ Cluster.hasExited(victim.pid) }, seconds: 40), "the replica did not exit after SIGTERM")
    let gone = Date()
    let before = records.withLock { $0.count }
    XCTAssertTrue(waitFor({ records.withLock { $0.count } >= before + 300 }, seconds: 60), "the load stalled")
    stop.store(true, ordering: .relaxed)
    group.wait()

    let all = records.withLock { $0 }
    let failures = all.compactMap(\.failure)
    XCTAssertEqual(failures.count, 0, "\(failures.count) of \(all.count) requests failed, e.g. \(failures.prefix(3))")
    let survivors = Set(cluster.replicas.dropFirst().map(\.address))
    XCTAssertGreaterThan(all.filter { $0.started < killed && $0.answeredBy == victim.address }.count, 0)
    let after = all.filter { $0.started > gone }
    XCTAssertEqual(after.filter { $0.answeredBy == victim.address }.count, 0, "the stopped replica answered")
    XCTAssertEqual(
      Set(after.map(\.answeredBy)), survivors, "after the stop, answered by \(Set(after.map(\.answeredBy)))")
    print(
      "cluster: \(all.count) requests, \(all.filter(\.retried).count) retried by nginx on another replica, "
        + "replica stopped in \(String(format: "%.2f", gone.timeIntervalSince(killed))) s, \(failures.count) failed")
  }

  func testGraphIDsWorkAcrossReplicasByRegisteringAgain() throws {
    let cluster = try Cluster(replicas: 3)
    let graph = #"{"expr": "loss = sum(x * x)"}"#
    let registered = try HTTP.post(cluster.url, "graphs", graph)
    XCTAssertEqual(registered.status, 201)
    let id = try XCTUnwrap(registered.object?["id"] as? String)

    // Each replica has a registry of its own: only the one that took the POST knows the id.
    func knowing() throws -> [String] {
      try cluster.replicas.filter {
        try HTTP.send("GET", $0.url.appendingPathComponent("graphs").appendingPathComponent(id)).status == 200
      }.map(\.address)
    }
    XCTAssertEqual(try knowing(), [registered.answeredBy])

    // What the SDK does: a 404 for the id is answered by registering the graph again (the same content gets the same
    // id, on whichever replica takes it) and sending the request again.
    var notFound = 0
    for i in 0..<12 {
      let body = #"{"graph_id": "\#(id)", "at": {"x": [\#(i), 2]}}"#
      var answer = try HTTP.post(cluster.url, "gradient", body)
      var attempts = 0
      while answer.status == 404 && attempts < 3 {
        XCTAssertEqual(answer.object?["type"] as? String, "https://adjoint.dev/problems/unknown-graph")
        notFound += 1
        attempts += 1
        let again = try HTTP.post(cluster.url, "graphs", graph)
        XCTAssertEqual(again.object?["id"] as? String, id)
        answer = try HTTP.post(cluster.url, "gradient", body)
      }
      XCTAssertEqual(answer.status, 200, String(decoding: answer.body, as: UTF8.self))
      let gradient = answer.object?["gradient"] as? [String: Any]
      XCTAssertEqual(gradient?["x"] as? [Double], [Double(2 * i), 4])
    }
    XCTAssertGreaterThan(notFound, 0, "no replica ever lacked the id: the test did not cross replicas")
    XCTAssertGreaterThan(try knowing().count, 1, "the graph was never registered again on another replica")
  }

  /// `adjoint health`, the image's HEALTHCHECK: 0 when /healthz answers 200, 1 for any other status or no answer.
  func testHealthCommand() throws {
    let cluster = try Cluster(replicas: 1)
    let replica = cluster.replicas[0]
    let port = try XCTUnwrap(replica.url.port)
    XCTAssertEqual(try ServerProcess.health(["--url", replica.url.absoluteString]), 0)
    // As in the image: ADJOINT_HOST=0.0.0.0 is asked on loopback.
    XCTAssertEqual(
      try ServerProcess.health([], environment: ["ADJOINT_HOST": "0.0.0.0", "ADJOINT_PORT": "\(port)"]), 0)
    XCTAssertEqual(
      try ServerProcess.health([], environment: ["ADJOINT_HOST": "127.0.0.1", "ADJOINT_PORT": "\(port)"]), 0)
    // Through nginx, then with the replica gone: nginx answers 502, which is not healthy.
    XCTAssertEqual(try ServerProcess.health(["--url", cluster.url.absoluteString]), 0)
    XCTAssertEqual(kill(replica.pid, SIGTERM), 0)
    let deadline = Date().addingTimeInterval(40)
    while !Cluster.hasExited(replica.pid) && Date() < deadline { usleep(10_000) }
    XCTAssertEqual(try HTTP.send("GET", cluster.url.appendingPathComponent("healthz")).status, 502)
    XCTAssertEqual(try ServerProcess.health(["--url", cluster.url.absoluteString]), 1)
    // No server at all.
    XCTAssertEqual(try ServerProcess.health(["--url", replica.url.absoluteString, "--timeout", "1"]), 1)
  }
}
