import AdjointEngine
import Foundation
import XCTest

/// The derivative ladder for every elementwise op (unary, binary, comparisons, where, sign, stop_gradient), compiled
/// from `expr` text, on seeded random points inside each op's domain, with broadcasting.
final class ElementwiseOpTests: XCTestCase {
  /// Shapes for unary ops: rank 0 (the scalar executor), a vector and a matrix.
  private static let unaryShapes: [[Int]] = [[], [5], [2, 3]]

  /// Operand shapes for binary ops, broadcasting included.
  private static let binaryShapes: [([Int], [Int])] = [
    ([], []), ([5], [5]), ([2, 3], []), ([], [2, 3]), ([3, 1, 4], [2, 4]), ([4], [3, 1]), ([2, 1], [1, 3]),
  ]

  /// The ladder for `name(x)` on every shape, its values against `reference`, and a long vector (several blocks of
  /// the fused elementwise executor) through `sum(name(x * a + b) * w)`.
  private func checkUnary(
    _ name: String, _ domain: Domain, _ reference: (Double) -> Double, file: StaticString = #filePath,
    line: UInt = #line
  ) throws {
    var rng = SeededGenerator(name)
    for shape in Self.unaryShapes {
      let x = domain.sample(&rng, shape)
      try assertDerivatives("\(name)(x)", at: ["x": x], file: file, line: line)
      try assertValues("\(name)(x)", at: ["x": x], equal: x.map(reference), file: file, line: line)
    }
    // 600 elements: two full blocks of 256 and a partial one; a and b are broadcast scalars.
    let x = domain.sample(&rng, [600])
    let w = Domain.uniform(-1...1).sample(&rng, [600])
    let inputs: Inputs = ["x": x, "w": w, "a": Tensor(1), "b": Tensor(0)]
    try assertValues("\(name)(x * a + b)", at: inputs, equal: x.map(reference), file: file, line: line)
    try assertDirectionalDerivatives("sum(\(name)(x * a + b) * w)", at: inputs, file: file, line: line)
    // Element by element, at once: each term of the sum depends on one element of x only.
    let program = try compile("sum(\(name)(x * a + b) * w)", inputs)
    let gradient = workspace(program, inputs).valueWithPullback().adjoints[try inputIndices(program, ["x"])[0]]
    let terms = try compile("\(name)(x + s) * w", inputs.merging(["s": Tensor(0)]) { $1 })
    let probe = workspace(terms, inputs.merging(["s": Tensor(0)]) { $1 })
    let shift = try inputIndices(terms, ["s"])[0]
    let numeric = richardsonDerivatives(at: 0) { s in
      probe.setInput(shift, scalar: s)
      return probe.evaluate()[0].scalars
    }
    for (i, (analytic, difference)) in zip(gradient.scalars, numeric).enumerated() {
      XCTAssertTrue(
        isClose(analytic, difference, relative: Tolerance.finiteDifference),
        "\(name) on 600 elements: d/dx[\(i)] is \(analytic), finite differences \(difference)", file: file,
        line: line)
    }
  }

  func testNeg() throws {
    try checkUnary("neg", .uniform(-2...2)) { -$0 }
    try assertValues(
      "-x", at: ["x": Tensor(shape: [2], scalars: [1.5, -2])], equal: Tensor(shape: [2], scalars: [-1.5, 2]))
    try assertDerivatives("-x", at: ["x": Tensor(shape: [3], scalars: [0.5, -1, 2])])
  }

  func testAbs() throws { try checkUnary("abs", .signed(0.2...2)) { Swift.abs($0) } }
  func testExp() throws { try checkUnary("exp", .uniform(-2...2), Foundation.exp) }
  func testLog() throws { try checkUnary("log", .uniform(0.2...3), Foundation.log) }
  func testLog1p() throws { try checkUnary("log1p", .uniform(-0.8...3), Foundation.log1p) }
  func testExpm1() throws { try checkUnary("expm1", .uniform(-2...2), Foundation.expm1) }
  func testSqrt() throws { try checkUnary("sqrt", .uniform(0.2...3), Foundation.sqrt) }
  func testSquare() throws { try checkUnary("square", .uniform(-2...2)) { $0 * $0 } }
  func testSin() throws { try checkUnary("sin", .uniform(-3...3), Foundation.sin) }
  func testCos() throws { try checkUnary("cos", .uniform(-3...3), Foundation.cos) }
  func testTan() throws { try checkUnary("tan", .uniform(-1.2...1.2), Foundation.tan) }
  func testAsin() throws { try checkUnary("asin", .uniform(-0.9...0.9), Foundation.asin) }
  func testAcos() throws { try checkUnary("acos", .uniform(-0.9...0.9), Foundation.acos) }
  func testAtan() throws { try checkUnary("atan", .uniform(-3...3), Foundation.atan) }
  func testSinh() throws { try checkUnary("sinh", .uniform(-2...2), Foundation.sinh) }
  func testCosh() throws { try checkUnary("cosh", .uniform(-2...2), Foundation.cosh) }
  func testTanh() throws { try checkUnary("tanh", .uniform(-2...2), Foundation.tanh) }
  func testSigmoid() throws { try checkUnary("sigmoid", .uniform(-4...4)) { 1 / (1 + Foundation.exp(-$0)) } }
  func testRelu() throws { try checkUnary("relu", .signed(0.2...2)) { Swift.max($0, 0) } }
  func testSoftplus() throws { try checkUnary("softplus", .uniform(-4...4)) { Foundation.log1p(Foundation.exp($0)) } }
  func testErf() throws { try checkUnary("erf", .uniform(-2...2), Foundation.erf) }

  func testUnaryValuesAtTheEdgesOfTheirDomains() throws {
    let cases: [(String, [Double], [Double])] = [
      ("log", [0, -1, .infinity], [-.infinity, .nan, .infinity]),
      ("sqrt", [0, -1, .infinity], [0, .nan, .infinity]),
      ("exp", [710, -800, -.infinity], [.infinity, 0, 0]),
      ("sigmoid", [800, -800, 0], [1, 0, 0.5]),
      ("softplus", [800, -800, 0], [800, 0, Foundation.log(2)]),
      ("tanh", [50, -50, 0], [1, -1, 0]),
      ("relu", [-3, 0, 2.5], [0, 0, 2.5]),
      ("abs", [-3, -0.0, 2.5], [3, 0, 2.5]),
      ("asin", [1, -1, 2], [Double.pi / 2, -Double.pi / 2, .nan]),
      ("log1p", [-1, -2, 1e-20], [-.infinity, .nan, 1e-20]),
      ("expm1", [1e-20, -800, 0], [1e-20, -1, 0]),
      ("erf", [10, -10, 0], [1, -1, 0]),
    ]
    for (name, points, expected) in cases {
      let shape = [points.count]
      try assertValues(
        "\(name)(x)", at: ["x": Tensor(shape: shape, scalars: points)], equal: Tensor(shape: shape, scalars: expected))
    }
  }

  func testNaNPropagates() throws {
    let x = Tensor(shape: [3], scalars: [.nan, 1, -2])
    for name in ["sign", "relu", "abs", "exp", "sigmoid", "softplus", "tanh", "square", "neg"] {
      let value = try evaluate("\(name)(x)", ["x": x])
      XCTAssertTrue(value.scalars[0].isNaN, "\(name)(NaN)")
      XCTAssertFalse(value.scalars[1].isNaN || value.scalars[2].isNaN, "\(name) of numbers")
    }
    let inputs: Inputs = ["x": x, "y": Tensor(shape: [3], scalars: [0, .nan, -3])]
    for name in ["maximum", "minimum", "add", "mul", "atan2"] {
      let value = try evaluate("\(name)(x, y)", inputs)
      XCTAssertTrue(value.scalars[0].isNaN && value.scalars[1].isNaN, "\(name) with a NaN operand: \(value)")
      XCTAssertFalse(value.scalars[2].isNaN, "\(name) of numbers")
    }
    // pow follows C: x^0 = 1 and 1^y = 1 even for NaN, otherwise NaN.
    try assertValues("x ^ y", at: inputs, equal: Tensor(shape: [3], scalars: [1, 1, -0.125]), relative: 0)
    try assertValues("x ^ 2", at: ["x": x], equal: Tensor(shape: [3], scalars: [.nan, 1, 4]), relative: 0)
    // A NaN condition is nonzero: where takes the first branch.
    try assertValues("where(x, 1, 2)", at: ["x": x], equal: Tensor(shape: [3], scalars: [1, 1, 1]), relative: 0)
  }

  // MARK: Binary

  /// The ladder for `name(a, b)` (and the infix spelling, if any) on every broadcast pair, and its values.
  private func checkBinary(
    _ name: String, infix: String? = nil, _ domainA: Domain, _ domainB: Domain,
    _ reference: @escaping (Double, Double) -> Double, file: StaticString = #filePath, line: UInt = #line
  ) throws {
    var rng = SeededGenerator(name)
    for (shapeA, shapeB) in Self.binaryShapes {
      let inputs: Inputs = ["a": domainA.sample(&rng, shapeA), "b": domainB.sample(&rng, shapeB)]
      let expected = elementwise([inputs["a"]!, inputs["b"]!]) { reference($0[0], $0[1]) }
      for expr in ["\(name)(a, b)"] + (infix.map { ["a \($0) b"] } ?? []) {
        try assertDerivatives(expr, at: inputs, file: file, line: line)
        try assertValues(expr, at: inputs, equal: expected, file: file, line: line)
      }
    }
    // A fused chain over 600 elements with a broadcast scalar on either side.
    let inputs: Inputs = [
      "a": domainA.sample(&rng, [600]), "b": domainB.sample(&rng, [600]), "c": domainB.sample(&rng, []),
      "w": Domain.uniform(-1...1).sample(&rng, [600]),
    ]
    try assertDirectionalDerivatives("sum((\(name)(a, b) + \(name)(a, c)) * w)", at: inputs, file: file, line: line)
  }

  func testAdd() throws { try checkBinary("add", infix: "+", .uniform(-2...2), .uniform(-2...2), +) }
  func testSub() throws { try checkBinary("sub", infix: "-", .uniform(-2...2), .uniform(-2...2), -) }
  func testMul() throws { try checkBinary("mul", infix: "*", .uniform(-2...2), .uniform(-2...2), *) }
  func testDiv() throws { try checkBinary("div", infix: "/", .uniform(-2...2), .signed(0.5...2), /) }
  func testPow() throws { try checkBinary("pow", infix: "^", .uniform(0.3...2), .uniform(-2...2), Foundation.pow) }
  func testMaximum() throws { try checkBinary("maximum", .lattice(offset: 0), .lattice(offset: 0.25), Swift.max) }
  func testMinimum() throws { try checkBinary("minimum", .lattice(offset: 0), .lattice(offset: 0.25), Swift.min) }
  func testAtan2() throws { try checkBinary("atan2", .uniform(-2...2), .signed(0.3...2), Foundation.atan2) }

  func testPowWithConstantExponents() throws {
    var rng = SeededGenerator("pow constants")
    let negative = Domain.uniform(-2...(-0.3)).sample(&rng, [4])
    let positive = Domain.uniform(0.3...2).sample(&rng, [4])
    // Integral exponents on a negative base are defined (C's pow); x^2 is lowered to square.
    for (expr, x) in [
      ("x ^ 3", negative), ("x ^ 2", negative), ("x ^ -2", negative), ("x ^ 0.5", positive), ("x ^ -1.5", positive),
      ("2 ^ x", negative), ("pow(x, 1)", negative),
    ] {
      try assertDerivatives(expr, at: ["x": x])
    }
    try assertValues("x ^ 3", at: ["x": negative], equal: negative.map { $0 * $0 * $0 })
    try assertValues("x ^ 2", at: ["x": negative], equal: negative.map { $0 * $0 })
    try assertValues("x ^ -2", at: ["x": negative], equal: negative.map { 1 / ($0 * $0) })
    try assertValues("x ^ 0.5", at: ["x": positive], equal: positive.map(Foundation.sqrt))
    try assertValues("-x ^ 2", at: ["x": positive], equal: positive.map { -($0 * $0) })
    try assertValues("x ^ 0.5", at: ["x": negative], equal: negative.map { _ in .nan })
    // x^0 is 1 everywhere, 0^0 included, and its derivative is 0.
    let withZero = Tensor(shape: [3], scalars: [0, -2, 3])
    try assertValues("x ^ 0", at: ["x": withZero], equal: Tensor(repeating: 1, shape: [3]))
    try assertNoGradient("x ^ 0", at: ["x": withZero], wrt: ["x"])
  }

  // MARK: Comparisons

  /// Values against `reference` with ties (integer inputs), exactly zero derivatives, and a comparison used as a
  /// mask passes the gradient of the other factor through exactly.
  private func checkComparison(
    _ name: String, _ symbol: String, _ reference: @escaping (Double, Double) -> Bool,
    file: StaticString = #filePath, line: UInt = #line
  ) throws {
    var rng = SeededGenerator(name)
    for (shapeA, shapeB) in Self.binaryShapes {
      let inputs: Inputs = [
        "a": Domain.integers(-2...2).sample(&rng, shapeA), "b": Domain.integers(-2...2).sample(&rng, shapeB),
      ]
      let expected = elementwise([inputs["a"]!, inputs["b"]!]) { reference($0[0], $0[1]) ? 1 : 0 }
      try assertNoGradient("\(name)(a, b)", at: inputs, wrt: ["a", "b"], expected: expected, file: file, line: line)
      try assertValues("a \(symbol) b", at: inputs, equal: expected, relative: 0, file: file, line: line)
    }
    let a = Tensor(shape: [6], scalars: [-1, 0, 1, 2, 0.5, -0.5])
    let b = Tensor(shape: [6], scalars: [0, 0, 1, -2, 1, -1])
    let w = Tensor(shape: [6], scalars: [1.5, -2, 0.25, 3, -1, 0.75])
    let inputs: Inputs = ["a": a, "b": b, "w": w]
    let program = try compile("sum((a \(symbol) b) * a * w)", inputs)
    let gradient = workspace(program, inputs).valueWithPullback().adjoints
    let mask = elementwise([a, b]) { reference($0[0], $0[1]) ? 1 : 0 }
    XCTAssertEqual(
      gradient[try inputIndices(program, ["a"])[0]], elementwise([mask, w]) { $0[0] * $0[1] },
      "d/da of sum((a \(symbol) b) * a * w)", file: file, line: line)
    assertExactlyZero(gradient[try inputIndices(program, ["b"])[0]], "d/db", file: file, line: line)
  }

  func testLt() throws { try checkComparison("lt", "<", <) }
  func testLe() throws { try checkComparison("le", "<=", <=) }
  func testGt() throws { try checkComparison("gt", ">", >) }
  func testGe() throws { try checkComparison("ge", ">=", >=) }
  func testEq() throws { try checkComparison("eq", "==", ==) }
  func testNe() throws { try checkComparison("ne", "!=", !=) }

  func testComparisonsWithNaN() throws {
    let inputs: Inputs = ["a": Tensor(shape: [2], scalars: [.nan, 1]), "b": Tensor(shape: [2], scalars: [1, .nan])]
    for (symbol, expected) in [("<", 0.0), ("<=", 0), (">", 0), (">=", 0), ("==", 0), ("!=", 1)] {
      try assertValues("a \(symbol) b", at: inputs, equal: Tensor(repeating: expected, shape: [2]), relative: 0)
    }
  }

  // MARK: where, sign, stop_gradient

  func testWhere() throws {
    var rng = SeededGenerator("where")
    let shapes: [([Int], [Int], [Int])] = [
      ([], [], []), ([2, 3], [2, 3], [2, 3]), ([2, 3], [], [3]), ([3, 1], [1, 4], [4]),
    ]
    for (shapeX, shapeA, shapeB) in shapes {
      let inputs: Inputs = [
        "x": Domain.signed(0.2...2).sample(&rng, shapeX), "a": Domain.uniform(-2...2).sample(&rng, shapeA),
        "b": Domain.uniform(-2...2).sample(&rng, shapeB),
      ]
      let expected = elementwise([inputs["x"]!, inputs["a"]!, inputs["b"]!]) { $0[0] > 0 ? $0[1] : $0[2] }
      // The derivative with respect to x, through the condition only, is zero, as are its finite differences.
      try assertDerivatives("where(x > 0, a * x, b)", at: inputs)
      try assertDerivatives("where(x > 0, a, b)", at: inputs)
      try assertValues("where(x > 0, a, b)", at: inputs, equal: expected, relative: 0)
      // A numeric condition: nonzero is true.
      let condition = Domain.integers(-1...1).sample(&rng, shapeX)
      try assertValues(
        "where(c, a, b)", at: inputs.merging(["c": condition]) { $1 },
        equal: elementwise([condition, inputs["a"]!, inputs["b"]!]) { $0[0] != 0 ? $0[1] : $0[2] }, relative: 0)
      try assertDerivatives("where(c, a, b)", at: inputs.merging(["c": condition]) { $1 }, wrt: ["a", "b"])
    }
  }

  func testSign() throws {
    let x = Tensor(shape: [6], scalars: [-2, -0.5, 0, 0.5, 3, -1e-300])
    try assertNoGradient(
      "sign(x)", at: ["x": x], wrt: ["x"], expected: Tensor(shape: [6], scalars: [-1, -1, 0, 1, 1, -1]))
    try assertNoGradient("sign(x)", at: ["x": Tensor(0.7)], wrt: ["x"], expected: Tensor(1))
    // sign times something: the gradient is sign times the other factor's.
    try assertDerivatives("sign(x) * x ^ 3", at: ["x": Tensor(shape: [3], scalars: [-1.5, 0.5, 2])])
  }

  func testStopGradient() throws {
    let x = Tensor(shape: [4], scalars: [-1.5, 0.25, 2, 3])
    try assertNoGradient("stop_gradient(x)", at: ["x": x], wrt: ["x"], expected: x)
    try assertNoGradient("stop_gradient(x) * 3", at: ["x": Tensor(2)], wrt: ["x"], expected: Tensor(6))
    // f = Σ sg(x)·x·w: the gradient is sg(x)·w exactly, and so is the JVP along each basis direction; the Hessian is
    // zero (as in JAX): sg(x) is a constant to every derivative.
    let w = Tensor(shape: [4], scalars: [0.5, -1, 2, 1.25])
    let inputs: Inputs = ["x": x, "w": w]
    let program = try compile("sum(stop_gradient(x) * x * w)", inputs)
    let index = try inputIndices(program, ["x"])[0]
    let ws = workspace(program, inputs)
    let expected = elementwise([x, w]) { $0[0] * $0[1] }
    XCTAssertEqual(ws.valueWithPullback(wrt: [index]).adjoints[index], expected)
    for j in 0..<4 {
      var direction = [Double](repeating: 0, count: 4)
      direction[j] = 1
      XCTAssertEqual(ws.valueWithDifferential(tangents: [index: direction]).tangent.scalar, expected.scalars[j])
    }
    assertExactlyZero(ws.hessian(wrt: [index]).blocks[0][0], "Hessian of sum(stop_gradient(x) * x * w)")
    try assertValues("stop_gradient(x) * x", at: inputs, equal: x.map { $0 * $0 }, relative: 0)
  }

  // MARK: Chains

  func testLongElementwiseChainsWithBroadcastScalars() throws {
    var rng = SeededGenerator("chains")
    for count in [7, 256, 257, 700] {
      let inputs: Inputs = [
        "x": Domain.signed(0.1...1).sample(&rng, [count]), "y": Domain.uniform(0.5...2).sample(&rng, [count]),
        "s": Tensor(0.75), "t": Tensor(-0.5),
      ]
      try assertDirectionalDerivatives(
        "u = sin(x * s) * y + t; v = exp(u) / (1 + x ^ 2); sum(v * tanh(u - y) + sqrt(y) * s)", at: inputs)
      // An intermediate that is also an output of the function, and one read after a reduction.
      try assertDirectionalDerivatives("u = x * y + s; m = sum(u); sum(u * m * t) + sum(sigmoid(u) * x)", at: inputs)
      try assertDirectionalDerivatives(
        "sum(where(x > 0, log(y) * x, x * s) - maximum(x, 0.05) * minimum(y, 0.3))", at: inputs)
    }
    let inputs: Inputs = [
      "x": Domain.uniform(-1...1).sample(&rng, [5]), "y": Domain.uniform(0.5...2).sample(&rng, [5]),
      "s": Tensor(0.75), "t": Tensor(-0.5),
    ]
    try assertDerivatives("u = sin(x * s) * y + t; exp(u) / (1 + x ^ 2) - sqrt(y) * s", at: inputs)
  }
}
