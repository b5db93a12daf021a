import AdjointEngine
import AdjointExpressions

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Workloads written in the `expr` language, compiled once and replayed with `forward(); backward()`.
enum ExprWorkload {
  /// Compiles `source` for the given input shapes, or says on standard error why the engine cannot run it yet.
  ///
  /// - Returns: the program, or `nil` when parsing or compiling fails (an op or a form the engine lacks so far).
  static func compile(_ workload: String, _ source: String, inputShapes: [String: [Int]]) -> Program? {
    do throws(Diagnostic) {
      return try GraphCompiler.compile(try ExprParser.parse(source), inputShapes: inputShapes)
    } catch {
      note("\(workload): skipped: the expression does not compile yet: \(error.message) (at \(error.location))")
      return nil
    }
  }

  /// The index of the named input in `program.inputs`.
  static func inputIndex(_ workspace: Workspace, _ name: String) throws -> Int {
    guard let index = workspace.program.inputs.firstIndex(where: { $0.name == name }) else {
      throw BenchError("the program has no input '\(name)'")
    }
    return index
  }

  /// Writes the named input of the workspace's program.
  static func setInput(_ workspace: Workspace, _ name: String, _ scalars: [Double]) throws {
    let index = try inputIndex(workspace, name)
    let shape = workspace.program.slots[workspace.program.inputs[index].slot].shape
    guard Tensor.elementCount(shape) == scalars.count else {
      throw BenchError("the input '\(name)' has shape \(shape), not \(scalars.count) elements")
    }
    workspace.setInput(index, scalars)
  }

  /// The gradient of the first output with respect to the named input, after `backward()`.
  static func gradient(_ workspace: Workspace, _ name: String) throws -> [Double] {
    guard let binding = workspace.program.input(named: name) else {
      throw BenchError("the program has no input '\(name)'")
    }
    return workspace.adjoint(ofSlot: binding.slot).scalars
  }

  /// The value of the first output, after `forward()`.
  static func value(_ workspace: Workspace) throws -> Double {
    guard let output = workspace.program.outputs.first else { throw BenchError("the program has no output") }
    return workspace.scalarValue(ofSlot: output.slot)
  }

  /// Checks two arrays elementwise to `tolerance` times the largest magnitude in `expected`.
  static func check(_ what: String, _ actual: [Double], _ expected: [Double], tolerance: Double) throws {
    guard actual.count == expected.count else {
      throw BenchError("\(what) has \(actual.count) elements, expected \(expected.count)")
    }
    let scale = Swift.max(expected.reduce(0) { Swift.max($0, abs($1)) }, Double.leastNormalMagnitude)
    for (index, (a, e)) in zip(actual, expected).enumerated() where !(abs(a - e) <= tolerance * scale) {
      throw BenchError("\(what)[\(index)] is \(a), expected \(e)")
    }
  }

  /// The checksums the anchors print: the sum of each gradient, then the 2-norm of all of them together.
  static func checksums(_ gradients: [[Double]]) -> [Double] {
    let sums = gradients.map { $0.reduce(0, +) }
    let squares = gradients.reduce(0.0) { total, gradient in gradient.reduce(total) { $0 + $1 * $1 } }
    return sums + [squares.squareRoot()]
  }
}

/// W2, Rosenbrock with n = 1,000,000 at `linspace(-1, 1, n)`: value and gradient.
enum Rosenbrock {
  static let source = "sum(100*(slice(x, start=1) - slice(x, stop=-1)^2)^2 + (1 - slice(x, stop=-1))^2)"
  static let count = 1_000_000

  /// `linspace(-1, 1, n)`, computed as the C and ADOL-C anchors do.
  static func linspace(_ n: Int) -> [Double] {
    (0..<n).map { -1.0 + 2.0 * Double($0) / Double(n - 1) }
  }

  /// The value and the analytic gradient, written out by hand.
  static func reference(_ x: [Double]) -> (value: Double, gradient: [Double]) {
    let n = x.count
    var value = 0.0
    var gradient = [Double](repeating: 0, count: n)
    for i in 0..<(n - 1) {
      let d = x[i + 1] - x[i] * x[i]
      let e = 1.0 - x[i]
      value += 100.0 * d * d + e * e
      gradient[i] += -400.0 * d * x[i] - 2.0 * e
      gradient[i + 1] += 200.0 * d
    }
    return (value, gradient)
  }

  static func run(_ policy: TimingPolicy) throws {
    guard let program = ExprWorkload.compile("W2", source, inputShapes: ["x": [count]]) else { return }
    let x = linspace(count)
    let workspace = Workspace(program)
    try ExprWorkload.setInput(workspace, "x", x)
    let timing = measure(policy) {
      workspace.forward()
      workspace.backward()
    }
    let value = try ExprWorkload.value(workspace)
    let gradient = try ExprWorkload.gradient(workspace, "x")
    let expected = reference(x)
    guard agrees(value, expected.value, tolerance: 1e-9) else {
      throw BenchError("W2: the value is \(value), expected \(expected.value)")
    }
    try ExprWorkload.check("W2: the gradient", gradient, expected.gradient, tolerance: 1e-12)
    emit(
      [("workload", .string("W2")), ("engine", .string("Adjoint")), ("form", .string("compiled replay"))]
        + timing.fields + [
          ("n", .int(count)), ("value", .double(value)), ("gcheck", .doubles(ExprWorkload.checksums([gradient]))),
        ])
  }
}

/// W3, a two-layer MLP with a softmax cross-entropy loss on one batch: gradient with respect to W1, b1, W2, b2.
enum MLP {
  static let source = "h = tanh(X @ W1 + b1); z = h @ W2 + b2; mean(logsumexp(z, axis=1) - sum(z * Y, axis=1))"
  static let batch = 256
  static let features = 784
  static let hidden = 256
  static let classes = 10
  /// The flop count of one value and gradient, as BENCHMARKS.md states it.
  static let flops = 312e6
  static let parameters = ["W1", "b1", "W2", "b2"]

  /// W3's data: the shapes and distributions of BENCHMARKS.md, drawn from a seeded generator.
  struct Data {
    var x: [Double]
    var y: [Double]
    var w1: [Double]
    var b1: [Double]
    var w2: [Double]
    var b2: [Double]

    init(seed: UInt64) {
      var generator = SplitMix64(seed: seed)
      x = (0..<(batch * features)).map { _ in generator.nextNormal() }
      y = [Double](repeating: 0, count: batch * classes)
      for row in 0..<batch { y[row * classes + Int(generator.next() % UInt64(classes))] = 1 }
      w1 = (0..<(features * hidden)).map { _ in 0.05 * generator.nextNormal() }
      b1 = [Double](repeating: 0, count: hidden)
      w2 = (0..<(hidden * classes)).map { _ in 0.05 * generator.nextNormal() }
      b2 = [Double](repeating: 0, count: classes)
    }

    var inputs: [(String, [Double], [Int])] {
      [
        ("X", x, [batch, features]), ("Y", y, [batch, classes]), ("W1", w1, [features, hidden]), ("b1", b1, [hidden]),
        ("W2", w2, [hidden, classes]), ("b2", b2, [classes]),
      ]
    }
  }

  /// The loss and its gradient with respect to W1, b1, W2, b2, written out by hand with plain loops.
  static func reference(_ data: Data) -> (value: Double, gradients: [[Double]]) {
    var h = [Double](repeating: 0, count: batch * hidden)
    for i in 0..<batch {
      for j in 0..<hidden { h[i * hidden + j] = data.b1[j] }
      for k in 0..<features {
        let xik = data.x[i * features + k]
        for j in 0..<hidden { h[i * hidden + j] += xik * data.w1[k * hidden + j] }
      }
      for j in 0..<hidden { h[i * hidden + j] = tanh(h[i * hidden + j]) }
    }
    var loss = 0.0
    var dz = [Double](repeating: 0, count: batch * classes)
    for i in 0..<batch {
      var z = data.b2
      for j in 0..<hidden {
        for c in 0..<classes { z[c] += h[i * hidden + j] * data.w2[j * classes + c] }
      }
      let top = z.max()!
      let total = z.reduce(0) { $0 + exp($1 - top) }
      loss += top + log(total)
      for c in 0..<classes {
        loss -= z[c] * data.y[i * classes + c]
        dz[i * classes + c] = (exp(z[c] - top) / total - data.y[i * classes + c]) / Double(batch)
      }
    }
    var dw2 = [Double](repeating: 0, count: hidden * classes)
    var db2 = [Double](repeating: 0, count: classes)
    var da = [Double](repeating: 0, count: batch * hidden)
    for i in 0..<batch {
      for c in 0..<classes { db2[c] += dz[i * classes + c] }
      for j in 0..<hidden {
        let hij = h[i * hidden + j]
        var back = 0.0
        for c in 0..<classes {
          dw2[j * classes + c] += hij * dz[i * classes + c]
          back += dz[i * classes + c] * data.w2[j * classes + c]
        }
        da[i * hidden + j] = back * (1 - hij * hij)
      }
    }
    var dw1 = [Double](repeating: 0, count: features * hidden)
    var db1 = [Double](repeating: 0, count: hidden)
    for i in 0..<batch {
      for j in 0..<hidden { db1[j] += da[i * hidden + j] }
      for k in 0..<features {
        let xik = data.x[i * features + k]
        for j in 0..<hidden { dw1[k * hidden + j] += xik * da[i * hidden + j] }
      }
    }
    return (loss / Double(batch), [dw1, db1, dw2, db2])
  }

  static func run(_ policy: TimingPolicy) throws {
    let data = Data(seed: 0)
    var shapes: [String: [Int]] = [:]
    for (name, _, shape) in data.inputs { shapes[name] = shape }
    guard let program = ExprWorkload.compile("W3", source, inputShapes: shapes) else { return }
    let workspace = Workspace(program)
    for (name, scalars, _) in data.inputs { try ExprWorkload.setInput(workspace, name, scalars) }
    // The gradient with respect to the parameters only, as the anchors take it: X and Y are data.
    let wrt = try parameters.map { try ExprWorkload.inputIndex(workspace, $0) }
    let timing = measure(policy) {
      workspace.forward()
      workspace.backward(wrt: wrt)
    }
    let value = try ExprWorkload.value(workspace)
    let gradients = try parameters.map { try ExprWorkload.gradient(workspace, $0) }
    let expected = reference(data)
    guard agrees(value, expected.value, tolerance: 1e-10) else {
      throw BenchError("W3: the loss is \(value), expected \(expected.value)")
    }
    for (name, (actual, wanted)) in zip(parameters, zip(gradients, expected.gradients)) {
      try ExprWorkload.check("W3: d/d\(name)", actual, wanted, tolerance: 1e-10)
    }
    emit(
      [("workload", .string("W3")), ("engine", .string("Adjoint")), ("form", .string("compiled replay"))]
        + timing.fields + [
          ("gflops", .double(flops / timing.median * 1e-9)), ("value", .double(value)),
          ("gcheck", .doubles(ExprWorkload.checksums(gradients))),
        ])
  }
}

/// W4, the full 100×100 Hessian of W2's function at `linspace(-1, 1, 100)`.
enum Hessian {
  /// The full Hessian of W2's function for x of shape [100] at `linspace(100)`, by forward-over-reverse, checked
  /// against the analytic tridiagonal Hessian.
  static func run(_ policy: TimingPolicy) throws {
    let n = 100
    guard let program = ExprWorkload.compile("W4", Rosenbrock.source, inputShapes: ["x": [n]]) else { return }
    let x = Rosenbrock.linspace(n)
    let workspace = Workspace(program)
    try ExprWorkload.setInput(workspace, "x", x)
    var hessian: [Double] = []
    let timing = measure(policy) {
      hessian = workspace.hessian().blocks[0][0].scalars
    }
    var expected = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
      if i < n - 1 {
        expected[i * n + i] += 1200 * x[i] * x[i] - 400 * x[i + 1] + 2
        expected[i * n + i + 1] = -400 * x[i]
        expected[(i + 1) * n + i] = -400 * x[i]
      }
      if i > 0 { expected[i * n + i] += 200 }
    }
    try ExprWorkload.check("W4: the Hessian", hessian, expected, tolerance: 1e-9)
    let sum = hessian.reduce(0, +)
    let trace = (0..<n).reduce(0.0) { $0 + hessian[$1 * n + $1] }
    let frobenius = hessian.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
    emit(
      [("workload", .string("W4")), ("engine", .string("Adjoint")), ("form", .string("compiled replay"))]
        + timing.fields + [("n", .int(n)), ("hcheck", .doubles([sum, trace, frobenius]))])
  }
}

/// A small, seeded generator (SplitMix64), so W3's data is the same in every run.
struct SplitMix64: RandomNumberGenerator {
  private var state: UInt64

  init(seed: UInt64) { state = seed }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// A uniform double in (0, 1): 53 random bits, never exactly 0.
  mutating func nextUnit() -> Double { (Double(next() >> 11) + 0.5) * 0x1p-53 }

  /// A standard normal variate (Box–Muller; the second variate is dropped to keep the state simple).
  mutating func nextNormal() -> Double {
    let radius = (-2.0 * log(nextUnit())).squareRoot()
    return radius * cos(2.0 * Double.pi * nextUnit())
  }
}
