import AdjointEngine
import XCTest

/// The reverse rule of matmul meets infinities and NaNs: the forward product stands in for its factors when it is
/// finite, and a non-finite one sends the check back to the factors, so every case honours the zero rule.
final class MatmulZeroRuleTests: XCTestCase {
  /// `Σ_j chain(g[i][j], b[l][j])` with chain(g, d) = 0 when either is 0: gA = gC·Bᵀ by the zero rule.
  private func leftAdjoint(_ g: Tensor, _ b: Tensor) -> Tensor {
    let (m, n, k) = (g.shape[0], g.shape[1], b.shape[0])
    return Tensor.build([m, k]) { index in
      (0..<n).reduce(0.0) { total, j in
        let (u, v) = (g.scalars[index[0] * n + j], b.scalars[index[1] * n + j])
        return total + (u == 0 || v == 0 ? 0 : u * v)
      }
    }
  }

  /// `Σ_i chain(a[i][l], g[i][j])`: gB = Aᵀ·gC by the zero rule.
  private func rightAdjoint(_ a: Tensor, _ g: Tensor) -> Tensor {
    let (m, k, n) = (a.shape[0], a.shape[1], g.shape[1])
    return Tensor.build([k, n]) { index in
      (0..<m).reduce(0.0) { total, i in
        let (u, v) = (a.scalars[i * k + index[0]], g.scalars[i * n + index[1]])
        return total + (u == 0 || v == 0 ? 0 : u * v)
      }
    }
  }

  /// Checks both adjoints of `sum((a @ b) * w)` against the zero-rule references (NaN matches NaN).
  private func check(_ a: Tensor, _ b: Tensor, _ w: Tensor, _ label: String, line: UInt = #line) throws {
    let inputs: Inputs = ["a": a, "b": b, "w": w]
    let program = try compile("sum((a @ b) * w)", inputs)
    let indices = try inputIndices(program, ["a", "b", "w"])
    let adjoints = workspace(program, inputs).valueWithPullback(wrt: [indices[0], indices[1]]).adjoints
    assertClose(adjoints[indices[0]], leftAdjoint(w, b), relative: 1e-14, "\(label): d/da", line: line)
    assertClose(adjoints[indices[1]], rightAdjoint(a, w), relative: 1e-14, "\(label): d/db", line: line)
  }

  func testNonFiniteFactorsMeetZeros() throws {
    var rng = SeededGenerator("matmul zero rule")
    let (m, k, n) = (7, 9, 5)
    for special in [Double.infinity, -.infinity, .nan] {
      for (row, column) in [(0, 0), (3, 8), (6, 4)] {
        // A non-finite element of A whose row of the cotangent is zero: gB must not see it; gA's row is zero too.
        var a = Domain.uniform(-2...2).sample(&rng, [m, k]).scalars
        a[row * k + column] = special
        var w = Domain.signed(0.5...1.5).sample(&rng, [m, n]).scalars
        for j in 0..<n { w[row * n + j] = 0 }
        let b = Domain.uniform(-2...2).sample(&rng, [k, n])
        try check(
          Tensor(shape: [m, k], scalars: a), b, Tensor(shape: [m, n], scalars: w), "A[\(row), \(column)] = \(special)")
        // The same in B, with a zero column of the cotangent.
        var bb = Domain.uniform(-2...2).sample(&rng, [k, n]).scalars
        bb[column * n + row % n] = special
        var ww = Domain.signed(0.5...1.5).sample(&rng, [m, n]).scalars
        for i in 0..<m { ww[i * n + row % n] = 0 }
        try check(
          Domain.uniform(-2...2).sample(&rng, [m, k]), Tensor(shape: [k, n], scalars: bb),
          Tensor(shape: [m, n], scalars: ww), "B[\(column), \(row % n)] = \(special)")
      }
    }
  }

  func testNonFiniteFactorsWithoutZerosPropagate() throws {
    // No zero meets the infinity: the adjoints are infinite or NaN exactly as the terms say.
    var rng = SeededGenerator("matmul propagation")
    var a = Domain.signed(0.5...2).sample(&rng, [4, 3]).scalars
    a[5] = .infinity
    try check(
      Tensor(shape: [4, 3], scalars: a), Domain.signed(0.5...2).sample(&rng, [3, 2]),
      Domain.signed(0.5...2).sample(&rng, [4, 2]), "A[1, 2] = inf")
  }

  func testAnOverflowingProductWithFiniteFactors() throws {
    // C overflows to infinity although A and B are finite: the factors are then checked themselves, and BLAS runs.
    let a = Tensor(shape: [2, 2], scalars: [1e200, 1, 2, 3])
    let b = Tensor(shape: [2, 2], scalars: [1e200, 0, 1, 4])
    try check(a, b, Tensor(shape: [2, 2], scalars: [0, 1, 1, 0]), "overflow")
  }

  func testNonFiniteCotangentMeetsZeroFactors() throws {
    // log(0) makes a cotangent of -inf through the product: d/dx log(x) at x = 0 is inf, and A or B hold zeros.
    let inputs: Inputs = [
      "a": Tensor(shape: [2, 2], scalars: [0, 1, 0, 2]), "b": Tensor(shape: [2, 2], scalars: [1, 0, 0, 3]),
    ]
    let program = try compile("sum(log(a @ b))", inputs)
    let indices = try inputIndices(program, ["a", "b"])
    let adjoints = workspace(program, inputs).valueWithPullback().adjoints
    // C = [[0, 3], [0, 6]]: column 0 of C is 0, so gC = 1/C has +inf there and 1/3, 1/6 in column 1.
    let g = Tensor(shape: [2, 2], scalars: [.infinity, 1.0 / 3, .infinity, 1.0 / 6])
    assertClose(adjoints[indices[0]], leftAdjoint(g, inputs["b"]!), relative: 1e-14, "d/da")
    assertClose(adjoints[indices[1]], rightAdjoint(inputs["a"]!, g), relative: 1e-14, "d/db")
  }

  func testBatchedProducts() throws {
    // A batch whose second matrix holds a NaN: only that matrix's products take the slow path.
    var rng = SeededGenerator("matmul batch")
    var a = Domain.uniform(-2...2).sample(&rng, [2, 3, 4]).scalars
    a[12 + 5] = .nan
    var w = Domain.signed(0.5...1.5).sample(&rng, [2, 3, 2]).scalars
    w[6 + 2] = 0
    w[6 + 3] = 0
    let inputs: Inputs = [
      "a": Tensor(shape: [2, 3, 4], scalars: a), "b": Domain.uniform(-2...2).sample(&rng, [4, 2]),
      "w": Tensor(shape: [2, 3, 2], scalars: w),
    ]
    let program = try compile("sum((a @ b) * w)", inputs)
    let indices = try inputIndices(program, ["a", "b"])
    let adjoints = workspace(program, inputs).valueWithPullback(wrt: indices).adjoints
    var expectedB = [Double](repeating: 0, count: 8)
    for t in 0..<2 {
      let slice = Tensor(shape: [3, 4], scalars: Array(a[(t * 12)..<(t * 12 + 12)]))
      let weights = Tensor(shape: [3, 2], scalars: Array(w[(t * 6)..<(t * 6 + 6)]))
      let part = rightAdjoint(slice, weights)
      for i in 0..<8 { expectedB[i] += part.scalars[i] }
      let left = leftAdjoint(weights, inputs["b"]!)
      assertClose(
        Tensor(shape: [3, 4], scalars: Array(adjoints[indices[0]].scalars[(t * 12)..<(t * 12 + 12)])), left,
        relative: 1e-14, "d/da, batch \(t)")
    }
    XCTAssertFalse(expectedB.contains { $0.isNaN }, "the reference keeps the NaN out")
    assertClose(adjoints[indices[1]], Tensor(shape: [4, 2], scalars: expectedB), relative: 1e-14, "d/db")
  }
}
