import AdjointEngine
import Foundation
import MallocCounter
import XCTest

/// The eager tape: values as operations are recorded, gradients by the engine's reverse sweep, and the recording
/// frozen into a program that replays bit for bit.
final class TapeTests: XCTestCase {
  // MARK: Helpers

  private func assertRelative(
    _ actual: Double, _ expected: Double, _ tolerance: Double, _ message: String = "",
    file: StaticString = #filePath, line: UInt = #line
  ) {
    let error = abs(actual - expected) / max(abs(expected), Double.leastNormalMagnitude)
    XCTAssert(
      actual == expected || error <= tolerance, "\(message): \(actual) vs \(expected) (relative error \(error))",
      file: file, line: line)
  }

  private func assertClose(
    _ actual: Tensor, _ expected: Tensor, _ tolerance: Double, _ message: String = "",
    file: StaticString = #filePath, line: UInt = #line
  ) {
    XCTAssertEqual(actual.shape, expected.shape, message, file: file, line: line)
    for (a, e) in zip(actual.scalars, expected.scalars) {
      XCTAssertEqual(a, e, accuracy: tolerance * max(1, abs(e)), message, file: file, line: line)
    }
  }

  /// Deterministic values in [-1, 1).
  private func tensor(_ shape: [Int], seed: Int) -> Tensor {
    let count = Tensor.elementCount(shape)
    return Tensor(
      shape: shape, scalars: (0..<count).map { i in Double((i * 7919 + seed * 104_729) % 2000) / 1000 - 1 })
  }

  /// W1 of BENCHMARKS.md on `tape`: the output and the variables x0 and y.
  private func scalarChain(_ tape: Tape, iterations: Int) -> (out: Traced, x0: Traced, y: Traced) {
    let x0 = tape.variable(0.3)
    let y = tape.variable(0.7)
    var x = x0
    for _ in 0..<iterations {
      let t = x * 1.5
      let u = sin(t)
      let v = u * x
      x = v + y
    }
    return (x, x0, y)
  }

  // MARK: Known answers

  func testScalarChainAtTenSteps() {
    let tape = Tape()
    let (out, x0, y) = scalarChain(tape, iterations: 10)
    XCTAssertEqual(tape.instructionCount, 40)
    assertRelative(out.scalar!, 1.232_518_871_427_550_8, 1e-15, "value")
    let gradient = tape.gradient(of: out, wrt: [x0, y])
    assertRelative(gradient[0].scalar!, -0.473_454_422_231_857_63, 1e-15, "d/dx0")
    assertRelative(gradient[1].scalar!, -2.222_948_503_933_719_3, 1e-15, "d/dy")
    XCTAssertEqual(gradient[0].shape, [])
  }

  func testScalarChainAtFullLength() {
    let tape = Tape()
    let (out, x0, y) = scalarChain(tape, iterations: 25_000)
    XCTAssertEqual(tape.instructionCount, 100_000)
    let gradient = tape.gradient(of: out, wrt: [x0, y])
    XCTAssertEqual(gradient[0].scalar!, 0)
    assertRelative(gradient[1].scalar!, -0.754_426_480_003_457_4, 1e-12, "d/dy")
  }

  func testLinearModelMatchesClosedForm() {
    let n = 5
    let data = tensor([n, 3], seed: 1)
    let targets = tensor([n], seed: 2)
    let tape = Tape()
    let w = tape.variable(Tensor(shape: [3], scalars: [0.4, -0.3, 0.2]))
    let b = tape.variable(0.5)
    let x = tape.constant(data)
    let y = tape.constant(targets)
    let loss = ((x.matmul(w) + b - y) ^ 2).mean()
    let g = tape.gradient(of: loss, wrt: [w, b])

    // r = Xw + b - y; loss = mean(r²); dloss/dw = (2/n) Xᵀr; dloss/db = (2/n) Σr.
    let r = (0..<n).map { i in
      (0..<3).reduce(0.5) { $0 + data.scalars[i * 3 + $1] * w.value.scalars[$1] } - targets.scalars[i]
    }
    assertRelative(loss.scalar!, r.reduce(0) { $0 + $1 * $1 } / Double(n), 1e-14, "loss")
    let dw = (0..<3).map { j in (0..<n).reduce(0.0) { $0 + data.scalars[$1 * 3 + j] * r[$1] } * 2 / Double(n) }
    assertClose(g[0], Tensor(shape: [3], scalars: dw), 1e-14, "dloss/dw")
    assertClose(g[1], Tensor(r.reduce(0, +) * 2 / Double(n)), 1e-14, "dloss/db")
  }

  func testDoubleOnEitherSide() {
    let tape = Tape()
    let x = tape.variable(2.0)
    let terms = [2 + x, x + 2, 2 - x, x - 2, 2 * x, x * 2, 2 / x, x / 2, 2 ^ x, x ^ 3, -x]
    XCTAssertEqual(terms.map { $0.scalar! }, [4, 4, 0, 0, 4, 4, 1, 1, 4, 8, -2])
    let expected = [1, 1, -1, 1, 2, 2, -0.5, 0.5, 4 * log(2), 12, -1]
    for (term, derivative) in zip(terms, expected) {
      assertRelative(tape.gradient(of: term, wrt: [x])[0].scalar!, derivative, 1e-15, "\(term)")
    }
    var y = x
    y += 1
    y *= x
    y -= 0.5
    y /= x
    XCTAssertEqual(y.scalar!, 2.75)  // ((2 + 1)·2 - 0.5) / 2
  }

  // MARK: Gradient semantics

  func testUnusedVariableGetsZeroGradient() {
    let tape = Tape()
    let x = tape.variable(1.5)
    let unused = tape.variable(Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]))
    let out = sin(x) * x
    let later = tape.variable(Tensor(shape: [3], scalars: [1, 2, 3]))
    let constant = tape.constant(2.5)
    let g = tape.gradient(of: out, wrt: [unused, x, later, constant])
    XCTAssertEqual(g[0], Tensor(repeating: 0, shape: [2, 2]))
    assertRelative(g[1].scalar!, cos(1.5) * 1.5 + sin(1.5), 1e-15, "d/dx")
    XCTAssertEqual(g[2], Tensor(repeating: 0, shape: [3]))
    XCTAssertEqual(g[3], Tensor(0))
  }

  func testFanOutAccumulates() {
    let tape = Tape()
    let x = tape.variable(1.25)
    let y = x * x * x + x + x * 3  // x³ + 4x
    assertRelative(tape.gradient(of: y, wrt: [x])[0].scalar!, 3 * 1.25 * 1.25 + 4, 1e-14, "scalar fan-out")

    // A tensor used in three places, one of them broadcast.
    let v = tape.variable(Tensor(shape: [3], scalars: [0.5, -1, 2]))
    let s = tape.variable(0.25)
    let f = (v * v + v * s + v).sum() + (s * s)  // Σ(v² + sv + v) + s²
    let g = tape.gradient(of: f, wrt: [v, s])
    assertClose(g[0], Tensor(shape: [3], scalars: [0.5, -1, 2].map { 2 * $0 + 0.25 + 1 }), 1e-15, "d/dv")
    assertRelative(g[1].scalar!, 1.5 + 0.5, 1e-15, "d/ds")  // Σv + 2s
  }

  func testStopGradient() {
    let tape = Tape()
    let x = tape.variable(3.0)
    let y = x * tape.stopGradient(x)  // the value is x², the gradient x
    XCTAssertEqual(y.scalar!, 9)
    XCTAssertEqual(tape.gradient(of: y, wrt: [x])[0].scalar!, 3)
    let z = exp(x.stopGradient()) + x
    XCTAssertEqual(tape.gradient(of: z, wrt: [x])[0].scalar!, 1)

    let v = tape.variable(Tensor(shape: [2], scalars: [1, 2]))
    let w = (v * v.stopGradient()).sum()
    XCTAssertEqual(tape.gradient(of: w, wrt: [v])[0], Tensor(shape: [2], scalars: [1, 2]))
  }

  func testWithoutRecording() {
    let tape = Tape()
    let x = tape.variable(2.0)
    let v = tape.variable(Tensor(shape: [3], scalars: [1, 2, 3]))
    let before = tape.instructionCount
    let (scale, total) = tape.withoutRecording {
      XCTAssertFalse(tape.isRecording)
      let nested = tape.withoutRecording { x * 10 }
      XCTAssertFalse(tape.isRecording)
      return (x * x + nested, (v * x).sum())
    }
    XCTAssertTrue(tape.isRecording)
    XCTAssertEqual(tape.instructionCount, before, "nothing is recorded")
    XCTAssertEqual(scale.scalar!, 24)
    XCTAssertEqual(total.scalar!, 12)
    XCTAssertEqual(tape.inputIndex(of: scale), nil)

    // Results of the region are constants: no gradient flows through them.
    let y = scale * x + total * v.sum()
    XCTAssertEqual(y.scalar!, 24 * 2 + 12 * 6)
    let g = tape.gradient(of: y, wrt: [x, v])
    XCTAssertEqual(g[0].scalar!, 24)
    XCTAssertEqual(g[1], Tensor(repeating: 12, shape: [3]))
  }

  func testGradientWithRespectToAnIntermediateAndVJP() {
    let tape = Tape()
    let x = tape.variable(Tensor(shape: [3], scalars: [0.5, 1, 1.5]))
    let h = sin(x)
    let y = (h * h).sum()
    let g = tape.gradient(of: y, wrt: [h, x])
    assertClose(g[0], Tensor(shape: [3], scalars: [0.5, 1, 1.5].map { 2 * sin($0) }), 1e-15, "dy/dh")
    assertClose(g[1], Tensor(shape: [3], scalars: [0.5, 1, 1.5].map { 2 * sin($0) * cos($0) }), 1e-15, "dy/dx")

    let seed = Tensor(shape: [3], scalars: [1, 0, -2])
    let vjp = tape.gradient(of: h, wrt: [x], seed: seed)[0]
    assertClose(vjp, Tensor(shape: [3], scalars: [cos(0.5), 0, -2 * cos(1.5)]), 1e-15, "VJP")
  }

  func testShapeErrorsThrowFromApply() {
    let tape = Tape()
    let a = tape.variable(Tensor(repeating: 1, shape: [2, 3]))
    let b = tape.variable(Tensor(repeating: 1, shape: [2]))
    XCTAssertThrowsError(try tape.apply(.add, [a, b])) { error in
      XCTAssertEqual((error as? ShapeError)?.message, "add: cannot broadcast shapes [2, 3] and [2]")
    }
    XCTAssertEqual(try tape.apply(.sum, [a], OpAttributes(axes: [1])).value, Tensor(shape: [2], scalars: [3, 3]))
  }

  func testResetKeepsWorking() {
    let tape = Tape()
    var first = scalarChain(tape, iterations: 10)
    let expected = tape.gradient(of: first.out, wrt: [first.x0, first.y])
    for _ in 0..<3 {
      tape.reset()
      XCTAssertEqual(tape.instructionCount, 0)
      first = scalarChain(tape, iterations: 10)
      XCTAssertEqual(tape.gradient(of: first.out, wrt: [first.x0, first.y]), expected)
    }
    tape.reset()
    let v = tape.variable(Tensor(shape: [2], scalars: [1, 2]), name: "v0")
    XCTAssertEqual(tape.gradient(of: (v * v).sum(), wrt: [v])[0], Tensor(shape: [2], scalars: [2, 4]))
  }

  func testRecordingScalarsDoesNotAllocatePerOperation() throws {
    try XCTSkipUnless(malloc_counter_is_available(), "no allocation counter on this platform")
    let tape = Tape()
    func allocations(_ iterations: Int) -> UInt64 {
      tape.reset()
      let before = malloc_counter_thread_allocations()
      let (out, x0, y) = scalarChain(tape, iterations: iterations)
      _ = tape.gradient(of: out, wrt: [x0, y])
      return malloc_counter_thread_allocations() - before
    }
    _ = allocations(2_000)  // grows the buffers once
    let short = allocations(10)
    let long = allocations(2_000)
    XCTAssertEqual(long, short, "8,000 more operations should allocate nothing more")
  }

  // MARK: Eager and compiled agree

  /// A function recorded on a tape: its variables (at the given values) and its scalar output.
  private typealias Recorded = (Tape, [Tensor]) -> (variables: [Traced], output: Traced)

  /// Records `function` at `point`, freezes it, and checks that replaying the program gives the recorded value and
  /// gradient bit for bit, at `point` and, against a new recording, at `other`; then checks the gradient at `other`
  /// against central differences.
  private func checkEagerMatchesCompiled(
    _ name: String, at point: [Tensor], _ other: [Tensor], finiteDifferenceTolerance: Double = 1e-6,
    _ function: Recorded, file: StaticString = #filePath, line: UInt = #line
  ) throws {
    let tape = Tape()
    let (variables, output) = function(tape, point)
    let gradient = tape.gradient(of: output, wrt: variables)
    let program = try tape.program(outputs: [output])
    XCTAssertEqual(program.inputs.count, variables.count, name, file: file, line: line)
    XCTAssertEqual(variables.map { tape.inputIndex(of: $0) }, Array(variables.indices), name, file: file, line: line)

    let workspace = Workspace(program)
    for (index, tensor) in point.enumerated() { workspace.setInput(index, tensor.scalars) }
    let replay = workspace.valueWithPullback()
    XCTAssertEqual(replay.value, output.value, "\(name): value at the recorded point", file: file, line: line)
    XCTAssertEqual(replay.adjoints, gradient, "\(name): gradient at the recorded point", file: file, line: line)

    let again = Tape()
    let (newVariables, newOutput) = function(again, other)
    let newGradient = again.gradient(of: newOutput, wrt: newVariables)
    for (index, tensor) in other.enumerated() { workspace.setInput(index, tensor.scalars) }
    let moved = workspace.valueWithPullback()
    XCTAssertEqual(moved.value, newOutput.value, "\(name): value at a new point", file: file, line: line)
    XCTAssertEqual(moved.adjoints, newGradient, "\(name): gradient at a new point", file: file, line: line)
    XCTAssertNotEqual(
      moved.value, replay.value, "\(name): the new point should change the value", file: file, line: line)

    // And the gradient is right: central differences on the compiled program.
    for check in workspace.gradientCheck() {
      XCTAssertLessThan(
        check.maxRelativeError, finiteDifferenceTolerance, "\(name): finite differences", file: file, line: line)
    }
  }

  func testEagerMatchesCompiledOnAScalarChain() throws {
    try checkEagerMatchesCompiled("scalar chain", at: [Tensor(0.3), Tensor(0.7)], [Tensor(0.31), Tensor(0.69)]) {
      tape, point in
      let x0 = tape.variable(point[0])
      let y = tape.variable(point[1])
      var x = x0
      for _ in 0..<50 { x = sin(x * 1.5) * x + y }
      let unary: [(Traced) -> Traced] = [
        abs, exp, log1p, expm1, sqrt, square, cos, tan, atan, sinh, cosh, tanh, sigmoid, relu, softplus, erf,
      ]
      var total = x
      for f in unary { total = total + f(x * 0.5) }
      total = total + asin(y - 0.2) + acos(y - 0.2) + log(x) + sign(x) + pow(x, y) + maximum(x, y) + minimum(x, 0.5)
      total = total + atan2(x, y) + select(x.gt(y), x * 2, y) + x.le(y) + x.eq(y) + x.ne(y) + x.lt(1) + x.ge(0)
      return ([x0, y], total)
    }
  }

  func testEagerMatchesCompiledOnBroadcastingTensors() throws {
    let point = [tensor([2, 3], seed: 3), tensor([3], seed: 4), Tensor(0.75), tensor([2], seed: 5)]
    let other = [tensor([2, 3], seed: 6), tensor([3], seed: 7), Tensor(-0.25), tensor([2], seed: 8)]
    try checkEagerMatchesCompiled("broadcasting", at: point, other) { tape, point in
      let a = tape.variable(point[0])
      let c = tape.variable(point[1])
      let s = tape.variable(point[2])
      let v = tape.variable(point[3])
      var f = ((a * c + s) / (1 + exp(-a))).max(axes: [1]).sum()
      f = f + (maximum(a, c) + 2).prod(axes: [0]).mean() + atan2(a, c + 2).mean(axes: [0, 1])
      f = f + select(a.gt(0), a, 0.1 * a).logsumexp() + (a ^ 2).sum(axes: [1], keepdims: true).min()
      f = f + concat([a, c.reshape([1, 3])], axis: 0).slice(axis: 0, start: 1).take([0, 2, 2], axis: 1).sum()
      f = f + a.transpose().matmul(v).sum() + c.broadcast(to: [4, 3]).softmax(axis: 0).logSoftmax().sum()
      f =
        f + a.slice(axis: 1, start: -1, step: -2).sum() * s
        + tape.constant(Tensor(shape: [3], scalars: [1, 2, 3]))
        .matmul(c)
      return ([a, c, s, v], f)
    }
  }

  func testEagerMatchesCompiledOnLongVectors() throws {
    // Longer than the executor's fusion blocks, with a broadcast scalar whose adjoint sums over every block.
    let n = 1_000
    let point = [Tensor(shape: [n], scalars: (0..<n).map { -1 + 2 * Double($0) / Double(n - 1) }), Tensor(0.5)]
    let other = [tensor([n], seed: 22), Tensor(-1.5)]
    // The function's values reach 10⁴, so central differences carry about 10⁻⁵ of rounding noise.
    try checkEagerMatchesCompiled("Rosenbrock", at: point, other, finiteDifferenceTolerance: 1e-4) { tape, point in
      let x = tape.variable(point[0])
      let s = tape.variable(point[1])
      let head = x.slice(stop: -1)
      // `^` has the precedence of `+`: every power is parenthesised.
      let rosenbrock = (100 * ((x.slice(start: 1) - (head ^ 2)) ^ 2) + ((1 - head) ^ 2)).sum()
      return ([x, s], rosenbrock + (sin(x * s) * s).sum())
    }
  }

  func testEagerMatchesCompiledOnTheLinearModel() throws {
    let data = tensor([6, 3], seed: 9)
    let targets = tensor([6], seed: 10)
    let point = [tensor([3], seed: 11), Tensor(0.5)]
    let other = [tensor([3], seed: 12), Tensor(-0.5)]
    try checkEagerMatchesCompiled("linear model", at: point, other) { tape, point in
      let w = tape.variable(point[0])
      let b = tape.variable(point[1])
      let loss = ((tape.constant(data).matmul(w) + b - tape.constant(targets)) ^ 2).mean()
      return ([w, b], loss)
    }
  }

  func testEagerMatchesCompiledOnAnMLPWithSoftmax() throws {
    let data = tensor([5, 4], seed: 13)
    let labels = Tensor(shape: [5, 3], scalars: (0..<15).map { $0 % 3 == ($0 / 3) % 3 ? 1 : 0 })
    let point = [tensor([4, 6], seed: 14), tensor([6], seed: 15), tensor([6, 3], seed: 16), tensor([3], seed: 17)]
    let other = [tensor([4, 6], seed: 18), tensor([6], seed: 19), tensor([6, 3], seed: 20), tensor([3], seed: 21)]
    try checkEagerMatchesCompiled("MLP", at: point, other) { tape, point in
      let w1 = tape.variable(point[0], name: "W1")
      let b1 = tape.variable(point[1], name: "b1")
      let w2 = tape.variable(point[2], name: "W2")
      let b2 = tape.variable(point[3], name: "b2")
      let x = tape.constant(data)
      let y = tape.constant(labels)
      let h = tanh(x.matmul(w1) + b1)
      let z = h.matmul(w2) + b2
      let crossEntropy = -(y * log(z.softmax(axis: 1))).sum(axes: [1]).mean()
      let viaLogsumexp = (z.logsumexp(axes: [1]) - (z * y).sum(axes: [1])).mean()
      return ([w1, b1, w2, b2], crossEntropy + viaLogsumexp + 0.01 * (w1 ^ 2).sum())
    }
  }
}
