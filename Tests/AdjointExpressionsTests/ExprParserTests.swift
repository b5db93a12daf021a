import AdjointEngine
import AdjointExpressions
import Foundation
import XCTest

final class ExprParserTests: XCTestCase {
  /// Parses, compiles for scalar inputs, and evaluates.
  private func evaluate(_ source: String, _ inputs: [String: Double]) throws -> Double {
    let graph = try ExprParser.parse(source)
    let program = try GraphCompiler.compile(graph, inputShapes: inputs.mapValues { _ in [] })
    let ws = Workspace(program)
    ws.setInputs(inputs.mapValues { Tensor($0) })
    return ws.evaluate()[0].scalars[0]
  }

  private func assertDiagnostic(
    _ source: String, _ kind: Diagnostic.Kind, at position: Int, _ message: String,
    file: StaticString = #filePath, line: UInt = #line
  ) {
    do {
      let graph = try ExprParser.parse(source)
      _ = try GraphCompiler.compile(
        graph, inputShapes: Dictionary(uniqueKeysWithValues: graph.inputNames.map { ($0, []) }))
      XCTFail("\(source) compiled", file: file, line: line)
    } catch {
      XCTAssertEqual(error, Diagnostic(kind, message, at: position), file: file, line: line)
    }
  }

  func testPrecedenceAndAssociativity() throws {
    XCTAssertEqual(try evaluate("1 + 2 * 3", [:]), 7)
    XCTAssertEqual(try evaluate("(1 + 2) * 3", [:]), 9)
    XCTAssertEqual(try evaluate("2 ^ 3 ^ 2", [:]), 512)  // right-associative
    XCTAssertEqual(try evaluate("-x^2", ["x": 3]), -9)  // -(x^2)
    XCTAssertEqual(try evaluate("x^-2", ["x": 2]), 0.25)
    XCTAssertEqual(try evaluate("8 / 4 / 2", [:]), 1)  // left-associative
    XCTAssertEqual(try evaluate("10 - 4 - 3", [:]), 3)
    XCTAssertEqual(try evaluate("--x", ["x": 2]), 2)
    XCTAssertEqual(try evaluate("2 * -x", ["x": 2]), -4)
  }

  func testNumbers() throws {
    XCTAssertEqual(try evaluate("1e-3", [:]), 0.001)
    XCTAssertEqual(try evaluate("2.5E+2", [:]), 250)
    XCTAssertEqual(try evaluate(".5 + 1.", [:]), 1.5)
    XCTAssertEqual(try evaluate("0.1", [:]), 0.1)
  }

  func testStatementsAndBindings() throws {
    XCTAssertEqual(try evaluate("a = x * 2; b = a + 1; b * a", ["x": 3]), 42)
    XCTAssertEqual(try evaluate("a = x * 2\nb = a + 1\r\nb * a\n", ["x": 3]), 42)
    XCTAssertEqual(try evaluate("x = x + 1; x * 2", ["x": 1]), 4)
    let graph = try ExprParser.parse("y = sin(x); y")
    XCTAssertEqual(graph.outputs.map(\.name), ["out"])
    XCTAssertEqual(try ExprParser.parse("loss = x^2").outputs.map(\.name), ["loss"])
  }

  func testCallsAndClosedForm() throws {
    let x = 1.5
    let y = -0.5
    XCTAssertEqual(try evaluate("sin(x*y) + x^2", ["x": x, "y": y]), sin(x * y) + x * x, accuracy: 1e-15)
    XCTAssertEqual(
      try evaluate("exp(log(x)) + sqrt(tanh(x)) - cos(y)", ["x": x, "y": y]),
      exp(log(x)) + sqrt(tanh(x)) - cos(y), accuracy: 1e-15)
  }

  func testFanOutIsOneNode() throws {
    let graph = try ExprParser.parse("x*x + x")
    XCTAssertEqual(graph.inputNames, ["x"])
    XCTAssertEqual(graph.nodes.count, 3)
  }

  func testKeywordArgumentsParse() throws {
    let graph = try ExprParser.parse("sum(x, axis=[0, -1], keepdims=true, scale=-2.5e1)")
    guard case .operation(let name, let arguments, let attributes) = graph.nodes.last?.kind else {
      return XCTFail("no call")
    }
    XCTAssertEqual(name, "sum")
    XCTAssertEqual(arguments, [0])
    XCTAssertEqual(attributes.map(\.name), ["axis", "keepdims", "scale"])
    XCTAssertEqual(attributes.map(\.value), [.numbers([0, -1]), .bool(true), .number(-25)])
  }

  func testPositionsCountUnicodeScalars() {
    // "é" is one scalar; the stray ')' sits at offset 6.
    assertDiagnostic("\"é\" + )", .syntax, at: 0, "unexpected '\"' where a value was expected")
    assertDiagnostic("x + é", .syntax, at: 4, "unexpected 'é' where a value was expected")
    assertDiagnostic("x + 1 )", .syntax, at: 6, "unexpected ')' after the end of an expression")
  }

  func testSyntaxErrors() {
    assertDiagnostic("", .syntax, at: 0, "the expression is empty")
    assertDiagnostic(" ; \n", .syntax, at: 0, "the expression is empty")
    assertDiagnostic("x +", .syntax, at: 3, "the expression ends where a value was expected")
    assertDiagnostic("(x + 1", .syntax, at: 6, "expected ')' to close the '(' at 0, found the end of the expression")
    assertDiagnostic("a < b < c", .syntax, at: 6, "comparisons cannot be chained; use parentheses")
    assertDiagnostic(
      "sin(x", .syntax, at: 5, "expected ')' to close the call of 'sin', found the end of the expression")
    assertDiagnostic("sin(x y)", .syntax, at: 6, "expected ',' or ')' in the call of 'sin', found 'y'")
    assertDiagnostic("sum(axis=1, x)", .syntax, at: 12, "a positional argument follows a keyword argument")
    assertDiagnostic(
      "sum(x, axis=y)", .syntax, at: 12, "a keyword value must be a number, a list of numbers, true or false")
    assertDiagnostic("sum(x, a=1, a=2)", .syntax, at: 12, "keyword argument 'a' is given twice")
    assertDiagnostic("1e400", .syntax, at: 0, "the number 1e400 is outside the range of a double")
    assertDiagnostic("1e+", .syntax, at: 3, "the exponent of a number has no digits")
    assertDiagnostic("2x", .syntax, at: 1, "unexpected 'x' in a number")
    assertDiagnostic("x + true", .syntax, at: 4, "'true' is only allowed as a keyword argument")
    assertDiagnostic("x $ y", .syntax, at: 2, "unexpected '$' after the end of an expression")
    assertDiagnostic("+x", .syntax, at: 0, "unexpected '+' where a value was expected")
    assertDiagnostic(
      String(repeating: "(", count: 300) + "x", .syntax, at: 256,
      "the expression is nested more than 256 levels deep")
  }

  func testSemanticErrors() {
    assertDiagnostic("x + frobnicate(x)", .semantic, at: 4, "unknown op 'frobnicate'")
    assertDiagnostic("sin(x, y)", .semantic, at: 0, "sin takes 1 argument, not 2")
    assertDiagnostic("pow(x)", .semantic, at: 0, "pow takes 2 arguments, not 1")
    assertDiagnostic(
      "sin(x, keepdims=true)", .semantic, at: 7, "sin has no attribute 'keepdims' (it takes no attributes)")
  }

  func testShapeMismatchPointsAtTheOperator() throws {
    let graph = try ExprParser.parse("a + b")
    XCTAssertThrowsError(try GraphCompiler.compile(graph, inputShapes: ["a": [2], "b": [3]])) { error in
      XCTAssertEqual(error as? Diagnostic, Diagnostic(.semantic, "add: cannot broadcast shapes [2] and [3]", at: 2))
    }
  }

  func testLongChainsDoNotRecurse() throws {
    // 100,000 additions: a left-deep chain is parsed by a loop and compiled by a loop.
    let source = Array(repeating: "x", count: 100_000).joined(separator: "+")
    XCTAssertEqual(try evaluate(source, ["x": 0.5]), 50_000)
  }

  func testNodeLimitCountsSharedNodesOnce() throws {
    // x, the constant 2 (used twice, one node), sin, mul, add: five nodes.
    let source = "sin(x) * 2 + 2"
    XCTAssertEqual(try ExprParser.parse(source, maxNodes: 5).nodes.count, 5)
    XCTAssertThrowsError(try ExprParser.parse(source, maxNodes: 4)) { error in
      // Nodes in order: x, sin, 2, mul, add; the fifth (the `+` at offset 11) is the first past the limit.
      XCTAssertEqual(
        error as? Diagnostic, Diagnostic(.limit, "the expression has 5 nodes, more than the limit of 4", at: 11))
    }
  }
}
