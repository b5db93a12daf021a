// The example's data, model and training loop. The SDK's tests compile this same file (through a symbolic link in
// Tests/AdjointClientTests), so what they check is what the example runs.
import AdjointClient
import Foundation

/// Linear regression y ≈ X·w + b by gradient descent: the service computes the loss and its gradient, Swift updates
/// the parameters.
enum LinearRegression {
  static let rows = 200
  static let features = 3
  static let learningRate = 0.1

  /// A small, fixed pseudo-random generator (SplitMix64), so the data are the same on every platform.
  struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    /// A standard normal sample (Box–Muller).
    mutating func normal() -> Double {
      let u = Double.random(in: Double.ulpOfOne..<1, using: &self)
      let v = Double.random(in: 0..<1, using: &self)
      return (-2 * Foundation.log(u)).squareRoot() * Foundation.cos(2 * Double.pi * v)
    }
  }

  /// 200 rows of 3 standard normal features (row-major), and targets X·[1.5, -2, 0.5] + 0.3 plus noise of deviation
  /// 0.1.
  static func syntheticData() -> (x: [Double], y: [Double]) {
    var generator = SplitMix64(state: 42)
    let trueWeights = [1.5, -2.0, 0.5]
    let trueBias = 0.3
    var x: [Double] = []
    var y: [Double] = []
    for _ in 0..<rows {
      let row = (0..<features).map { _ in generator.normal() }
      x += row
      y.append(zip(row, trueWeights).map(*).reduce(trueBias, +) + 0.1 * generator.normal())
    }
    return (x, y)
  }

  /// The model's loss, recorded as it is written and sent as a JSON graph: the mean squared error.
  static func lossGraph() -> Graph {
    let x = Input("X")
    let target = Input("y")
    let w = Input("w")
    let b = Input("b")
    let residual = matmul(x, w) + b - target
    return Graph(mean(residual ** 2), name: "loss")
  }

  /// The optimum: the normal equations of [X 1]·[w; b] = y, solved by Gaussian elimination with partial pivoting.
  static func leastSquares(_ xData: [Double], _ yData: [Double]) -> (weights: [Double], bias: Double) {
    let n = features + 1
    var a = [[Double]](repeating: [Double](repeating: 0, count: n + 1), count: n)
    for r in 0..<rows {
      let row = Array(xData[(r * features)..<((r + 1) * features)]) + [1]
      for i in 0..<n {
        for j in 0..<n { a[i][j] += row[i] * row[j] }
        a[i][n] += row[i] * yData[r]
      }
    }
    for column in 0..<n {
      let pivot = (column..<n).max { abs(a[$0][column]) < abs(a[$1][column]) }!
      a.swapAt(column, pivot)
      for r in 0..<n where r != column {
        let factor = a[r][column] / a[column][column]
        for k in column...n { a[r][k] -= factor * a[column][k] }
      }
    }
    let solution = (0..<n).map { a[$0][n] / a[$0][$0] }
    return (Array(solution[0..<features]), solution[features])
  }

  /// The mean squared error of a fit, computed in Swift (to check the service's loss).
  static func mse(_ weights: [Double], _ bias: Double, _ xData: [Double], _ yData: [Double]) -> Double {
    (0..<rows).map { r in
      let prediction = (0..<features).map { xData[r * features + $0] * weights[$0] }.reduce(bias, +)
      return (prediction - yData[r]) * (prediction - yData[r])
    }.reduce(0, +) / Double(rows)
  }

  /// The outcome of ``train(with:report:)``.
  struct Outcome {
    var weights: [Double]
    var bias: Double
    var finalLoss: Double
    var optimalLoss: Double
    var steps: Int
  }

  /// Registers the loss once, then steps by gradient descent from zero until the loss is within 1e-6 of the
  /// least-squares optimum (at most 10,000 steps). `report` sees each step's number and loss.
  static func train(
    with client: AdjointClient, registered: (String) -> Void = { _ in },
    report: (_ step: Int, _ loss: Double, _ optimalLoss: Double) -> Void = { _, _, _ in }
  ) async throws -> Outcome {
    let (xData, yData) = syntheticData()
    let xMatrix = Tensor(shape: [rows, features], scalars: xData)
    let y = Tensor(yData)
    let optimum = leastSquares(xData, yData)
    let optimalLoss = mse(optimum.weights, optimum.bias, xData, yData)
    // Register the graph once; each step then names it by id.
    let graph = try await client.register(lossGraph())
    registered(graph.id)
    var weights = [Double](repeating: 0, count: features)
    var bias = 0.0
    for step in 0...10_000 {
      let r = try await client.gradient(
        of: graph, at: ["X": xMatrix, "y": y, "w": Tensor(weights), "b": Tensor(bias)], wrt: ["w", "b"])
      let value = r.value.item!
      report(step, value, optimalLoss)
      if value - optimalLoss <= 1e-6 {
        return Outcome(weights: weights, bias: bias, finalLoss: value, optimalLoss: optimalLoss, steps: step)
      }
      let gradientW = r.gradient["w"]!.scalars
      for i in 0..<features { weights[i] -= learningRate * gradientW[i] }
      bias -= learningRate * r.gradient["b"]!.item!
    }
    return Outcome(weights: weights, bias: bias, finalLoss: .infinity, optimalLoss: optimalLoss, steps: 10_001)
  }
}
