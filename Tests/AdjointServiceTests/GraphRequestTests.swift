import Foundation
import XCTest

/// The JSON `graph` form of a function, through the real `adjoint serve` subprocess.
final class GraphRequestTests: LiveServerTestCase {
  private func post(_ path: String, _ body: String) throws -> (status: Int, body: String, json: [String: Any]?) {
    let connection = try RawConnection(port: try serverPort())
    connection.post(path, body)
    let response = try XCTUnwrap(connection.read(), body)
    return (response.status, response.body, response.json as? [String: Any])
  }

  private func entries(_ json: [String: Any]?) -> [String] {
    ((json?["errors"] as? [[String: Any]]) ?? []).map {
      "\($0["pointer"] as? String ?? "?") \($0["message"] as? String ?? "?")"
    }
  }

  func testEvaluateReturnsEveryOutputByID() throws {
    let response = try post(
      "/evaluate",
      #"{"graph": {"nodes": [{"id": "b", "op": "mul", "args": ["a", 2]}, {"id": "a", "op": "exp", "args": ["x"]}], "outputs": ["a", "b"]}, "at": {"x": 0}}"#
    )
    XCTAssertEqual(response.status, 200, response.body)
    XCTAssertEqual(response.body, #"{"values":{"a":1.0,"b":2.0}}"#)
  }

  func testGradientOfTheContractExampleMatchesTheExpr() throws {
    let at = #""at": {"x": [1, -1, 0.5], "W": [[1, 2], [3, 4], [5, 6]]}"#
    let graph = try post(
      "/gradient",
      #"{"graph": {"inputs": {"x": [3], "W": [3, 2]}, "nodes": [{"id": "h", "op": "matmul", "args": ["x", "W"]}, {"id": "a", "op": "tanh", "args": ["h"]}, {"id": "s", "op": "mul", "args": ["a", 0.5]}, {"id": "loss", "op": "sum", "args": ["s"], "attrs": {"axis": 0}}], "outputs": ["loss"]}, \#(at)}"#
    )
    let expr = try post("/gradient", #"{"expr": "loss = sum(tanh(x @ W) * 0.5, axis=0)", \#(at)}"#)
    XCTAssertEqual(graph.status, 200, graph.body)
    XCTAssertEqual(graph.body, expr.body)
  }

  func testDeclaredShapesAreChecked() throws {
    let response = try post(
      "/evaluate",
      #"{"graph": {"inputs": {"x": [2]}, "nodes": [{"id": "y", "op": "sin", "args": ["x"]}]}, "at": {"x": [1, 2, 3]}}"#)
    XCTAssertEqual(response.status, 422, response.body)
    XCTAssertEqual(entries(response.json), ["/at/x the value of 'x' has shape [3], but the graph declares [2]"])
  }

  func testErrorsCarryPointersAndAreReportedTogether() throws {
    let unknown = try post(
      "/evaluate",
      #"{"graph": {"inputs": {"x": []}, "nodes": [{"id": "a", "op": "tanh", "args": ["hh"]}, {"id": "a", "op": "frob", "args": ["x"]}, {"id": "c", "op": "sin", "args": ["x", "zz"]}]}, "at": {"x": 1}}"#
    )
    XCTAssertEqual(unknown.status, 422, unknown.body)
    XCTAssertEqual(
      entries(unknown.json),
      [
        "/graph/nodes/1/id duplicate id 'a'", "/graph/nodes/0/args/0 unknown name 'hh'",
        "/graph/nodes/1/op unknown op 'frob'", "/graph/nodes/2/args sin takes 1 argument, not 2",
        "/graph/nodes/2/args/1 unknown name 'zz'",
      ])
    XCTAssertNil((unknown.json?["errors"] as? [[String: Any]])?.first?["position"], "no position for a graph")
    let types = try post("/evaluate", #"{"graph": {"nodes": [{"id": 1, "op": "sin", "args": [null]}]}, "at": {}}"#)
    XCTAssertEqual(types.status, 400, types.body)
    XCTAssertEqual(
      entries(types.json),
      [
        "/graph/nodes/0/id 'id' must be a string, not a number",
        "/graph/nodes/0/args/0 an argument must be a node id, an input name or a number, not null",
      ])
    let cycle = try post(
      "/evaluate",
      #"{"graph": {"nodes": [{"id": "a", "op": "sin", "args": ["b"]}, {"id": "b", "op": "cos", "args": ["a"]}]}, "at": {}}"#
    )
    XCTAssertEqual(cycle.status, 422, cycle.body)
    XCTAssertEqual(entries(cycle.json), ["/graph/nodes/0 the graph has a cycle of 2 nodes: 'a' -> 'b' -> 'a'"])
    let shapes = try post(
      "/evaluate",
      #"{"graph": {"nodes": [{"id": "a", "op": "add", "args": ["x", "y"]}]}, "at": {"x": [1, 2], "y": [1, 2, 3]}}"#)
    XCTAssertEqual(shapes.status, 422, shapes.body)
    XCTAssertEqual(entries(shapes.json), ["/graph/nodes/0 add: cannot broadcast shapes [2] and [3]"])
  }

  func testExactlyOneFunction() throws {
    for body in [
      #"{"expr": "x", "graph": {"nodes": []}, "at": {"x": 1}}"#, #"{"at": {"x": 1}}"#,
      #"{"graph": [], "at": {"x": 1}}"#,
    ] {
      XCTAssertEqual(try post("/evaluate", body).status, 400, body)
    }
    XCTAssertEqual(try post("/evaluate", #"{"graph_id": "sha256:00", "at": {}}"#).status, 404)
  }

  func testNodeLimitIsInclusive() throws {
    func chain(_ count: Int) -> String {
      var nodes: [String] = []
      nodes.reserveCapacity(count)
      for index in 0..<count {
        nodes.append(#"{"id":"n\#(index)","op":"neg","args":["\#(index == 0 ? "x" : "n\(index - 1)")"]}"#)
      }
      return #"{"graph":{"nodes":[\#(nodes.joined(separator: ","))]},"at":{"x":1}}"#
    }
    let atLimit = try post("/evaluate", chain(100_000))
    XCTAssertEqual(atLimit.status, 200, String(atLimit.body.prefix(300)))
    XCTAssertEqual(atLimit.body, #"{"values":{"n99999":1.0}}"#)
    let over = try post("/evaluate", chain(100_001))
    XCTAssertEqual(over.status, 413, String(over.body.prefix(300)))
    XCTAssertEqual(entries(over.json), ["/graph/nodes the graph has 100001 nodes, more than the limit of 100000"])
  }
}
