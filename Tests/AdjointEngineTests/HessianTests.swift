import AdjointEngine
import Foundation
import XCTest

/// Hessians by forward over reverse: Rosenbrock against its closed form, symmetry, Hessian-vector products, and a
/// few smooth functions against closed forms and finite differences of the gradient.
final class HessianTests: XCTestCase {
  private static let rosenbrock =
    "sum(100*(slice(x, start=1) - slice(x, stop=-1)^2)^2 + (1 - slice(x, stop=-1))^2)"

  /// f = Σ_{i<n-1} 100·(x_{i+1} − x_i²)² + (1 − x_i)².
  private static func rosenbrockClosedForm(_ x: [Double]) -> (value: Double, gradient: [Double], hessian: [Double]) {
    let n = x.count
    var value = 0.0
    var gradient = [Double](repeating: 0, count: n)
    var hessian = [Double](repeating: 0, count: n * n)
    for i in 0..<(n - 1) {
      let d = x[i + 1] - x[i] * x[i]
      value += 100 * d * d + (1 - x[i]) * (1 - x[i])
      gradient[i] += -400 * x[i] * d - 2 * (1 - x[i])
      gradient[i + 1] += 200 * d
      hessian[i * n + i] += 1200 * x[i] * x[i] - 400 * x[i + 1] + 2
      hessian[(i + 1) * n + i + 1] += 200
      hessian[i * n + i + 1] = -400 * x[i]
      hessian[(i + 1) * n + i] = -400 * x[i]
    }
    return (value, gradient, hessian)
  }

  func testRosenbrockAgainstTheClosedForm() throws {
    var rng = SeededGenerator("rosenbrock")
    for n in [5, 100] {
      let x = Domain.uniform(-1.5...1.5).sample(&rng, [n])
      let program = try compile(Self.rosenbrock, ["x": x])
      let ws = workspace(program, ["x": x])
      let (value, gradient, blocks) = ws.hessian()
      let expected = Self.rosenbrockClosedForm(x.scalars)
      XCTAssertEqual(value, expected.value, accuracy: 1e-12 * max(1, abs(expected.value)))
      assertClose(gradient[0], Tensor(shape: [n], scalars: expected.gradient), relative: 1e-12, "gradient, n = \(n)")
      let hessian = blocks[0][0]
      XCTAssertEqual(hessian.shape, [n, n])
      assertClose(hessian, Tensor(shape: [n, n], scalars: expected.hessian), relative: 1e-9, "Hessian, n = \(n)")
      assertClose(hessian, transposeReference(hessian, [1, 0]), relative: 1e-12, "symmetry, n = \(n)")
      // Hessian-vector products equal H·v.
      for _ in 0..<3 {
        let v = Domain.uniform(-1...1).sample(&rng, [n])
        let product = ws.hessianVectorProduct(direction: [0: v.scalars])
        XCTAssertEqual(product.value, value)
        XCTAssertEqual(product.gradient, gradient)
        for i in 0..<n {
          let row = (0..<n).map { hessian.scalars[i * n + $0] * v.scalars[$0] }
          XCTAssertEqual(
            product.product[0].scalars[i], row.reduce(0, +), accuracy: 1e-12 * max(1, row.map(abs).reduce(0, +)),
            "(H·v)[\(i)], n = \(n)")
        }
      }
    }
    // The minimum: value and gradient zero, Hessian positive definite along the diagonal.
    let ones = Tensor(repeating: 1, shape: [5])
    let (value, gradient, blocks) = workspace(try compile(Self.rosenbrock, ["x": ones]), ["x": ones]).hessian()
    XCTAssertEqual(value, 0)
    assertExactlyZero(gradient[0], "gradient at the minimum")
    assertClose(
      blocks[0][0], Tensor(shape: [5, 5], scalars: Self.rosenbrockClosedForm(ones.scalars).hessian), relative: 0)
  }

  func testExpTimesSinAgainstTheClosedForm() throws {
    var rng = SeededGenerator("exp sin")
    let inputs: Inputs = ["x": Domain.uniform(-1...1).sample(&rng, [3]), "y": Domain.uniform(-2...2).sample(&rng, [3])]
    let expr = "sum(exp(x) * sin(y))"
    let program = try compile(expr, inputs)
    let (x, y) = (inputs["x"]!.scalars, inputs["y"]!.scalars)
    let blocks = workspace(program, inputs).hessian(wrt: try inputIndices(program, ["x", "y"])).blocks
    func diagonal(_ f: (Int) -> Double) -> Tensor { Tensor.build([3, 3]) { $0[0] == $0[1] ? f($0[0]) : 0 } }
    assertClose(blocks[0][0], diagonal { Foundation.exp(x[$0]) * Foundation.sin(y[$0]) }, relative: 1e-15, "H[x][x]")
    assertClose(blocks[0][1], diagonal { Foundation.exp(x[$0]) * Foundation.cos(y[$0]) }, relative: 1e-15, "H[x][y]")
    assertClose(blocks[1][0], diagonal { Foundation.exp(x[$0]) * Foundation.cos(y[$0]) }, relative: 1e-15, "H[y][x]")
    assertClose(blocks[1][1], diagonal { -Foundation.exp(x[$0]) * Foundation.sin(y[$0]) }, relative: 1e-15, "H[y][y]")
    try assertHessianMatchesDifferences(expr, at: inputs, wrt: ["x", "y"])
  }

  func testLogsumexpAgainstTheClosedForm() throws {
    var rng = SeededGenerator("logsumexp hessian")
    let x = Domain.uniform(-2...2).sample(&rng, [4])
    let hessian = workspace(try compile("logsumexp(x)", ["x": x]), ["x": x]).hessian().blocks[0][0]
    let total = x.scalars.map(Foundation.exp).reduce(0, +)
    let p = x.scalars.map { Foundation.exp($0) / total }
    // H = diag(p) − p·pᵀ.
    assertClose(
      hessian, Tensor.build([4, 4]) { ($0[0] == $0[1] ? p[$0[0]] : 0) - p[$0[0]] * p[$0[1]] }, relative: 1e-14)
    try assertHessianMatchesDifferences("logsumexp(x)", at: ["x": x], wrt: ["x"])
  }

  func testSoftmaxLossesAgainstDifferences() throws {
    var rng = SeededGenerator("softmax hessian")
    let inputs: Inputs = [
      "z": Domain.uniform(-2...2).sample(&rng, [2, 3]),
      "t": Tensor(shape: [2, 3], scalars: [0, 1, 0, 0.25, 0.25, 0.5]),
      "c": Domain.uniform(-1...1).sample(&rng, [3]),
    ]
    try assertHessianMatchesDifferences("-sum(t * log_softmax(z))", at: inputs, wrt: ["z"])
    try assertHessianMatchesDifferences(
      "sum(softmax(z, axis=0) * c) + sum(softmax(z) ^ 2)", at: inputs, wrt: ["z", "c"])
  }

  func testTanhMultilayerPerceptronAgainstDifferences() throws {
    var rng = SeededGenerator("mlp")
    let inputs: Inputs = [
      "X": Domain.uniform(-1...1).sample(&rng, [4, 3]), "W1": Domain.uniform(-1...1).sample(&rng, [3, 5]),
      "b1": Domain.uniform(-0.5...0.5).sample(&rng, [5]), "W2": Domain.uniform(-1...1).sample(&rng, [5, 2]),
      "b2": Domain.uniform(-0.5...0.5).sample(&rng, [2]), "T": Domain.uniform(-1...1).sample(&rng, [4, 2]),
    ]
    let expr = "h = tanh(X @ W1 + b1); mean((h @ W2 + b2 - T) ^ 2) + 0.01 * sum(W1 * W1)"
    try assertHessianMatchesDifferences(expr, at: inputs, wrt: ["W1", "b1", "W2", "b2"])
    try assertHessianMatchesDifferences(expr, at: inputs, wrt: ["X"])
    try assertDirectionalDerivatives(expr, at: inputs)
  }

  func testHessianOfOpsAtOtherPoints() throws {
    var rng = SeededGenerator("hessian ops")
    // A scalar program (the scalar executor for values and gradients; Dual numbers for the Hessian).
    let scalars: Inputs = ["a": Tensor(0.7), "b": Tensor(-1.3)]
    try assertHessianMatchesDifferences(
      "sin(a * b) / (1 + a ^ 2) + atan2(a, b) * exp(b) - sqrt(a) * log1p(a * a) + a ^ b", at: scalars, wrt: ["a", "b"])
    let inputs: Inputs = [
      "x": Domain.uniform(0.5...1.5).sample(&rng, [3, 2]), "y": Domain.uniform(-1...1).sample(&rng, [2]),
    ]
    try assertHessianMatchesDifferences(
      "sum(prod(x, axis=0) * y) + sum(x ^ y) + logsumexp(x @ y) * (y @ y)", at: inputs, wrt: ["x", "y"])
  }
}
