// Fits y ≈ X·w + b to synthetic data by gradient descent: the service computes the loss and its gradient, Swift
// updates the parameters. The data come from a fixed seed, and the least-squares optimum from the normal
// equations, so the run is the same every time and its end can be checked.
//
//   swift run LinearRegression                                   # in-process (the local backend)
//   ADJOINT_URL=http://127.0.0.1:8080 swift run LinearRegression # against `adjoint serve`
import AdjointClient
import Foundation

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

let rows = 200
let features = 3

/// 200 rows of 3 standard normal features, and targets X·[1.5, -2, 0.5] + 0.3 plus noise of deviation 0.1.
func syntheticData() -> (x: [Double], y: [Double]) {
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

let (xData, yData) = syntheticData()
let xMatrix = Tensor(shape: [rows, features], scalars: xData)
let y = Tensor(yData)

// The model and its loss, recorded as they are written and sent as a JSON graph.
let x = Input("X")
let target = Input("y")
let w = Input("w")
let b = Input("b")
let residual = matmul(x, w) + b - target
let loss = mean(residual ** 2)

// The optimum: the normal equations of [X 1]·[w; b] = y, solved by Gaussian elimination.
func leastSquares(_ xData: [Double], _ yData: [Double]) -> (weights: [Double], bias: Double) {
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

/// The mean squared error of a fit, in Swift (to check the service's loss).
func mse(_ weights: [Double], _ bias: Double, _ xData: [Double], _ yData: [Double]) -> Double {
  (0..<rows).map { r in
    let prediction = (0..<features).map { xData[r * features + $0] * weights[$0] }.reduce(bias, +)
    return (prediction - yData[r]) * (prediction - yData[r])
  }.reduce(0, +) / Double(rows)
}
let optimum = leastSquares(xData, yData)
let optimalLoss = mse(optimum.weights, optimum.bias, xData, yData)

let client: AdjointClient
if let url = ProcessInfo.processInfo.environment["ADJOINT_URL"], !url.isEmpty {
  client = try AdjointClient(url: URL(string: url)!)
  print("service: \(url)")
} else {
  client = .local()
  print("service: in-process (set ADJOINT_URL to use a server)")
}

// Register the graph once; each step then names it by id.
let registered = try await client.register(Graph(loss, name: "loss"))
print("graph: \(registered.id)")
/// Six decimals.
func rounded(_ values: [Double]) -> String { values.map { String(format: "%.6f", $0) }.joined(separator: ", ") }
print("least-squares optimum: w = [\(rounded(optimum.weights))], b = \(rounded([optimum.bias])), loss = \(optimalLoss)")

var weights = [0.0, 0.0, 0.0]
var bias = 0.0
let learningRate = 0.1
var step = 0
while true {
  let r = try await client.gradient(
    of: registered, at: ["X": xMatrix, "y": y, "w": Tensor(weights), "b": Tensor(bias)], wrt: ["w", "b"])
  let value = r.value.item!
  if step % 10 == 0 || value - optimalLoss <= 1e-6 {
    let label = String(step).padding(toLength: 4, withPad: " ", startingAt: 0)
    print("step \(label) loss \(value)  (optimum + \(value - optimalLoss))")
  }
  if value - optimalLoss <= 1e-6 { break }
  let gradientW = r.gradient["w"]!.scalars
  let gradientB = r.gradient["b"]!.item!
  for i in 0..<features { weights[i] -= learningRate * gradientW[i] }
  bias -= learningRate * gradientB
  step += 1
  if step > 10_000 { fatalError("did not converge") }
}
print("fitted: w = [\(rounded(weights))], b = \(rounded([bias]))")
print("final loss \(mse(weights, bias, xData, yData)) is within 1e-6 of the optimum \(optimalLoss)")
