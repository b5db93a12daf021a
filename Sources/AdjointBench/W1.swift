import AdjointEngine

/// W1, the scalar chain (BENCHMARKS.md): from `x = x0`, K times `t = x*1.5; u = sin(t); v = u*x; x = v + y`.
/// It measures the cost of the tape itself: 4·K recorded scalar operations, forward plus reverse.
enum ScalarChain {
  static let iterations = 25_000
  static let x0 = 0.3
  static let y = 0.7

  /// The values every engine agrees on (BENCHMARKS.md): at K = 25,000 the x0 derivative underflows to zero.
  static let fullGradient = (0.0, -0.754_426_480_003_457_4)
  static let shortValue = 1.232_518_871_427_550_8
  static let shortGradient = (-0.473_454_422_231_857_63, -2.222_948_503_933_719_3)

  /// Builds the chain with `iterations` steps; the inputs are `x0` and `y`, in that order.
  static func program(iterations: Int) throws -> Program {
    var builder = ProgramBuilder()
    let x0 = builder.input("x0", shape: [])
    let y = builder.input("y", shape: [])
    let c = builder.constant(1.5)
    var x = x0
    for _ in 0..<iterations {
      let t = try builder.apply(.mul, x, c)
      let u = try builder.apply(.sin, t)
      let v = try builder.apply(.mul, u, x)
      x = try builder.apply(.add, v, y)
    }
    return try builder.build(outputs: [("out", x)])
  }

  /// Runs forward and reverse once and returns the output and the gradient with respect to (x0, y).
  static func evaluate(_ workspace: Workspace) -> (value: Double, gradient: (Double, Double)) {
    let program = workspace.program
    workspace.forward()
    workspace.backward()
    let value = workspace.scalarValue(ofSlot: program.outputs[0].slot)
    let gradient = (
      workspace.scalarAdjoint(ofSlot: program.inputs[0].slot), workspace.scalarAdjoint(ofSlot: program.inputs[1].slot)
    )
    return (value, gradient)
  }

  static func workspace(iterations: Int) throws -> Workspace {
    let workspace = Workspace(try program(iterations: iterations))
    workspace.setInput(0, scalar: x0)
    workspace.setInput(1, scalar: y)
    return workspace
  }

  static func check(_ name: String, _ actual: Double, _ expected: Double) throws {
    guard agrees(actual, expected, tolerance: 1e-12) else {
      throw BenchError("W1: \(name) is \(actual), expected \(expected)")
    }
  }

  /// Compiled replay: the program is built once, then `forward(); backward()` is replayed on one workspace.
  static func compiledReplay(_ policy: TimingPolicy) throws {
    let short = evaluate(try workspace(iterations: 10))
    try check("the value at K = 10", short.value, shortValue)
    try check("d/dx0 at K = 10", short.gradient.0, shortGradient.0)
    try check("d/dy at K = 10", short.gradient.1, shortGradient.1)

    let workspace = try workspace(iterations: iterations)
    let operations = workspace.program.instructionCount
    guard operations == 4 * iterations else {
      throw BenchError("W1: the program has \(operations) instructions, expected \(4 * iterations)")
    }
    let timing = measure(policy) {
      workspace.forward()
      workspace.backward()
    }
    let full = evaluate(workspace)
    try check("d/dx0", full.gradient.0, fullGradient.0)
    try check("d/dy", full.gradient.1, fullGradient.1)
    emit(
      [
        ("workload", .string("W1")), ("engine", .string("Adjoint")), ("form", .string("compiled replay")),
        ("ns_per_op", .double(timing.median * 1e9 / Double(operations))),
      ] + timing.fields + [
        ("ops", .int(operations)), ("value", .double(full.value)),
        ("grad", .doubles([full.gradient.0, full.gradient.1])),
      ])
  }

  // MARK: - Eager tape

  /// Records the chain on `tape` after emptying it, each value computed as it is recorded, then runs the reverse
  /// sweep. `reset()` keeps the tape's memory, as ADOL-C's anchor keeps its tape's buffers by recording on one tag.
  ///
  /// - Returns: the output, the gradient with respect to (x0, y), and the number of recorded operations.
  static func eagerEvaluate(_ tape: Tape, iterations: Int) -> (
    value: Double, gradient: (Double, Double), operations: Int
  ) {
    tape.reset()
    let x0 = tape.variable(ScalarChain.x0)
    let y = tape.variable(ScalarChain.y)
    var x = x0
    for _ in 0..<iterations {
      let t = x * 1.5
      let u = sin(t)
      let v = u * x
      x = v + y
    }
    let gradient = tape.gradient(of: x, wrt: [x0, y])
    return (x.scalar ?? .nan, (gradient[0].scalars[0], gradient[1].scalars[0]), tape.instructionCount)
  }

  /// W1 through the eager `Tape`: record the 100,000 operations on an emptied tape and take the gradient, every call.
  static func eager(_ policy: TimingPolicy) throws {
    let tape = Tape()
    let short = eagerEvaluate(tape, iterations: 10)
    try check("the eager value at K = 10", short.value, shortValue)
    try check("eager d/dx0 at K = 10", short.gradient.0, shortGradient.0)
    try check("eager d/dy at K = 10", short.gradient.1, shortGradient.1)

    var full = eagerEvaluate(tape, iterations: iterations)
    guard full.operations == 4 * iterations else {
      throw BenchError("W1-eager: the tape has \(full.operations) instructions, expected \(4 * iterations)")
    }
    let timing = measure(policy) { full = eagerEvaluate(tape, iterations: iterations) }
    // The same on a new tape per call, whose memory comes from the allocator (and the kernel) every time.
    let fresh = measure(policy) { _ = eagerEvaluate(Tape(), iterations: iterations) }
    try check("eager d/dx0", full.gradient.0, fullGradient.0)
    try check("eager d/dy", full.gradient.1, fullGradient.1)
    emit(
      [
        ("workload", .string("W1-eager")), ("engine", .string("Adjoint")),
        ("form", .string("eager tape, reset per call")),
        ("ns_per_op", .double(timing.median * 1e9 / Double(full.operations))),
      ] + timing.fields + [
        ("ops", .int(full.operations)), ("value", .double(full.value)),
        ("grad", .doubles([full.gradient.0, full.gradient.1])),
        ("fresh_tape_ns_per_op", .double(fresh.median * 1e9 / Double(full.operations))),
      ])
  }
}
