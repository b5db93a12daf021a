import AdjointEngine
import Foundation
import XCTest

/// Fan-out (a value read by several ops, which must accumulate adjoints), workspace reuse, and the linear model of
/// the seed's example against its closed-form gradient and Hessian.
final class CompositeTests: XCTestCase {
  func testFanOutAccumulates() throws {
    // f = x·x + x: f' = 2x + 1. A sweep that overwrites adjoints instead of adding gets 1 or 2x.
    for x in [3.0, -0.4] {
      let program = try compile("x * x + x", ["x": Tensor(x)])
      let (value, gradient) = workspace(program, ["x": Tensor(x)]).valueWithPullback()
      XCTAssertEqual(value, Tensor(x * x + x))
      XCTAssertEqual(gradient, [Tensor(2 * x + 1)])
    }
    let x = Tensor(shape: [3], scalars: [3, -0.5, 2])
    let program = try compile("sum(x * x + x)", ["x": x])
    XCTAssertEqual(workspace(program, ["x": x]).valueWithPullback().adjoints[0], x.map { 2 * $0 + 1 })
    try assertDerivatives("x * x + x", at: ["x": x])
  }

  func testNodeUsedThreeTimes() throws {
    // a = x·y read three times: f = a·a + a, ∂f/∂x = (2a + 1)·y, ∂f/∂y = (2a + 1)·x.
    for inputs in [
      ["x": Tensor(1.5), "y": Tensor(-0.75)], ["x": Tensor(shape: [2], scalars: [1.5, 2]), "y": Tensor(-0.75)],
    ]
      as [Inputs]
    {
      let expr = "a = x * y; sum(a * a + a)"
      let program = try compile(expr, inputs)
      let adjoints = workspace(program, inputs).valueWithPullback().adjoints
      let (x, y) = (inputs["x"]!, inputs["y"]!.scalars[0])
      let gx = x.map { (2 * $0 * y + 1) * y }
      let gy = x.scalars.map { (2 * $0 * y + 1) * $0 }.reduce(0, +)
      assertClose(adjoints[try inputIndices(program, ["x"])[0]], gx, relative: 1e-15, "d/dx of \(expr)")
      XCTAssertEqual(adjoints[try inputIndices(program, ["y"])[0]].scalars[0], gy, accuracy: 1e-14)
      try assertDerivatives(expr, at: inputs)
    }
    // Three reads in one instruction and in a chain.
    let v = Tensor(shape: [2], scalars: [0.5, -1.25])
    try assertDerivatives("concat(v, sin(v), v) * concat(v, v, v)", at: ["v": v])
    try assertDerivatives("v * v * v", at: ["v": v])
  }

  func testBroadcastFanOut() throws {
    // h = exp(v), shape [3], read by a broadcasting product with M ([2, 3]) and by a sum:
    // f = Σ h·M + Σ h, ∂f/∂v = exp(v)·(column sums of M + 1).
    let v = Tensor(shape: [3], scalars: [0.25, -0.5, 1])
    let m = Tensor(shape: [2, 3], scalars: [1, -2, 0.5, 3, 0.25, -1])
    let inputs: Inputs = ["v": v, "M": m]
    let expr = "h = exp(v); sum(h * M) + sum(h)"
    let program = try compile(expr, inputs)
    let adjoints = workspace(program, inputs).valueWithPullback().adjoints
    let expected = Tensor.build([3]) { index in
      Foundation.exp(v.scalars[index[0]]) * (m.scalars[index[0]] + m.scalars[3 + index[0]] + 1)
    }
    assertClose(adjoints[try inputIndices(program, ["v"])[0]], expected, relative: 1e-15, "d/dv of \(expr)")
    try assertDerivatives(expr, at: inputs)
    // The same value read by a matmul, a broadcast product and a reduction, at three different shapes.
    try assertDerivatives("sum(sin(v) * M, axis=0) * sum(M @ v) + max(v) * v", at: inputs, hessian: false)
    try assertDerivatives("sum(tanh(v) * M) + sum(M @ tanh(v)) * sum(tanh(v))", at: inputs)
  }

  /// Values, gradients and forward-mode products from one workspace reused over many points equal those of a fresh
  /// workspace per point, bit for bit, however the calls are interleaved.
  func testReusedWorkspaceMatchesFreshOnes() throws {
    var rng = SeededGenerator("reuse")
    let cases: [(String, Inputs)] = [
      ("sin(x * y) * x + y / x", ["x": Tensor(1.5), "y": Tensor(-0.5)]),
      (
        "sum(softmax(x @ y, axis=0) * log(1 + exp(x @ y))) + max(x) * prod(y)",
        ["x": Tensor(repeating: 1, shape: [3, 4]), "y": Tensor(repeating: 1, shape: [4, 2])]
      ),
      (
        "sum(sqrt(x) * y + sin(y) * 2)",
        ["x": Tensor(repeating: 1, shape: [300]), "y": Tensor(repeating: 1, shape: [300])]
      ),
    ]
    for (expr, shapes) in cases {
      let program = try compile(expr, shapes)
      let reused = Workspace(program)
      for point in 0..<20 {
        var inputs = shapes.mapValues { Domain.uniform(0.5...2).sample(&rng, $0.shape) }
        // Now and then a point where the function is not finite, to leave NaNs behind in the arenas.
        if point % 7 == 3 { inputs["x"] = inputs["x"]!.map { -$0 } }
        for (index, binding) in program.inputs.enumerated() { reused.setInput(index, inputs[binding.name]!.scalars) }
        let fresh = workspace(program, inputs)
        let direction = Dictionary(
          uniqueKeysWithValues: program.inputs.indices.map {
            ($0, Domain.uniform(-1...1).sample(&rng, program.slots[program.inputs[$0].slot].shape).scalars)
          })
        let first = reused.valueWithPullback(wrt: point % 2 == 0 ? [0] : nil)
        let second = fresh.valueWithPullback(wrt: point % 2 == 0 ? [0] : nil)
        XCTAssertTrue(
          bitwiseEqual([first.value] + first.adjoints, [second.value] + second.adjoints), "\(expr) at \(point)")
        let reusedJVP = reused.valueWithDifferential(tangents: direction)
        let freshJVP = fresh.valueWithDifferential(tangents: direction)
        XCTAssertTrue(bitwiseEqual([reusedJVP.value, reusedJVP.tangent], [freshJVP.value, freshJVP.tangent]), expr)
        let reusedHVP = reused.hessianVectorProduct(direction: direction)
        let freshHVP = fresh.hessianVectorProduct(direction: direction)
        XCTAssertTrue(bitwiseEqual(reusedHVP.product + reusedHVP.gradient, freshHVP.product + freshHVP.gradient), expr)
        let again = reused.valueWithPullback()
        let clean = workspace(program, inputs).valueWithPullback()
        XCTAssertTrue(
          bitwiseEqual([again.value] + again.adjoints, [clean.value] + clean.adjoints), "\(expr) at \(point)")
      }
    }
  }

  /// Equal shapes and elements with the same bits (NaN payloads aside).
  private func bitwiseEqual(_ a: [Tensor], _ b: [Tensor]) -> Bool {
    a.count == b.count
      && zip(a, b).allSatisfy { x, y in
        x.shape == y.shape
          && zip(x.scalars, y.scalars).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
      }
  }

  // MARK: The linear model

  func testLinearModelSquaredError() throws {
    var rng = SeededGenerator("linear model")
    let n = 8
    let inputs: Inputs = [
      "X": Domain.uniform(-1...1).sample(&rng, [n, 3]), "w": Domain.uniform(-1...1).sample(&rng, [3]),
      "b": Domain.uniform(-1...1).sample(&rng, []), "y": Domain.uniform(-1...1).sample(&rng, [n]),
    ]
    let (x, w, b, y) = (inputs["X"]!, inputs["w"]!, inputs["b"]!.scalars[0], inputs["y"]!)
    let expr = "mean((X @ w + b - y)^2)"
    let program = try compile(expr, inputs)
    let ws = workspace(program, inputs)
    let (value, adjoints) = ws.valueWithPullback()
    let gradient = Dictionary(uniqueKeysWithValues: zip(program.inputs.map(\.name), adjoints))
    // The residual r = Xw + b − y and the closed forms.
    let r = (0..<n).map { i in (0..<3).map { x.scalars[i * 3 + $0] * w.scalars[$0] }.reduce(0, +) + b - y.scalars[i] }
    let scale = 2 / Double(n)
    XCTAssertEqual(value.scalars[0], r.map { $0 * $0 }.reduce(0, +) / Double(n), accuracy: 1e-15)
    assertClose(
      gradient["w"]!, Tensor.build([3]) { j in scale * (0..<n).map { x.scalars[$0 * 3 + j[0]] * r[$0] }.reduce(0, +) },
      relative: 1e-14, "d/dw = 2/n·Xᵀr")
    XCTAssertEqual(gradient["b"]!.scalars[0], scale * r.reduce(0, +), accuracy: 1e-14, "d/db = 2/n·Σr")
    assertClose(gradient["X"]!, Tensor.build([n, 3]) { scale * r[$0[0]] * w.scalars[$0[1]] }, relative: 1e-14, "d/dX")
    assertClose(gradient["y"]!, Tensor(shape: [n], scalars: r.map { -scale * $0 }), relative: 1e-14, "d/dy")
    // The Hessian in (w, b): 2/n·[XᵀX, Xᵀ1; 1ᵀX, n].
    let (w_, b_) = (try inputIndices(program, ["w"])[0], try inputIndices(program, ["b"])[0])
    let hessian = ws.hessian(wrt: [w_, b_]).blocks
    assertClose(
      hessian[0][0],
      Tensor.build([3, 3]) { index in
        scale * (0..<n).map { x.scalars[$0 * 3 + index[0]] * x.scalars[$0 * 3 + index[1]] }.reduce(0, +)
      },
      relative: 1e-14, "H[w][w]")
    assertClose(
      hessian[0][1], Tensor.build([3]) { j in scale * (0..<n).map { x.scalars[$0 * 3 + j[0]] }.reduce(0, +) },
      relative: 1e-14,
      "H[w][b]")
    XCTAssertEqual(hessian[1][1], Tensor(2))
    try assertDerivatives(expr, at: inputs)
  }
}

/// Programs at the edges: no instructions, no inputs, several outputs.
final class ProgramEdgeTests: XCTestCase {
  func testOutputThatIsAnInput() throws {
    let x = Tensor(shape: [3], scalars: [0.5, -1, 2])
    let program = try compile("x", ["x": x])
    XCTAssertEqual(program.instructionCount, 0)
    let ws = workspace(program, ["x": x])
    XCTAssertEqual(ws.evaluate(), [x])
    XCTAssertEqual(ws.valueWithPullback(seed: [1, 2, 3]).adjoints, [Tensor(shape: [3], scalars: [1, 2, 3])])
    let identity = Tensor.build([3, 3]) { $0[0] == $0[1] ? 1 : 0 }
    XCTAssertEqual(ws.jacobian(mode: .forward).blocks, [identity])
    XCTAssertEqual(ws.jacobian(mode: .reverse).blocks, [identity])
    let scalar = workspace(try compile("x", ["x": Tensor(1.5)]), ["x": Tensor(1.5)])
    XCTAssertEqual(scalar.valueWithPullback().adjoints, [Tensor(1)])
    XCTAssertEqual(scalar.hessian().blocks, [[Tensor(0)]])
  }

  func testProgramWithoutInputs() throws {
    let program = try compile("2 * 3 + const(value=0.5)", [:])
    let ws = Workspace(program)
    XCTAssertEqual(ws.evaluate(), [Tensor(6.5)])
    let (value, adjoints) = ws.valueWithPullback()
    XCTAssertEqual(value, Tensor(6.5))
    XCTAssertEqual(adjoints, [])
    XCTAssertEqual(ws.hessian().value, 6.5)
    XCTAssertEqual(ws.jacobian().blocks, [])
    XCTAssertNil(ws.firstNonFinite(backward: true))
  }

  /// Each output of a program with several differentiates as the same function compiled alone, in any order of
  /// calls; one output is also read by the other.
  func testSeveralOutputs() throws {
    var rng = SeededGenerator("outputs")
    let inputs: Inputs = [
      "x": Domain.uniform(-1...1).sample(&rng, [300]), "y": Domain.uniform(-1...1).sample(&rng, [300]),
    ]
    var builder = ProgramBuilder()
    let x = builder.input("x", shape: [300])
    let y = builder.input("y", shape: [300])
    let product = try builder.apply(.mul, try builder.apply(.sin, x), y)
    let total = try builder.apply(.sum, [try builder.apply(.exp, product)], OpAttributes())
    let program = try builder.build(outputs: [("total", total), ("product", product)])
    let alone = [
      try compile("sum(exp(sin(x) * y))", inputs), try compile("sin(x) * y", inputs),
    ]
    let ws = workspace(program, inputs)
    let seed = Domain.uniform(-1...1).sample(&rng, [300]).scalars
    for round in 0..<2 {
      for output in (round == 0 ? [0, 1] : [1, 0]) {
        let single = workspace(alone[output], inputs)
        let outputSeed = output == 0 ? nil : seed
        let mine = ws.valueWithPullback(output: output, seed: outputSeed)
        let theirs = single.valueWithPullback(seed: outputSeed)
        assertClose(mine.value, theirs.value, relative: 1e-15, "output \(output)")
        for k in 0..<2 {
          assertClose(mine.adjoints[k], theirs.adjoints[k], relative: 1e-13, "output \(output), input \(k)")
        }
        let tangents = [0: seed, 1: seed.map { -$0 }]
        assertClose(
          ws.valueWithDifferential(output: output, tangents: tangents).tangent,
          single.valueWithDifferential(tangents: tangents).tangent, relative: 1e-13, "JVP of output \(output)")
      }
    }
    let hessianProduct = ws.hessianVectorProduct(output: 0, direction: [0: seed])
    let single = workspace(alone[0], inputs).hessianVectorProduct(direction: [0: seed])
    for k in 0..<2 { assertClose(hessianProduct.product[k], single.product[k], relative: 1e-13, "H·v, input \(k)") }
    XCTAssertEqual(ws.evaluate().map(\.shape), [[], [300]])
  }
}
