import AdjointEngine
import AdjointExpressions
import AdjointJSON
import XCTest

/// Decodes `json` as the `graph` member of a request.
func decodeGraph(_ json: String, limits: GraphDecoder.Limits = GraphDecoder.Limits()) throws -> Graph {
  try GraphDecoder.decode(try JSONParser.parse(json), at: "/graph", limits: limits)
}

final class GraphDecoderTests: XCTestCase {
  private func assertErrors(
    _ json: String, _ kind: Diagnostic.Kind, _ expected: [(String, String)],
    limits: GraphDecoder.Limits = GraphDecoder.Limits(), file: StaticString = #filePath, line: UInt = #line
  ) {
    do {
      let graph = try decodeGraph(json, limits: limits)
      XCTFail("decoded: \(graph.nodes.count) nodes", file: file, line: line)
    } catch let error as Diagnostics {
      XCTAssertEqual(error.kind, kind, file: file, line: line)
      XCTAssertEqual(
        error.entries.map { "\($0.pointer?.description ?? "?") \($0.message)" },
        expected.map { "\($0.0) \($0.1)" }, file: file, line: line)
      XCTAssertTrue(error.entries.allSatisfy { $0.kind == kind }, file: file, line: line)
    } catch {
      XCTFail("unexpected \(error)", file: file, line: line)
    }
  }

  /// Compiles `graph` for `inputs` and evaluates every output.
  private func evaluate(_ graph: Graph, _ inputs: [String: Tensor]) throws -> [String: Tensor] {
    let program = try GraphCompiler.compile(graph, inputShapes: inputs.mapValues(\.shape))
    let ws = Workspace(program)
    ws.setInputs(inputs)
    return Dictionary(uniqueKeysWithValues: zip(program.outputs.map(\.name), ws.evaluate()))
  }

  func testTheContractExample() throws {
    let graph = try decodeGraph(
      """
      {"inputs": {"x": [2], "W": [2, 3]},
       "nodes": [
         {"id": "loss", "op": "sum", "args": ["s"], "attrs": {"axis": 0}},
         {"id": "h", "op": "matmul", "args": ["x", "W"]},
         {"id": "s", "op": "mul", "args": ["a", 0.5]},
         {"id": "a", "op": "tanh", "args": ["h"]}
       ],
       "outputs": ["loss"]}
      """)
    XCTAssertEqual(graph.inputNames, ["x", "W"], "declared inputs, in declaration order")
    XCTAssertEqual(graph.declaredShapes, ["x": [2], "W": [2, 3]])
    XCTAssertEqual(graph.source, .json(at: "/graph"))
    // Topological: h, a, s, loss (the listed order where possible); positions are the listed indices.
    let operations = graph.nodes.compactMap { node -> Int? in
      if case .operation = node.kind { node.position } else { nil }
    }
    XCTAssertEqual(operations, [1, 3, 2, 0])
    let x = Tensor(shape: [2], scalars: [0.5, -1])
    let w = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
    let values = try evaluate(graph, ["x": x, "W": w])
    let h = [0.5 * 1 - 4, 0.5 * 2 - 5, 0.5 * 3 - 6]
    XCTAssertEqual(values["loss"]!.scalars[0], h.map { tanh($0) * 0.5 }.reduce(0, +), accuracy: 1e-15)
  }

  func testDefaultsOutputAndImplicitInputs() throws {
    let graph = try decodeGraph(
      #"{"nodes": [{"id": "a", "op": "mul", "args": ["x", "y"]}, {"id": "b", "op": "sin", "args": ["a"]}]}"#)
    XCTAssertEqual(graph.inputNames, ["x", "y"])
    XCTAssertEqual(graph.outputs.map(\.name), ["b"], "the last node listed")
    XCTAssertEqual(try evaluate(graph, ["x": Tensor(2), "y": Tensor(3)])["b"], Tensor(sin(6)))
    let single = try decodeGraph(
      #"{"nodes": [{"id": "a", "op": "exp", "args": ["x"]}, {"id": "b", "op": "sin", "args": ["a"]}], "output": "a"}"#)
    XCTAssertEqual(single.outputs.map(\.name), ["a"])
  }

  func testSeveralOutputsAndAnInputAsOutput() throws {
    let graph = try decodeGraph(
      #"{"inputs": {"x": []}, "nodes": [{"id": "a", "op": "exp", "args": ["x"]}, {"id": "b", "op": "neg", "args": ["a"]}], "outputs": ["b", "a", "x", "b"]}"#
    )
    XCTAssertEqual(graph.outputs.map(\.name), ["b", "a", "x"])
    let values = try evaluate(graph, ["x": Tensor(1)])
    XCTAssertEqual(values["a"], Tensor(exp(1)))
    XCTAssertEqual(values["b"], Tensor(-exp(1)))
    XCTAssertEqual(values["x"], Tensor(1))
  }

  func testLiteralsAreSharedConstants() throws {
    let graph = try decodeGraph(
      #"{"nodes": [{"id": "a", "op": "add", "args": ["x", 2]}, {"id": "b", "op": "mul", "args": ["a", 2]}]}"#)
    let constants = graph.nodes.filter { if case .constant = $0.kind { true } else { false } }
    XCTAssertEqual(constants.count, 1)
    XCTAssertEqual(try evaluate(graph, ["x": Tensor(1)])["b"], Tensor(6))
  }

  func testAttributes() throws {
    let graph = try decodeGraph(
      """
      {"nodes": [
        {"id": "c", "op": "const", "attrs": {"value": [[1, 2], [3, 4]]}},
        {"id": "v", "op": "const", "attrs": {"value": [10, 20]}},
        {"id": "s", "op": "const", "attrs": {"value": "NaN"}},
        {"id": "p", "op": "add", "args": ["c", "v"]},
        {"id": "r", "op": "sum", "args": ["p"], "attrs": {"axis": [0], "keepdims": true}},
        {"id": "t", "op": "slice", "args": ["p"], "attrs": {"axis": -1, "start": 1, "stop": 2, "step": 1}},
        {"id": "q", "op": "reshape", "args": ["p"], "attrs": {"shape": [-1]}},
        {"id": "i", "op": "index", "args": ["q"], "attrs": {"indices": [3, 0]}},
        {"id": "u", "op": "transpose", "args": ["p"], "attrs": {"axes": [1, 0]}}
      ], "outputs": ["r", "t", "i", "u", "s"]}
      """)
    let values = try evaluate(graph, [:])
    XCTAssertEqual(values["r"], Tensor(shape: [1, 2], scalars: [11 + 13, 22 + 24]))
    XCTAssertEqual(values["t"], Tensor(shape: [2, 1], scalars: [22, 24]))
    XCTAssertEqual(values["i"], Tensor(shape: [2], scalars: [24, 11]))
    XCTAssertEqual(values["u"], Tensor(shape: [2, 2], scalars: [11, 13, 22, 24]))
    XCTAssertTrue(values["s"]!.scalars[0].isNaN)
  }

  // MARK: Errors

  func testTypeErrorsAre400WithPointers() {
    assertErrors("[]", .syntax, [("/graph", "a graph must be an object, not an array")])
    assertErrors("{}", .syntax, [("/graph", "a graph needs 'nodes', a list of nodes")])
    assertErrors(
      #"{"nodes": {}, "extra": 1}"#, .syntax,
      [
        ("/graph/extra", "unknown member 'extra' (a graph has inputs, nodes, and outputs or output)"),
        ("/graph/nodes", "'nodes' must be a list of nodes, not an object"),
      ])
    assertErrors(
      #"{"inputs": {"x": [2, -1], "y": 3}, "nodes": [7, {"op": 1, "args": "x", "attrs": [], "bad": 0}]}"#, .syntax,
      [
        ("/graph/inputs/x", "a shape must be a list of non-negative integers"),
        ("/graph/inputs/y", "a shape must be a list of non-negative integers"),
        ("/graph/nodes/0", "a node must be an object, not a number"),
        ("/graph/nodes/1/bad", "unknown member 'bad' (a node has id, op, args and attrs)"),
        ("/graph/nodes/1", "a node needs 'id', a string"),
        ("/graph/nodes/1/op", "'op' must be a string, not a number"),
        ("/graph/nodes/1/args", "'args' must be a list, not a string"),
        ("/graph/nodes/1/attrs", "'attrs' must be an object, not an array"),
      ])
    assertErrors(
      #"{"nodes": [{"id": "a", "op": "sum", "args": ["x", true, null], "attrs": {"axis": "one", "keepdims": 1, "shape": [1.5], "start": [1], "value": [[1], [2, 3]], "other": {}}}], "outputs": "a"}"#,
      .syntax,
      [
        ("/graph/nodes/0/args/1", "an argument must be a node id, an input name or a number, not a Boolean"),
        ("/graph/nodes/0/args/2", "an argument must be a node id, an input name or a number, not null"),
        ("/graph/nodes/0/attrs/axis", "'axis' must be an integer or a list of integers, not a string"),
        ("/graph/nodes/0/attrs/keepdims", "'keepdims' must be true or false, not the number 1.0"),
        ("/graph/nodes/0/attrs/shape", "'shape' must be a list of integers, not a list with non-integers"),
        ("/graph/nodes/0/attrs/start", "'start' must be an integer, not a list with non-integers"),
        ("/graph/nodes/0/attrs/value/1", "ragged array: expected 1 elements, found 2"),
        ("/graph/nodes/0/attrs/other", "an attribute must be a number, a list of numbers or a Boolean, not an object"),
        ("/graph/outputs", "'outputs' must be a list of names, not a string"),
      ])
    assertErrors(
      #"{"nodes": [], "outputs": [], "output": "a"}"#, .syntax,
      [("/graph/output", "give either 'outputs' or 'output', not both")])
  }

  func testMeaningErrorsAre422AndReportedTogether() {
    assertErrors(
      """
      {"inputs": {"x": []},
       "nodes": [
         {"id": "a", "op": "tanh", "args": ["x", "x"]},
         {"id": "b", "op": "frobnicate", "args": ["a"]},
         {"id": "hh2", "op": "add", "args": ["a", "hh"]},
         {"id": "a", "op": "exp", "args": ["zz"]},
         {"id": "x", "op": "neg", "args": ["a"]},
         {"id": "c", "op": "concat", "args": []}
       ],
       "outputs": ["a", "nope"]}
      """, .semantic,
      [
        ("/graph/nodes/3/id", "duplicate id 'a'"),
        ("/graph/nodes/4/id", "id 'x' is also the name of an input"),
        ("/graph/nodes/0/args", "tanh takes 1 argument, not 2"),
        ("/graph/nodes/1/op", "unknown op 'frobnicate'"),
        ("/graph/nodes/2/args/1", "unknown name 'hh'"),
        ("/graph/nodes/3/args/0", "unknown name 'zz'"),
        ("/graph/nodes/5/args", "concat takes one or more arguments, not 0"),
        ("/graph/outputs/1", "unknown name 'nope'"),
      ])
    assertErrors(
      #"{"nodes": []}"#, .semantic, [("/graph", "the graph has no output: it lists no nodes and names no outputs")])
  }

  func testErrorsAreCapped() {
    let nodes = (0..<500).map { #"{"id": "n\#($0)", "op": "sin", "args": ["missing\#($0)"]}"# }
    let json = #"{"inputs": {}, "nodes": [\#(nodes.joined(separator: ","))]}"#
    XCTAssertThrowsError(try decodeGraph(json)) { error in
      XCTAssertEqual((error as? Diagnostics)?.entries.count, 100)
      XCTAssertEqual((error as? Diagnostics)?.entries.last?.pointer, "/graph/nodes/99/args/0")
    }
  }

  func testCyclesAreNamed() {
    assertErrors(
      """
      {"nodes": [
        {"id": "out", "op": "sin", "args": ["c"]},
        {"id": "a", "op": "add", "args": ["x", "c"]},
        {"id": "b", "op": "exp", "args": ["a"]},
        {"id": "c", "op": "mul", "args": ["b", 2]}
      ]}
      """, .semantic, [("/graph/nodes/1", "the graph has a cycle of 3 nodes: 'a' -> 'b' -> 'c' -> 'a'")])
    assertErrors(
      #"{"nodes": [{"id": "x1", "op": "exp", "args": ["y"]}, {"id": "s", "op": "sin", "args": ["s"]}]}"#, .semantic,
      [("/graph/nodes/1", "the graph has a cycle of 1 node: 's' -> 's'")])
    // Two separate cycles are both reported.
    assertErrors(
      #"{"nodes": [{"id": "p", "op": "exp", "args": ["q"]}, {"id": "q", "op": "exp", "args": ["p"]}, {"id": "r", "op": "add", "args": ["r", "p"]}]}"#,
      .semantic,
      [
        ("/graph/nodes/0", "the graph has a cycle of 2 nodes: 'p' -> 'q' -> 'p'"),
        ("/graph/nodes/2", "the graph has a cycle of 1 node: 'r' -> 'r'"),
      ])
  }

  func testNodeLimitIsInclusive() throws {
    let json = #"{"nodes": [{"id": "a", "op": "sin", "args": ["x"]}, {"id": "b", "op": "cos", "args": ["a"]}]}"#
    XCTAssertNoThrow(try decodeGraph(json, limits: GraphDecoder.Limits(maxNodes: 2)))
    assertErrors(
      json, .limit, [("/graph/nodes", "the graph has 2 nodes, more than the limit of 1")],
      limits: GraphDecoder.Limits(maxNodes: 1))
    assertErrors(
      #"{"nodes": [{"id": "c", "op": "const", "attrs": {"value": [1, 2, 3]}}]}"#, .limit,
      [("/graph/nodes/0/attrs/value", "tensor has 3 elements, over the limit of 2")],
      limits: GraphDecoder.Limits(maxTensorElements: 2))
  }

  func testCompilerErrorsPointAtTheNode() throws {
    let graph = try decodeGraph(
      #"{"nodes": [{"id": "a", "op": "sin", "args": ["x"]}, {"id": "b", "op": "add", "args": ["a", "y"]}, {"id": "c", "op": "sum", "args": ["b"], "attrs": {"axis": 5, "scale": 2}}]}"#
    )
    XCTAssertThrowsError(try GraphCompiler.compile(graph, inputShapes: ["x": [2], "y": [3]])) { error in
      XCTAssertEqual(
        error as? Diagnostic, Diagnostic(.semantic, "add: cannot broadcast shapes [2] and [3]", at: "/graph/nodes/1"))
    }
    XCTAssertThrowsError(try GraphCompiler.compile(graph, inputShapes: ["x": [2], "y": [2]])) { error in
      XCTAssertEqual(
        error as? Diagnostic,
        Diagnostic(
          .semantic, "sum has no attribute 'scale' (it takes only axis, keepdims)", at: "/graph/nodes/2/attrs/scale"))
    }
    XCTAssertThrowsError(try GraphCompiler.compile(graph, inputShapes: ["x": [2]])) { error in
      XCTAssertEqual(
        error as? Diagnostic, Diagnostic(.semantic, "no value is given for the input 'y'", at: "/graph/nodes/1"))
    }
    let program = try GraphCompiler.compile(
      try decodeGraph(
        #"{"nodes": [{"id": "b", "op": "log", "args": ["a"]}, {"id": "a", "op": "exp", "args": ["x"]}]}"#),
      inputShapes: ["x": []])
    XCTAssertEqual(Array(program.origins), [1, 0], "each instruction's origin is its node's index in the request")
  }

  func testDeepChainDecodesAndCompilesWithoutRecursion() throws {
    // 100,000 nodes, listed last to first, each the previous one plus 1: the worst order for the sort.
    let count = 100_000
    var json = #"{"inputs": {"x": []}, "nodes": ["#
    for index in stride(from: count - 1, through: 0, by: -1) {
      let argument = index == 0 ? "x" : "n\(index - 1)"
      json += #"{"id": "n\#(index)", "op": "add", "args": ["\#(argument)", 1]}"#
      if index > 0 { json += "," }
    }
    json += #"], "output": "n\#(count - 1)"}"#
    let graph = try decodeGraph(json)
    XCTAssertEqual(graph.nodes.count, count + 2)
    XCTAssertEqual(try evaluate(graph, ["x": Tensor(0.5)])["n\(count - 1)"], Tensor(0.5 + Double(count)))
    _ = CanonicalGraph.id(of: graph)
    // A cycle through all of them is found by a loop too.
    let cyclic = json.replacingOccurrences(of: #"["x", 1]"#, with: #"["n\#(count - 1)", 1]"#)
    XCTAssertThrowsError(try decodeGraph(cyclic)) { error in
      XCTAssertEqual(
        (error as? Diagnostics)?.entries.first?.message.hasPrefix(
          "the graph has a cycle of 100000 nodes: 'n99999' -> 'n0' -> 'n1'"), true)
    }
  }
}
