// Fits y ≈ X·w + b to synthetic data by gradient descent: the service computes the loss and its gradient, Swift
// updates the parameters (Training.swift). The data come from a fixed seed, and the least-squares optimum from the
// normal equations, so the run is the same every time and its end can be checked.
//
//   swift run LinearRegression                                   # in-process (the local backend)
//   ADJOINT_URL=http://127.0.0.1:8080 swift run LinearRegression # against `adjoint serve`
import AdjointClient
import Foundation

let client: AdjointClient
if let url = ProcessInfo.processInfo.environment["ADJOINT_URL"], !url.isEmpty {
  client = try AdjointClient(url: URL(string: url)!)
  print("service: \(url)")
} else {
  client = .local()
  print("service: in-process (set ADJOINT_URL to use a server)")
}

/// Six decimals.
func rounded(_ values: [Double]) -> String { values.map { String(format: "%.6f", $0) }.joined(separator: ", ") }

let (xData, yData) = LinearRegression.syntheticData()
let optimum = LinearRegression.leastSquares(xData, yData)
let outcome = try await LinearRegression.train(
  with: client, registered: { print("graph: \($0)") },
  report: { step, loss, optimalLoss in
    if step == 0 {
      print(
        "least-squares optimum: w = [\(rounded(optimum.weights))], b = \(rounded([optimum.bias])), loss = \(optimalLoss)"
      )
    }
    if step % 10 == 0 || loss - optimalLoss <= 1e-6 {
      let label = String(step).padding(toLength: 4, withPad: " ", startingAt: 0)
      print("step \(label) loss \(loss)  (optimum + \(loss - optimalLoss))")
    }
  })
guard outcome.finalLoss.isFinite else { fatalError("did not converge") }
print("fitted: w = [\(rounded(outcome.weights))], b = \(rounded([outcome.bias]))")
let check = LinearRegression.mse(outcome.weights, outcome.bias, xData, yData)
print("final loss \(check) is within 1e-6 of the optimum \(outcome.optimalLoss)")
