import AdjointJSON
import Foundation
import ServerTestSupport
import XCTest

@testable import AdjointClient

/// The `adjoint` subcommands as subprocesses (local and against a server), the examples of openapi.yaml through
/// the SDK's wire types, and the example's training loop.
final class CommandAndExampleTests: XCTestCase {
  private let adjoint = ServerProcess.executable

  func testTheCommandPrintsTheEndpointsBodyLocallyAndFromAServer() async throws {
    let server = try ServerProcess()
    let client = try AdjointClient(url: server.url)
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("adjoint-cli-\(UUID().uuidString)")
    try Data("[[1, 2], [3, 4]]".utf8).write(to: directory)
    defer { try? FileManager.default.removeItem(at: directory) }
    let cases: [(Endpoint, [String], String)] = [
      (
        .gradient, ["grad", "sin(x*y) + x^2", "--at", "x=1.5", "--at", "y=-0.5"],
        #"{"expr":"sin(x*y) + x^2","at":{"x":1.5,"y":-0.5}}"#
      ),
      (
        .gradient, ["grad", "sum(W @ x)", "--at", "W=@\(directory.path)", "--at", "x=[1, -1]", "--wrt", "W"],
        #"{"expr":"sum(W @ x)","at":{"W":[[1, 2], [3, 4]],"x":[1, -1]},"wrt":["W"]}"#
      ),
      (.evaluate, ["eval", "y = exp(x) * 2", "--at", "x=0"], #"{"expr":"y = exp(x) * 2","at":{"x":0}}"#),
      (
        .jacobian, ["jacobian", "y = x * x", "--at", "x=[1, 2]", "--mode", "reverse"],
        #"{"expr":"y = x * x","at":{"x":[1, 2]},"mode":"reverse"}"#
      ),
      (.hessian, ["hessian", "x^2 * y", "--at", "x=1", "--at", "y=2"], #"{"expr":"x^2 * y","at":{"x":1,"y":2}}"#),
    ]
    for (endpoint, arguments, body) in cases {
      let expected = String(decoding: try await client.send(endpoint, body: Array(body.utf8)), as: UTF8.self)
      let local = try runProgram(adjoint, arguments + ["--json"])
      XCTAssertEqual(local.status, 0, local.error)
      XCTAssertEqual(local.output, expected + "\n", arguments.joined(separator: " "))
      let remote = try runProgram(adjoint, arguments + ["--json", "--server", server.url.absoluteString])
      XCTAssertEqual(remote.status, 0, remote.error)
      XCTAssertEqual(remote.output, expected + "\n")
    }

    // The table: the value, then one row per input.
    let table = try runProgram(adjoint, ["grad", "sin(x*y) + x^2", "--at", "x=1.5", "--at", "y=-0.5"])
    XCTAssertEqual(
      table.output,
      "value: 1.568361239976666\n\ngradient  value\nx         2.6341555655630895\ny         1.0975333033107313\n")
    let matrix = try runProgram(adjoint, ["jacobian", "y = x * x", "--at", "x=[1, 2]"])
    XCTAssertTrue(matrix.output.contains("x         [2.0,0.0]\n          [0.0,4.0]\n"), matrix.output)

    // A mistake: exit 1, the message and a caret under the position; with --json, the problem body.
    let wrong = try runProgram(adjoint, ["grad", "x +", "--at", "x=1"])
    XCTAssertEqual(wrong.status, 1)
    XCTAssertTrue(wrong.error.contains("400 Syntax error"), wrong.error)
    XCTAssertTrue(wrong.error.hasSuffix("  x +\n     ^\n"), wrong.error)
    let wrongJSON = try runProgram(
      adjoint, ["grad", "x +", "--at", "x=1", "--json", "--server", server.url.absoluteString])
    XCTAssertEqual(wrongJSON.status, 1)
    let problem = try JSONParser.parse(wrongJSON.output)
    XCTAssertEqual(problem["errors"]?[0]?["position"]?.intValue, 3)
    let unreadable = try runProgram(adjoint, ["grad", "x", "--at", "x=[1,"])
    XCTAssertNotEqual(unreadable.status, 0)
    XCTAssertTrue(unreadable.error.contains("not JSON"), unreadable.error)
  }

  // MARK: openapi.yaml's examples

  private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
  private static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures")

  func testTheFixtureIsWhatOpenAPIYAMLSays() throws {
    let script = Self.fixture.appendingPathComponent("extract_examples.py").path
    let hasYAML = try tool(["python3", "-c", "import yaml"]).status == 0
    try XCTSkipUnless(hasYAML, "needs python3 with PyYAML")
    let extracted = try tool(["python3", script, Self.root.appendingPathComponent("openapi.yaml").path])
    XCTAssertEqual(extracted.status, 0, extracted.error)
    let checkedIn = try String(
      contentsOf: Self.fixture.appendingPathComponent("openapi-examples.json"), encoding: .utf8)
    XCTAssertEqual(
      extracted.output, checkedIn,
      "openapi.yaml's examples changed: run python3 \(script) openapi.yaml > Tests/AdjointClientTests/Fixtures/openapi-examples.json"
    )
  }

  func testEveryExampleGoesThroughTheWireTypes() async throws {
    let data = try Data(contentsOf: Self.fixture.appendingPathComponent("openapi-examples.json"))
    guard case .array(let examples) = try JSONParser.parse([UInt8](data)) else { return XCTFail("not a list") }
    let client = AdjointClient.local(workers: 2)
    var decoded = 0
    var sent = 0
    for example in examples {
      let route = example["route"]!.stringValue!
      let name = example["name"]!.stringValue!
      let value = example["value"]!
      let endpoint = Endpoint(rawValue: String(route.dropFirst()))
      if example["kind"]?.stringValue == "response" {
        // Every documented answer decodes into the SDK's types.
        try Self.decode(route: route, value)
        decoded += 1
        continue
      }
      guard let endpoint else {
        // POST /graphs: the documented request gets the documented id.
        guard route == "/graphs", let expr = value["expr"]?.stringValue else { continue }
        let registered = try await client.register(expr)
        let documented = examples.first {
          $0["route"]?.stringValue == "/graphs" && $0["kind"]?.stringValue == "response"
        }?["value"]?["id"]?.stringValue
        XCTAssertEqual(registered.id, documented)
        sent += 1
        continue
      }
      // Every documented request, sent through the SDK, gets the documented answer (to 1e-12).
      var writer = JSONWriter()
      writer.write(value)
      let answer = try JSONParser.parse(try await client.send(endpoint, body: writer.bytes))
      try Self.decode(route: route, answer)
      let documented = examples.first {
        $0["route"]?.stringValue == route && $0["kind"]?.stringValue == "response"
          && $0["name"]?.stringValue == name
      }
      if let documented = documented?["value"] {
        XCTAssertTrue(Self.close(answer, documented), "\(route) \(name): \(answer) vs \(documented)")
      }
      sent += 1
    }
    XCTAssertGreaterThanOrEqual(decoded, 15)
    XCTAssertGreaterThanOrEqual(sent, 11)
  }

  /// Decodes a response of `route` with the SDK's type for it (each point of a batch too).
  private static func decode(route: String, _ value: JSONValue) throws {
    if let results = value["results"]?.arrayValue {
      for item in results { try decode(route: route, item) }
      return
    }
    switch route {
    case "/evaluate": _ = try Evaluation(json: value)
    case "/gradient": _ = try GradientResult(json: value)
    case "/vjp": _ = try VJPResult(json: value)
    case "/jvp": _ = try JVPResult(json: value)
    case "/jacobian": _ = try JacobianResult(json: value)
    case "/hessian": _ = try HessianResult(json: value)
    case "/gradcheck": _ = try GradientCheck(json: value)
    case "/graphs": XCTAssertNotNil(value["id"]?.stringValue)
    case "/graphs/{id}": XCTAssertNotNil(value["nodes"]?.arrayValue)
    case "/ops": XCTAssertFalse(value["ops"]?.arrayValue?.isEmpty ?? true)
    default: XCTAssertNotNil(value["status"]?.stringValue, route)
    }
  }

  /// Equal JSON, numbers to 1e-12 (relative for large ones; the finite differences of /gradcheck to 1e-6).
  private static func close(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.number(let x), .number(let y)): return Swift.abs(x - y) <= 1e-6 * Swift.max(1, Swift.abs(y))
    case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { close($0, $1) }
    case (.object(let x), .object(let y)):
      // Members in any order (the fixture sorts its keys).
      return x.keys.sorted() == y.keys.sorted()
        && x.allSatisfy { member in y[member.key].map { close(member.value, $0) } ?? false }
    default: return a == b
    }
  }

  // MARK: The example's training loop

  func testTheExamplesTrainingLoopReachesTheOptimumLocallyAndRemotely() async throws {
    // LinearRegression is the example's own Training.swift (a symbolic link in this folder).
    let local = try await LinearRegression.train(with: .local(workers: 2))
    XCTAssertLessThanOrEqual(local.finalLoss - local.optimalLoss, 1e-6)
    XCTAssertGreaterThanOrEqual(local.finalLoss, local.optimalLoss - 1e-12)
    XCTAssertLessThan(local.steps, 1000)
    // The service's loss at the fit is the mean squared error computed in Swift.
    let (x, y) = LinearRegression.syntheticData()
    XCTAssertEqual(LinearRegression.mse(local.weights, local.bias, x, y), local.finalLoss, accuracy: 1e-12)
    let server = try ServerProcess()
    let remote = try await LinearRegression.train(with: try AdjointClient(url: server.url))
    XCTAssertEqual(remote.steps, local.steps)
    XCTAssertEqual(remote.finalLoss, local.finalLoss, accuracy: 1e-12)
  }
}
