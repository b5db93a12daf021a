import AdjointEngine
import AdjointExpressions
import XCTest

/// The derivative ladder for the shape ops (reshape, broadcast_to, concat, stack, slice, index, squeeze,
/// expand_dims) and const, with their attributes; and a check that the op tests cover every op.
final class ShapeOpTests: XCTestCase {
  func testReshape() throws {
    var rng = SeededGenerator("reshape")
    let x = Domain.uniform(-2...2).sample(&rng, [2, 3, 2])
    for (attribute, shape) in [
      ("[3, -1]", [3, 4]), ("[-1]", [12]), ("[2, 2, 3]", [2, 2, 3]), ("[12, 1]", [12, 1]), ("[-1, 6]", [2, 6]),
    ] {
      let expr = "reshape(x, shape=\(attribute))"
      try assertDerivatives(expr, at: ["x": x])
      try assertValues(expr, at: ["x": x], equal: x.reshaped(shape), relative: 0)
    }
    let one = Tensor(shape: [1, 1], scalars: [0.5])
    try assertDerivatives("reshape(x, shape=[])", at: ["x": one])
    try assertValues("reshape(x, shape=[])", at: ["x": one], equal: Tensor(0.5), relative: 0)
    try assertDerivatives("reshape(x * x, shape=[4, 3]) @ reshape(x, shape=[3, 4])", at: ["x": x])
    for bad in ["[5, -1]", "[-1, -1]", "[13]", "[-2, 6]"] {
      XCTAssertThrowsError(try compile("reshape(x, shape=\(bad))", ["x": x]), bad)
    }
  }

  func testBroadcastTo() throws {
    var rng = SeededGenerator("broadcast_to")
    for (from, to) in [([3], [2, 3]), ([2, 1], [2, 2, 3]), ([], [2, 2]), ([1, 3], [4, 3]), ([2, 3], [2, 3])]
      as [([Int], [Int])]
    {
      let x = Domain.uniform(-2...2).sample(&rng, from)
      let expr = "broadcast_to(x, shape=\(to))"
      try assertDerivatives(expr, at: ["x": x])
      try assertValues(expr, at: ["x": x], equal: Tensor.build(to) { broadcastRead(x, $0) }, relative: 0)
    }
    XCTAssertThrowsError(try compile("broadcast_to(x, shape=[2, 4])", ["x": Tensor(repeating: 1, shape: [3])]))
    XCTAssertThrowsError(try compile("broadcast_to(x, shape=[3])", ["x": Tensor(repeating: 1, shape: [2, 3])]))
  }

  func testConcat() throws {
    var rng = SeededGenerator("concat")
    let cases: [(String, [[Int]], Int)] = [
      ("", [[2, 3], [1, 3], [3, 3]], 0), (", axis=1", [[2, 1], [2, 3], [2, 2]], 1),
      (", axis=-1", [[2, 2, 1], [2, 2, 3], [2, 2, 2]], -1), (", axis=-2", [[2, 1, 2], [2, 3, 2], [2, 2, 2]], -2),
      ("", [[4], [0], [2]], 0), ("", [[3]], 0),
    ]
    for (attributes, shapes, axis) in cases {
      let parts = shapes.map { Domain.uniform(-2...2).sample(&rng, $0) }
      let names = ["a", "b", "c"].prefix(parts.count)
      let inputs = Dictionary(uniqueKeysWithValues: zip(names, parts))
      let expr = "concat(\(names.joined(separator: ", "))\(attributes))"
      try assertDerivatives(expr, at: inputs)
      try assertValues(expr, at: inputs, equal: concatReference(parts, axis: axis), relative: 0)
    }
    // One operand twice: its gradient collects both blocks.
    let a = Domain.uniform(-2...2).sample(&rng, [2, 2])
    let b = Domain.uniform(-2...2).sample(&rng, [1, 2])
    try assertDerivatives("concat(a, b, a)", at: ["a": a, "b": b])
    try assertDerivatives("concat(a * b, sin(a), axis=1)", at: ["a": a, "b": b])
    for bad in ["axis=1", "axis=[0, 1]", "axis=[]", "axis=2"] {
      XCTAssertThrowsError(try compile("concat(a, b, \(bad))", ["a": a, "b": b]), bad)
    }
  }

  func testStack() throws {
    var rng = SeededGenerator("stack")
    let parts = (0..<3).map { _ in Domain.uniform(-2...2).sample(&rng, [2, 3]) }
    let inputs: Inputs = ["a": parts[0], "b": parts[1], "c": parts[2]]
    for (attributes, axis) in [("", 0), (", axis=1", 1), (", axis=2", 2), (", axis=-1", 2), (", axis=-3", 0)] {
      let expr = "stack(a, b, c\(attributes))"
      try assertDerivatives(expr, at: inputs)
      let expected = concatReference(
        parts.map { part in
          var shape = part.shape
          shape.insert(1, at: axis)
          return part.reshaped(shape)
        }, axis: axis)
      try assertValues(expr, at: inputs, equal: expected, relative: 0)
    }
    let scalars: Inputs = ["a": Tensor(1.5), "b": Tensor(-0.5)]
    try assertDerivatives("stack(a, b, a)", at: scalars)
    try assertValues("stack(a, b, a)", at: scalars, equal: Tensor(shape: [3], scalars: [1.5, -0.5, 1.5]), relative: 0)
    XCTAssertThrowsError(try compile("stack(a, b, c, axis=3)", inputs))
    XCTAssertThrowsError(try compile("stack(a, b, c, axis=-4)", inputs))
  }

  func testSlice() throws {
    var rng = SeededGenerator("slice")
    let x = Domain.uniform(-2...2).sample(&rng, [6, 3])
    // Python's slices of a length-6 axis, with the positions they take.
    let cases: [(String, [Int])] = [
      ("start=1", [1, 2, 3, 4, 5]), ("stop=-1", [0, 1, 2, 3, 4]), ("start=1, stop=5, step=2", [1, 3]),
      ("step=-1", [5, 4, 3, 2, 1, 0]), ("start=-1, step=-2", [5, 3, 1]), ("start=4, stop=0, step=-2", [4, 2]),
      ("start=-2", [4, 5]), ("start=10", []), ("start=-10, stop=3", [0, 1, 2]),
      ("stop=-10, step=-1", [5, 4, 3, 2, 1, 0]),
      ("start=2, stop=2", []), ("step=3", [0, 3]), ("start=5, stop=-7, step=-4", [5, 1]),
      ("start=-3, stop=-1", [3, 4]),
      ("start=0, stop=6, step=10", [0]), ("start=3, stop=1", []),
    ]
    for (attributes, positions) in cases {
      let expr = "slice(x, \(attributes))"
      try assertDerivatives(expr, at: ["x": x], hessian: positions.count > 3)
      try assertValues(expr, at: ["x": x], equal: takeReference(x, axis: 0, positions), relative: 0)
    }
    let wide = Domain.uniform(-2...2).sample(&rng, [2, 6])
    for (attributes, positions) in [
      ("axis=1, start=1", [1, 2, 3, 4, 5]), ("axis=-1, step=-3", [5, 2]), ("axis=1, stop=-4", [0, 1]),
    ] {
      let expr = "slice(x, \(attributes))"
      try assertDerivatives(expr, at: ["x": wide])
      try assertValues(expr, at: ["x": wide], equal: takeReference(wide, axis: 1, positions), relative: 0)
    }
    // A one-dimensional slice inside an elementwise chain (a strided read in the fused executor).
    let long = Domain.uniform(-2...2).sample(&rng, [600])
    try assertDirectionalDerivatives(
      "sum(sin(slice(v, start=1)) * slice(v, stop=-1)) + sum(slice(v, step=-1) * v)", at: ["v": long])
    try assertDirectionalDerivatives("sum(exp(slice(v, start=1, step=2)) * slice(v, step=2))", at: ["v": long])
    for bad in ["step=0", "axis=2", "axis=[]", "axis=[0, 1]", "start=0.5"] {
      XCTAssertThrowsError(try compile("slice(x, \(bad))", ["x": x]), bad)
    }
  }

  func testIndex() throws {
    var rng = SeededGenerator("index")
    let x = Domain.uniform(-2...2).sample(&rng, [4, 3])
    let cases: [(String, Int, [Int])] = [
      ("indices=[2, 0, 2]", 0, [2, 0, 2]), ("indices=[-1, 1, -1, -1], axis=1", 1, [2, 1, 2, 2]),
      ("indices=[], axis=0", 0, []), ("indices=[3], axis=-2", 0, [3]), ("indices=[0, -3, 1, -4]", 0, [0, 1, 1, 0]),
    ]
    for (attributes, axis, positions) in cases {
      let expr = "index(x, \(attributes))"
      try assertDerivatives(expr, at: ["x": x])
      try assertValues(expr, at: ["x": x], equal: takeReference(x, axis: axis, positions), relative: 0)
    }
    let cube = Domain.uniform(-2...2).sample(&rng, [2, 3, 2])
    try assertDerivatives("index(x, indices=[0, 2, 2], axis=-2)", at: ["x": cube])
    try assertValues(
      "index(x, indices=[0, 2, 2], axis=-2)", at: ["x": cube], equal: takeReference(cube, axis: 1, [0, 2, 2]),
      relative: 0)
    let vector = Domain.uniform(-2...2).sample(&rng, [5])
    try assertDerivatives("index(x, indices=[4, -5, 0, 4])", at: ["x": vector])
    for bad in ["indices=[4]", "indices=[-5]", "indices=[0], axis=2", "axis=0"] {
      XCTAssertThrowsError(try compile("index(x, \(bad))", ["x": x]), bad)
    }
  }

  func testSqueeze() throws {
    var rng = SeededGenerator("squeeze")
    let x = Domain.uniform(-2...2).sample(&rng, [1, 3, 1])
    for (attributes, shape) in [("", [3]), (", axis=0", [3, 1]), (", axis=-1", [1, 3]), (", axis=[0, 2]", [3])] {
      let expr = "squeeze(x\(attributes))"
      try assertDerivatives(expr, at: ["x": x])
      try assertValues(expr, at: ["x": x], equal: x.reshaped(shape), relative: 0)
    }
    try assertValues("squeeze(x)", at: ["x": Tensor(shape: [1, 1], scalars: [2])], equal: Tensor(2), relative: 0)
    XCTAssertThrowsError(try compile("squeeze(x, axis=1)", ["x": x]))
    XCTAssertThrowsError(try compile("squeeze(x, axis=3)", ["x": x]))
  }

  func testExpandDims() throws {
    var rng = SeededGenerator("expand_dims")
    let x = Domain.uniform(-2...2).sample(&rng, [2, 3])
    for (axis, shape) in [(0, [1, 2, 3]), (1, [2, 1, 3]), (2, [2, 3, 1]), (-1, [2, 3, 1]), (-3, [1, 2, 3])] {
      let expr = "expand_dims(x, axis=\(axis))"
      try assertDerivatives(expr, at: ["x": x])
      try assertValues(expr, at: ["x": x], equal: x.reshaped(shape), relative: 0)
    }
    try assertValues(
      "expand_dims(x, axis=0)", at: ["x": Tensor(3)], equal: Tensor(shape: [1], scalars: [3]), relative: 0)
    // expand_dims then broadcast: an outer sum.
    try assertDerivatives(
      "expand_dims(x, axis=-1) + expand_dims(x, axis=0)", at: ["x": Tensor(shape: [3], scalars: [1, 2, 3])])
    XCTAssertThrowsError(try compile("expand_dims(x, axis=3)", ["x": x]))
    XCTAssertThrowsError(try compile("expand_dims(x)", ["x": x]))
  }

  func testConst() throws {
    let x = Tensor(shape: [3], scalars: [0.5, -1, 2])
    try assertDerivatives("x * const(value=[1, 2, 3]) + const(value=2.5)", at: ["x": x])
    try assertValues(
      "x * const(value=[1, 2, 3]) + const(value=2.5)", at: ["x": x], equal: Tensor(shape: [3], scalars: [3, 0.5, 8.5]),
      relative: 0)
    try assertValues("const(value=[1, -2])", at: [:], equal: Tensor(shape: [2], scalars: [1, -2]), relative: 0)
    try assertValues("const(value=-0.5) * 2", at: [:], equal: Tensor(-1), relative: 0)
    XCTAssertThrowsError(try compile("const(value=true)", [:]))
    XCTAssertThrowsError(try compile("const()", [:]))
  }

  // MARK: Coverage

  /// One expression per wire op, with the inputs it is compiled for.
  private static let wireOps: [(name: String, expr: String)] = [
    ("add", "add(x, y)"), ("sub", "sub(x, y)"), ("mul", "mul(x, y)"), ("div", "div(x, y)"), ("pow", "pow(x, y)"),
    ("maximum", "maximum(x, y)"), ("minimum", "minimum(x, y)"), ("atan2", "atan2(x, y)"), ("neg", "neg(x)"),
    ("abs", "abs(x)"), ("sign", "sign(x)"), ("exp", "exp(x)"), ("log", "log(x)"), ("log1p", "log1p(x)"),
    ("expm1", "expm1(x)"), ("sqrt", "sqrt(x)"), ("square", "square(x)"), ("sin", "sin(x)"), ("cos", "cos(x)"),
    ("tan", "tan(x)"), ("asin", "asin(x)"), ("acos", "acos(x)"), ("atan", "atan(x)"), ("sinh", "sinh(x)"),
    ("cosh", "cosh(x)"), ("tanh", "tanh(x)"), ("sigmoid", "sigmoid(x)"), ("relu", "relu(x)"),
    ("softplus", "softplus(x)"), ("erf", "erf(x)"), ("sum", "sum(x)"), ("mean", "mean(x)"), ("max", "max(x)"),
    ("min", "min(x)"), ("prod", "prod(x)"), ("logsumexp", "logsumexp(x)"), ("matmul", "matmul(m, x)"),
    ("dot", "dot(x, y)"), ("transpose", "transpose(m)"), ("outer", "outer(x, y)"),
    ("reshape", "reshape(m, shape=[-1])"), ("broadcast_to", "broadcast_to(x, shape=[2, 3])"),
    ("concat", "concat(x, y)"), ("stack", "stack(x, y)"), ("slice", "slice(x, start=1)"),
    ("index", "index(x, indices=[0])"), ("squeeze", "squeeze(reshape(x, shape=[1, 3]))"),
    ("expand_dims", "expand_dims(x, axis=0)"), ("softmax", "softmax(x)"), ("log_softmax", "log_softmax(x)"),
    ("where", "where(x, y, x)"), ("lt", "lt(x, y)"), ("le", "le(x, y)"), ("gt", "gt(x, y)"), ("ge", "ge(x, y)"),
    ("eq", "eq(x, y)"), ("ne", "ne(x, y)"), ("stop_gradient", "stop_gradient(x)"), ("const", "const(value=1) * x"),
  ]

  /// Every op of the wire contract has a test above, and together they reach every engine op. A new op fails this
  /// test until it is added here (and given its own test).
  func testEveryOpIsCovered() throws {
    XCTAssertEqual(Set(Self.wireOps.map(\.name)), Set(OpCatalog.all.map(\.name)))
    let inputs: Inputs = [
      "x": Tensor(shape: [3], scalars: [1, 2, 3]), "y": Tensor(shape: [3], scalars: [2, 1, 3]),
      "m": Tensor(repeating: 1, shape: [2, 3]),
    ]
    var reached = Set<OpCode>()
    for (name, expr) in Self.wireOps {
      let program = try compile(expr, inputs)
      XCTAssertGreaterThan(program.instructionCount, 0, name)
      for index in 0..<program.instructionCount { reached.insert(program.op(at: index)) }
    }
    XCTAssertEqual(
      reached, Set(OpCode.allCases), "engine ops no wire op reaches: \(Set(OpCode.allCases).subtracting(reached))")
  }
}
