import AdjointEngine
import AdjointExpressions
import XCTest

/// The derivative ladder for matmul (vector, matrix, batched, broadcast batches), dot, outer and transpose.
final class LinearAlgebraOpTests: XCTestCase {
  func testMatmul() throws {
    var rng = SeededGenerator("matmul")
    let shapes: [([Int], [Int])] = [
      ([3, 4], [4, 2]),  // matrix @ matrix
      ([4], [4, 2]),  // vector @ matrix
      ([3, 4], [4]),  // matrix @ vector
      ([4], [4]),  // vector @ vector: a scalar
      ([2, 3, 4], [4, 5]),  // batched @ matrix
      ([2, 1, 3, 4], [3, 4, 2]),  // batch dimensions broadcast to [2, 3]
      ([4], [2, 4, 3]),  // vector @ batched
      ([2, 3, 4], [4]),  // batched @ vector
      ([1, 3, 2], [5, 2, 1]),  // batch [1] against [5]
      ([1, 1], [1, 1]),
    ]
    for (shapeA, shapeB) in shapes {
      let inputs: Inputs = [
        "a": Domain.uniform(-1...1).sample(&rng, shapeA), "b": Domain.uniform(-1...1).sample(&rng, shapeB),
      ]
      let expected = matmulReference(inputs["a"]!, inputs["b"]!)
      for expr in ["matmul(a, b)", "a @ b"] {
        try assertDerivatives(expr, at: inputs, hessian: expr == "a @ b")
        try assertValues(expr, at: inputs, equal: expected, relative: 1e-13)
      }
      // Both operands computed, and one operand used twice.
      try assertDerivatives("tanh(a) @ (b * 2)", at: inputs, hessian: false)
    }
    let square = Domain.uniform(-1...1).sample(&rng, [3, 3])
    try assertDerivatives("x @ x @ x", at: ["x": square])
  }

  func testMatmulOfEmptyDimensions() throws {
    let inputs: Inputs = ["a": Tensor(shape: [3, 0], scalars: []), "b": Tensor(shape: [0, 2], scalars: [])]
    try assertValues("a @ b", at: inputs, equal: Tensor(repeating: 0, shape: [3, 2]), relative: 0)
    let program = try compile("sum(a @ b) + 1", inputs)
    let (value, adjoints) = workspace(program, inputs).valueWithPullback()
    XCTAssertEqual(value, Tensor(1))
    XCTAssertEqual(adjoints.map(\.shape), [[3, 0], [0, 2]])
  }

  func testMatmulZeroCotangentMeetsInfinity() throws {
    // gB = Aᵀ·gC with an infinite A[0][0] whose row of gC is zero: the term is exactly zero, not NaN (BLAS would
    // give NaN; the engine falls back to a loop that honours the zero rule).
    let inputs: Inputs = [
      "a": Tensor(shape: [2, 2], scalars: [.infinity, 1, 2, 3]), "b": Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]),
      "w": Tensor(shape: [2, 2], scalars: [0, 0, 1, 1]),
    ]
    let program = try compile("sum((a @ b) * w)", inputs)
    let adjoints = workspace(program, inputs).valueWithPullback(wrt: try inputIndices(program, ["b"])).adjoints
    XCTAssertEqual(adjoints[try inputIndices(program, ["b"])[0]], Tensor(shape: [2, 2], scalars: [2, 2, 3, 3]))
  }

  func testMatmulShapeErrors() {
    for (a, b) in [([3, 4], [3, 4]), ([2, 3, 4], [3, 4, 2]), ([], [3])] as [([Int], [Int])] {
      let inputs: Inputs = ["a": Tensor(repeating: 1, shape: a), "b": Tensor(repeating: 1, shape: b)]
      XCTAssertThrowsError(try compile("a @ b", inputs), "\(a) @ \(b)") { error in
        XCTAssertEqual((error as? Diagnostic)?.kind, .semantic)
      }
    }
  }

  func testDot() throws {
    var rng = SeededGenerator("dot")
    for count in [1, 5] {
      let inputs: Inputs = [
        "a": Domain.uniform(-2...2).sample(&rng, [count]), "b": Domain.uniform(-2...2).sample(&rng, [count]),
      ]
      try assertDerivatives("dot(a, b)", at: inputs)
      try assertDerivatives("dot(a, a)", at: inputs)
      let expected = zip(inputs["a"]!.scalars, inputs["b"]!.scalars).map(*).reduce(0, +)
      try assertValues("dot(a, b)", at: inputs, equal: Tensor(expected), relative: 1e-14)
    }
    let matrix: Inputs = ["a": Tensor(repeating: 1, shape: [2, 2]), "b": Tensor(repeating: 1, shape: [2, 2])]
    XCTAssertThrowsError(try compile("dot(a, b)", matrix))
    XCTAssertThrowsError(
      try compile("dot(a, b)", ["a": Tensor(repeating: 1, shape: [2]), "b": Tensor(repeating: 1, shape: [3])]))
  }

  func testOuter() throws {
    var rng = SeededGenerator("outer")
    for (m, n) in [(3, 4), (1, 2), (2, 1)] {
      let a = Domain.uniform(-2...2).sample(&rng, [m])
      let b = Domain.uniform(-2...2).sample(&rng, [n])
      try assertDerivatives("outer(a, b)", at: ["a": a, "b": b])
      try assertDerivatives("outer(a, a)", at: ["a": a])
      try assertValues(
        "outer(a, b)", at: ["a": a, "b": b], equal: Tensor.build([m, n]) { a.scalars[$0[0]] * b.scalars[$0[1]] },
        relative: 0)
    }
  }

  func testTranspose() throws {
    var rng = SeededGenerator("transpose")
    let cube = Domain.uniform(-2...2).sample(&rng, [2, 3, 4])
    let cases: [(String, Tensor, [Int])] = [
      ("transpose(x)", cube, [2, 1, 0]), ("transpose(x, axes=[1, 0, 2])", cube, [1, 0, 2]),
      ("transpose(x, axes=[-1, 0, 1])", cube, [2, 0, 1]), ("transpose(x, axes=[0, 2, 1])", cube, [0, 2, 1]),
      ("transpose(x)", Domain.uniform(-2...2).sample(&rng, [3, 5]), [1, 0]),
      ("transpose(x)", Domain.uniform(-2...2).sample(&rng, [4]), [0]),
      ("transpose(x)", Domain.uniform(-2...2).sample(&rng, []), []),
    ]
    for (expr, x, permutation) in cases {
      try assertDerivatives(expr, at: ["x": x])
      try assertValues(expr, at: ["x": x], equal: transposeReference(x, permutation), relative: 0)
    }
    // A transpose feeding a matmul and a broadcast.
    let m = Domain.uniform(-2...2).sample(&rng, [3, 2])
    try assertDerivatives("transpose(m) @ m + sum(transpose(m, axes=[1, 0]) * 0.5, axis=1)", at: ["m": m])
    XCTAssertThrowsError(try compile("transpose(x, axes=[0, 0, 1])", ["x": cube]))
    XCTAssertThrowsError(try compile("transpose(x, axes=[0, 1])", ["x": cube]))
  }
}
