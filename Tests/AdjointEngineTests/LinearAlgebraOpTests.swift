import AdjointEngine
import AdjointExpressions
import Dispatch
import Foundation
import Synchronization
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

  /// Given a `parallelFor`, products of at least 2^22 multiply-adds run as halves of their rows: forward (A·B),
  /// reverse (gA = gC·Bᵀ and gB = Aᵀ·gC, transposed operands), and an adjoint that two products accumulate into. The
  /// halves run at once give the results of the halves run one after the other bit for bit, and both (and the whole
  /// products) equal plain loops' to rounding.
  func testLargeProductsSplitAcrossThreadsGiveTheSameResults() throws {
    var rng = SeededGenerator("split products")
    // 130 x 260 times 260 x 140: 4.7M multiply-adds; halves of 65 rows.
    let inputs: Inputs = [
      "a": Domain.uniform(-1...1).sample(&rng, [130, 260]), "b": Domain.uniform(-1...1).sample(&rng, [260, 140]),
      "c": Domain.uniform(-1...1).sample(&rng, [260, 140]), "w": Domain.uniform(-1...1).sample(&rng, [130, 140]),
    ]
    let program = try compile("sum(tanh(a @ b) * w) + sum((a @ c) * w)", inputs)
    let whole = workspace(program, inputs).valueWithPullback()
    let halvesInTurn = workspace(program, inputs)
    halvesInTurn.parallelFor = { count, body in for part in 0..<count { body(part) } }
    let plain = halvesInTurn.valueWithPullback()
    // The gradients by plain loops: gC₁ = w·(1 − tanh²(a·b)), gC₂ = w; ga = gC₁·bᵀ + gC₂·cᵀ, gb = aᵀ·gC₁, gc = aᵀ·gC₂.
    let (a, b, c, w) = (inputs["a"]!.scalars, inputs["b"]!.scalars, inputs["c"]!.scalars, inputs["w"]!.scalars)
    // x (m×k, or k×m when transposed) times y (k×n, or n×k when transposed).
    func product(_ x: [Double], _ y: [Double], _ m: Int, _ k: Int, _ n: Int, tx: Bool = false, ty: Bool = false)
      -> [Double]
    {
      var out = [Double](repeating: 0, count: m * n)
      for i in 0..<m {
        for l in 0..<k {
          let left = tx ? x[l * m + i] : x[i * k + l]
          for j in 0..<n { out[i * n + j] += left * (ty ? y[j * k + l] : y[l * n + j]) }
        }
      }
      return out
    }
    let ab = product(a, b, 130, 260, 140)
    let g1 = (0..<ab.count).map { (1 - tanh(ab[$0]) * tanh(ab[$0])) * w[$0] }
    let ga = zip(product(g1, b, 130, 140, 260, ty: true), product(w, c, 130, 140, 260, ty: true)).map { $0 + $1 }
    let expected: [(String, [Double], [Int])] = [
      ("a", ga, [130, 260]), ("b", product(a, g1, 260, 130, 140, tx: true), [260, 140]),
      ("c", product(a, w, 260, 130, 140, tx: true), [260, 140]),
    ]
    for (name, gradient, shape) in expected {
      let index = try inputIndices(program, [name])[0]
      assertClose(plain.adjoints[index], Tensor(shape: shape, scalars: gradient), relative: 1e-12, name + " (halves)")
      assertClose(whole.adjoints[index], Tensor(shape: shape, scalars: gradient), relative: 1e-12, name + " (whole)")
    }
    let parts = Atomic<Int>(0)
    let threads = Mutex<Set<String>>([])
    let split = workspace(program, inputs)
    // Part 0 on the calling thread, the others on another at the same time (concurrentPerform may run all on one).
    split.parallelFor = { count, body in
      @Sendable func run(_ part: Int) {
        parts.add(1, ordering: .relaxed)
        threads.withLock { _ = $0.insert("\(pthread_self())") }
        body(part)
      }
      let others = DispatchGroup()
      DispatchQueue.global().async(group: others) { for part in 1..<count { run(part) } }
      run(0)
      others.wait()
    }
    func differences(_ x: Tensor, _ y: Tensor) -> Int {
      x.shape != y.shape ? -1 : zip(x.scalars, y.scalars).filter { $0.bitPattern != $1.bitPattern }.count
    }
    for _ in 0..<2 {  // a second replay too
      let (value, adjoints) = split.valueWithPullback()
      XCTAssertEqual(differences(value, plain.value), 0)
      XCTAssertEqual(adjoints.count, plain.adjoints.count)
      for (got, expected) in zip(adjoints, plain.adjoints) { XCTAssertEqual(differences(got, expected), 0) }
    }
    // Each replay: two forward products and four reverse ones (gA twice, gB, gC), each in two halves.
    XCTAssertEqual(parts.load(ordering: .relaxed), 2 * 6 * 2)
    XCTAssertGreaterThan(threads.withLock { $0.count }, 1)
    // Below the size, nothing is split.
    let small: Inputs = ["a": inputs["a"]!, "b": Tensor(repeating: 0.5, shape: [260, 2])]
    let smallSplit = workspace(try compile("sum(a @ b)", small), small)
    smallSplit.parallelFor = { _, _ in XCTFail("a small product was split") }
    XCTAssertEqual(smallSplit.valueWithPullback().value, try evaluate("sum(a @ b)", small))
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
