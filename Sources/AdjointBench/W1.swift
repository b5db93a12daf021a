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

  // MARK: - Eager tape (to be written with the engine's `Tape`)

  /// W1 through the eager `Tape`: record the chain and run the reverse sweep, every call.
  ///
  /// LEAD: fill in once the eager `Tape` lands — record the 100,000 operations on a fresh tape per timed call,
  /// take the gradient with respect to (x0, y), check it against `fullGradient` (and K = 10 against
  /// `shortValue`/`shortGradient`) and `emit` a line with `"workload": "W1-eager"` and `ns_per_op`, as
  /// `compiledReplay` does. Until then this prints that it is not available and emits nothing.
  static func eager(_ policy: TimingPolicy) throws {
    note("W1-eager: not available yet (the eager Tape is not in the engine)")
  }
}
