import AdjointEngine
import AdjointExpressions
import AdjointJSON
import XCTest

final class CanonicalGraphTests: XCTestCase {
  private func canonical(_ json: String) throws -> String { CanonicalGraph.string(try decodeGraph(json)) }

  func testTheFormOfAnExpr() throws {
    let graph = try ExprParser.parse("h = x @ W; loss = sum(tanh(h) * 0.5, axis=1, keepdims=false)")
    XCTAssertEqual(
      CanonicalGraph.string(graph),
      #"{"nodes":[{"args":["x","W"],"id":"%0","op":"matmul"},{"args":["%0"],"id":"%1","op":"tanh"},"#
        + #"{"args":["%1",0.5],"id":"%2","op":"mul"},{"args":["%2"],"attrs":{"axis":1,"keepdims":false},"id":"loss","op":"sum"}],"#
        + #""outputs":["loss"]}"#)
    XCTAssertEqual(CanonicalGraph.id(of: graph), "sha256:" + SHA256.hash(CanonicalGraph.encode(graph)).hexString)
    // The same text always gets the same id; different text usually another.
    XCTAssertEqual(
      CanonicalGraph.id(of: try ExprParser.parse("sin(x)")), CanonicalGraph.id(of: try ExprParser.parse("sin( x )")))
    XCTAssertNotEqual(
      CanonicalGraph.id(of: try ExprParser.parse("sin(x)")), CanonicalGraph.id(of: try ExprParser.parse("sin(y)")))
  }

  func testStableUnderListingOrderAndInternalIds() throws {
    let listed = try canonical(
      """
      {"inputs": {"x": [], "W": [3, 2]},
       "nodes": [
         {"id": "h", "op": "matmul", "args": ["x", "W"]},
         {"id": "a", "op": "tanh",   "args": ["h"]},
         {"id": "s", "op": "mul",    "args": ["a", 0.5]},
         {"id": "loss", "op": "sum", "args": ["s"], "attrs": {"keepdims": false, "axis": 1}}
       ],
       "outputs": ["loss"]}
      """)
    let shuffled = try canonical(
      """
      {"outputs": ["loss"],
       "nodes": [
         {"attrs": {"axis": 1, "keepdims": false}, "args": ["scaled"], "op": "sum", "id": "loss"},
         {"id": "scaled", "op": "mul", "args": ["act", 5e-1]},
         {"id": "hidden", "op": "matmul", "args": ["x", "W"]},
         {"id": "act", "op": "tanh", "args": ["hidden"]}
       ],
       "inputs": {"W": [3, 2], "x": []}}
      """)
    XCTAssertEqual(listed, shuffled)
    XCTAssertEqual(
      listed,
      #"{"inputs":{"W":[3,2],"x":[]},"nodes":[{"args":["x","W"],"id":"%0","op":"matmul"},"#
        + #"{"args":["%0"],"id":"%1","op":"tanh"},{"args":["%1",0.5],"id":"%2","op":"mul"},"#
        + #"{"args":["%2"],"attrs":{"axis":1,"keepdims":false},"id":"loss","op":"sum"}],"outputs":["loss"]}"#)
    // Output names are part of the function (they key the response); renaming one changes the form.
    XCTAssertNotEqual(listed, listed.replacingOccurrences(of: "loss", with: "total"))
  }

  func testTheCanonicalFormIsAFixedPoint() throws {
    let sources = [
      "y = sin(x*y) + x^2",
      "x",
      "2",
      "const(value=[1, 2]) * x",
      "a = exp(z); b = a + 1e-300; c = -0.0 * b; sum(c, axis=[0, -1], keepdims=true)",
      "where(x > 0, sqrt(x), 0)",
      "x = x + 1",
    ]
    for source in sources {
      let first = CanonicalGraph.encode(try ExprParser.parse(source))
      let again = CanonicalGraph.encode(try GraphDecoder.decode(try JSONParser.parse(first)))
      XCTAssertEqual(String(decoding: again, as: UTF8.self), String(decoding: first, as: UTF8.self), source)
    }
    let json =
      #"{"inputs":{"x":[2]},"nodes":[{"id":"c","op":"const","attrs":{"value":[[1,2],[3,4]]}},{"id":"e","op":"const","attrs":{"value":[[]]}},{"id":"n","op":"const","attrs":{"value":"-Infinity"}},{"id":"o","op":"matmul","args":["c","x"]},{"id":"dead","op":"cos","args":["o"]}],"outputs":["o","n","e","x"]}"#
    let first = try canonical(json)
    XCTAssertEqual(
      first,
      #"{"inputs":{"x":[2]},"nodes":[{"attrs":{"value":[[1,2],[3,4]]},"id":"%0","op":"const"},"#
        + #"{"args":["%0","x"],"id":"o","op":"matmul"},{"attrs":{"value":"-Infinity"},"id":"n","op":"const"},"#
        + #"{"attrs":{"value":[[]]},"id":"e","op":"const"},{"args":["o"],"id":"%1","op":"cos"}],"outputs":["o","n","e","x"]}"#
    )
    XCTAssertEqual(try canonical(first), first)
  }

  func testNumbersAndStrings() throws {
    let form = try canonical(
      #"{"nodes":[{"id":"a\"/\n\u0001é","op":"concat","args":["x",1e2,0.1,-0.0,1e-7,123456789012345678901234567890]}]}"#
    )
    XCTAssertEqual(
      form,
      #"{"nodes":[{"args":["x",100,0.1,-0.0,1e-07,1.2345678901234568e+29],"id":"a\"/\n\u0001é","op":"concat"}],"outputs":["a\"/\n\u0001é"]}"#
    )
  }

  func testExprAndGraphGiveTheSameId() throws {
    let expr = try ExprParser.parse("loss = sum(tanh(x @ W) * 0.5, axis=1)")
    let graph = try decodeGraph(
      #"{"nodes":[{"id":"h","op":"matmul","args":["x","W"]},{"id":"a","op":"tanh","args":["h"]},{"id":"s","op":"mul","args":["a",0.5]},{"id":"loss","op":"sum","args":["s"],"attrs":{"axis":1}}]}"#
    )
    XCTAssertEqual(CanonicalGraph.id(of: expr), CanonicalGraph.id(of: graph))
  }
}

/// The same functions as `expr` and as `graph` compile to programs with identical values and gradients.
final class ExprGraphEquivalenceTests: XCTestCase {
  private func check(
    _ expr: String, _ json: String, _ inputs: [String: Tensor], file: StaticString = #filePath, line: UInt = #line
  ) throws {
    let shapes = inputs.mapValues(\.shape)
    let a = try GraphCompiler.compile(try ExprParser.parse(expr), inputShapes: shapes)
    let b = try GraphCompiler.compile(try decodeGraph(json), inputShapes: shapes)
    XCTAssertEqual(a.instructionCount, b.instructionCount, "instructions", file: file, line: line)
    let (wa, wb) = (Workspace(a), Workspace(b))
    wa.setInputs(inputs)
    wb.setInputs(inputs)
    let (va, ga) = wa.valueWithPullback()
    let (vb, gb) = wb.valueWithPullback()
    XCTAssertEqual(va.shape, vb.shape, file: file, line: line)
    XCTAssertEqual(va.scalars.map(\.bitPattern), vb.scalars.map(\.bitPattern), "value", file: file, line: line)
    for name in inputs.keys {
      let (ia, ib) = (a.inputIndex(named: name)!, b.inputIndex(named: name)!)
      XCTAssertEqual(ga[ia].shape, gb[ib].shape, name, file: file, line: line)
      XCTAssertEqual(ga[ia].scalars.map(\.bitPattern), gb[ib].scalars.map(\.bitPattern), name, file: file, line: line)
    }
  }

  func testScalarFunctions() throws {
    try check(
      "sin(x*y) + x^2",
      #"{"nodes":[{"id":"q","op":"pow","args":["x",2]},{"id":"p","op":"mul","args":["x","y"]},{"id":"s","op":"sin","args":["p"]},{"id":"out","op":"add","args":["s","q"]}],"output":"out"}"#,
      ["x": Tensor(1.5), "y": Tensor(-0.5)])
    try check(
      "where(x > 0, sqrt(x), 0) + log1p(exp(-x))",
      #"{"nodes":[{"id":"g","op":"gt","args":["x",0]},{"id":"r","op":"sqrt","args":["x"]},{"id":"w","op":"where","args":["g","r",0]},{"id":"n","op":"neg","args":["x"]},{"id":"e","op":"exp","args":["n"]},{"id":"l","op":"log1p","args":["e"]},{"id":"out","op":"add","args":["w","l"]}]}"#,
      ["x": Tensor(-1)])
  }

  func testTensorsAndAttributes() throws {
    let x = Tensor(shape: [2, 3], scalars: [0.1, -0.2, 0.3, 0.4, -0.5, 0.6])
    let w = Tensor(shape: [3, 2], scalars: [1, -1, 0.5, 2, -0.25, 0.75])
    try check(
      "loss = sum(tanh(x @ W) * 0.5, axis=1)",
      #"{"inputs":{"x":[2,3],"W":[3,2]},"nodes":[{"id":"loss","op":"sum","args":["s"],"attrs":{"axis":[0, 1]}},{"id":"h","op":"matmul","args":["x","W"]},{"id":"a","op":"tanh","args":["h"]},{"id":"s","op":"mul","args":["a",0.5]}],"output":"loss"}"#
        .replacingOccurrences(of: "[0, 1]", with: "1"),
      ["x": x, "W": w])
    try check(
      "mean(logsumexp(softmax(x, axis=0) * x, axis=-1, keepdims=true))",
      #"{"nodes":[{"id":"s","op":"softmax","args":["x"],"attrs":{"axis":0}},{"id":"p","op":"mul","args":["s","x"]},{"id":"l","op":"logsumexp","args":["p"],"attrs":{"axis":-1,"keepdims":true}},{"id":"m","op":"mean","args":["l"]}]}"#,
      ["x": x])
    try check(
      "sum(stack(slice(x, axis=1, start=1), index(x, indices=[2, 0], axis=1), axis=0) * const(value=[2, 3]))",
      #"{"nodes":[{"id":"c","op":"const","attrs":{"value":[2,3]}},{"id":"a","op":"slice","args":["x"],"attrs":{"axis":1,"start":1}},{"id":"b","op":"index","args":["x"],"attrs":{"indices":[2,0],"axis":1}},{"id":"k","op":"stack","args":["a","b"],"attrs":{"axis":0}},{"id":"m","op":"mul","args":["k","c"]},{"id":"out","op":"sum","args":["m"]}]}"#,
      ["x": x])
    try check(
      "sum(reshape(transpose(x), shape=[-1]) * expand_dims(squeeze(reshape(W, shape=[1, 6]), axis=0), axis=0))",
      #"{"nodes":[{"id":"t","op":"transpose","args":["x"]},{"id":"r","op":"reshape","args":["t"],"attrs":{"shape":[-1]}},{"id":"w1","op":"reshape","args":["W"],"attrs":{"shape":[1,6]}},{"id":"sq","op":"squeeze","args":["w1"],"attrs":{"axis":0}},{"id":"e","op":"expand_dims","args":["sq"],"attrs":{"axis":0}},{"id":"m","op":"mul","args":["r","e"]},{"id":"out","op":"sum","args":["m"]}]}"#,
      ["x": x, "W": w])
  }
}
