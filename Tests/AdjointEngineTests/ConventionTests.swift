import AdjointEngine
import Foundation
import XCTest

/// The derivative conventions of API.md at points where a derivative does not exist, checked exactly, in reverse
/// mode, forward mode and (where it applies) second order.
final class ConventionTests: XCTestCase {
  /// The reverse gradient of the scalar `expr` with respect to every input, in `program.inputs` order by name.
  private func gradient(_ expr: String, _ inputs: Inputs) throws -> [String: Tensor] {
    let program = try compile(expr, inputs)
    let adjoints = workspace(program, inputs).valueWithPullback().adjoints
    return Dictionary(uniqueKeysWithValues: zip(program.inputs.map(\.name), adjoints))
  }

  /// The forward-mode derivative of the scalar `expr` along input `name`, element by element.
  private func forwardGradient(_ expr: String, _ inputs: Inputs, _ name: String) throws -> Tensor {
    let program = try compile(expr, inputs)
    let index = try inputIndices(program, [name])[0]
    let ws = workspace(program, inputs)
    let x = try XCTUnwrap(inputs[name])
    return Tensor(
      shape: x.shape,
      scalars: (0..<x.count).map { j in
        var direction = [Double](repeating: 0, count: x.count)
        direction[j] = 1
        return ws.valueWithDifferential(tangents: [index: direction]).tangent.scalars[0]
      })
  }

  /// Asserts that the gradient of `expr` with respect to `name` is exactly `expected`, in reverse and forward mode.
  private func assertGradient(
    _ expr: String, _ inputs: Inputs, _ name: String, _ expected: Tensor, file: StaticString = #filePath,
    line: UInt = #line
  ) throws {
    let reverse = try XCTUnwrap(try gradient(expr, inputs)[name], file: file, line: line)
    assertClose(reverse, expected, relative: 0, "reverse d/d\(name) of \(expr)", file: file, line: line)
    let forward = try forwardGradient(expr, inputs, name)
    assertClose(forward, expected, relative: 0, "forward d/d\(name) of \(expr)", file: file, line: line)
  }

  func testReluAbsAndSignAtZero() throws {
    let x = Tensor(shape: [5], scalars: [-2, -0.0, 0, 0.5, 3])
    try assertGradient("sum(relu(x))", ["x": x], "x", Tensor(shape: [5], scalars: [0, 0, 0, 1, 1]))
    try assertGradient("sum(abs(x))", ["x": x], "x", Tensor(shape: [5], scalars: [-1, 0, 0, 1, 1]))
    try assertGradient("sum(sign(x))", ["x": x], "x", Tensor(repeating: 0, shape: [5]))
    // Rank 0 runs the scalar executor.
    for expr in ["relu(x)", "abs(x)", "sign(x)", "relu(x) * 3 + abs(x)"] {
      try assertGradient(expr, ["x": Tensor(0)], "x", Tensor(0))
    }
    try assertGradient("sign(x) * 5", ["x": Tensor(-2)], "x", Tensor(0))
  }

  func testSqrtAtZeroIsInfinite() throws {
    try assertGradient("sqrt(x)", ["x": Tensor(0)], "x", Tensor(.infinity))
    let x = Tensor(shape: [3], scalars: [0, 1, 4])
    try assertGradient("sum(sqrt(x))", ["x": x], "x", Tensor(shape: [3], scalars: [.infinity, 0.5, 0.25]))
    // A zero cotangent on the infinite derivative contributes exactly zero (not NaN); a nonzero one gives infinity.
    let program = try compile("sqrt(x)", ["x": x])
    let ws = workspace(program, ["x": x])
    XCTAssertEqual(ws.valueWithPullback(seed: [0, 2, 1]).adjoints[0], Tensor(shape: [3], scalars: [0, 1, 0.25]))
    XCTAssertEqual(
      ws.valueWithPullback(seed: [-1, 0, 0]).adjoints[0], Tensor(shape: [3], scalars: [-.infinity, 0, 0]))
    XCTAssertEqual(
      ws.valueWithDifferential(tangents: [0: [0, 1, 1]]).tangent, Tensor(shape: [3], scalars: [0, 0.5, 0.25]))
  }

  func testTiesInMaxAndMinShareTheGradient() throws {
    try assertGradient(
      "max(x)", ["x": Tensor(shape: [3], scalars: [1, 3, 3])], "x", Tensor(shape: [3], scalars: [0, 0.5, 0.5]))
    try assertGradient(
      "min(x)", ["x": Tensor(shape: [4], scalars: [2, 1, 1, 5])], "x", Tensor(shape: [4], scalars: [0, 0.5, 0.5, 0]))
    let third = 1.0 / 3
    try assertGradient(
      "max(x)", ["x": Tensor(shape: [3], scalars: [2, 2, 2])], "x", Tensor(repeating: third, shape: [3]))
    let x = Tensor(shape: [2, 3], scalars: [1, 3, 3, 4, 0, 4])
    try assertGradient(
      "sum(max(x, axis=1, keepdims=true) * 2)", ["x": x], "x", Tensor(shape: [2, 3], scalars: [0, 1, 1, 1, 0, 1]))
    try assertGradient(
      "sum(min(x, axis=0))", ["x": Tensor(shape: [2, 2], scalars: [1, 5, 1, 2])], "x",
      Tensor(shape: [2, 2], scalars: [0.5, 0, 0.5, 1]))
    // The Jacobian is the same in both modes at a tie, and the Hessian of max(x)^2 is symmetric: forward mode
    // shares the tangent between the tied elements as the reverse sweep shares the cotangent.
    for expr in ["max(x, axis=1)", "min(x, axis=0)", "max(x)"] {
      let ws = workspace(try compile(expr, ["x": x]), ["x": x])
      XCTAssertEqual(ws.jacobian(mode: .forward).blocks, ws.jacobian(mode: .reverse).blocks, expr)
    }
    let hessian = workspace(try compile("max(x) ^ 3", ["x": x]), ["x": x]).hessian().blocks[0][0]
    // f = m³ with m = (x_3 + x_5)/2 near the tie: H = 6m·∇m∇mᵀ, ∇m = (e_3 + e_5)/2.
    let expected = Tensor.build([2, 3, 2, 3]) { index in
      [3, 5].contains(index[0] * 3 + index[1]) && [3, 5].contains(index[2] * 3 + index[3]) ? 6 * 4 / 4 : 0
    }
    XCTAssertEqual(hessian, expected)
  }

  func testTiesInMaximumAndMinimumShareTheGradient() throws {
    let inputs: Inputs = ["x": Tensor(shape: [3], scalars: [1, 2, 3]), "c": Tensor(2)]
    try assertGradient("sum(maximum(x, c))", inputs, "x", Tensor(shape: [3], scalars: [0, 0.5, 1]))
    try assertGradient("sum(maximum(x, c))", inputs, "c", Tensor(1.5))
    try assertGradient("sum(minimum(x, c))", inputs, "x", Tensor(shape: [3], scalars: [1, 0.5, 0]))
    try assertGradient("sum(minimum(x, c))", inputs, "c", Tensor(1.5))
    try assertGradient("maximum(c, c)", inputs, "c", Tensor(1))
    try assertGradient("minimum(y, c)", ["y": Tensor(2), "c": Tensor(2)], "y", Tensor(0.5))
    try assertGradient("sum(maximum(x, x * 1))", inputs, "x", Tensor(repeating: 1, shape: [3]))
  }

  func testPowDerivativeWithRespectToTheExponent() throws {
    // x > 0: x^y·log x.
    try assertGradient("x ^ y", ["x": Tensor(2), "y": Tensor(3)], "y", Tensor(8 * Foundation.log(2.0)))
    try assertGradient("x ^ y", ["x": Tensor(2), "y": Tensor(3)], "x", Tensor(12))
    // x = 0: 0, for any exponent.
    for y in [2.0, 0.5, 3, 0, -1] {
      try assertGradient("x ^ y", ["x": Tensor(0), "y": Tensor(y)], "y", Tensor(0))
    }
    // x < 0: NaN, even where x^y itself is defined.
    for y in [2.0, 3, 0.5] {
      let inputs: Inputs = ["x": Tensor(-2), "y": Tensor(y)]
      XCTAssertTrue(try gradient("x ^ y", inputs)["y"]!.scalars[0].isNaN, "d/dy (-2)^\(y)")
      XCTAssertTrue(try forwardGradient("x ^ y", inputs, "y").scalars[0].isNaN, "forward d/dy (-2)^\(y)")
    }
    try assertGradient("x ^ y", ["x": Tensor(-2), "y": Tensor(2)], "x", Tensor(-4))
    try assertGradient("x ^ y", ["x": Tensor(-2), "y": Tensor(3)], "x", Tensor(12))
    // The tensor kernels follow the same rules.
    let inputs: Inputs = ["x": Tensor(shape: [3], scalars: [2, 0, -2]), "y": Tensor(shape: [3], scalars: [3, 2, 2])]
    let y = try XCTUnwrap(try gradient("sum(x ^ y)", inputs)["y"])
    XCTAssertEqual(y.scalars[0], 8 * Foundation.log(2.0))
    XCTAssertEqual(y.scalars[1], 0)
    XCTAssertTrue(y.scalars[2].isNaN)
  }

  func testWhereHidesTheUntakenBranchExactly() throws {
    // where(x > 0, sqrt(x), 0) at x = -1: sqrt(-1) is NaN and its derivative too, but the branch is not taken.
    let expr = "where(x > 0, sqrt(x), 0)"
    for x in [-1.0, 0] {
      try assertGradient(expr, ["x": Tensor(x)], "x", Tensor(0))
      let ws = workspace(try compile(expr, ["x": Tensor(x)]), ["x": Tensor(x)])
      let hessian = ws.hessian()
      XCTAssertEqual(hessian.value, 0)
      XCTAssertEqual(hessian.gradient, [Tensor(0)])
      XCTAssertEqual(hessian.blocks, [[Tensor(shape: [], scalars: [0])]], "second derivative at \(x)")
      XCTAssertEqual(ws.jacobian(mode: .forward).blocks, [Tensor(0)])
      XCTAssertEqual(ws.jacobian(mode: .reverse).blocks, [Tensor(0)])
    }
    let ws = workspace(try compile(expr, ["x": Tensor(4)]), ["x": Tensor(4)])
    let hessian = ws.hessian()
    XCTAssertEqual(hessian.gradient, [Tensor(0.25)])
    XCTAssertEqual(hessian.blocks, [[Tensor(-1.0 / 32)]])
    // The same on tensors, and through log and division.
    let x = Tensor(shape: [4], scalars: [-1, 0, 4, -3])
    let program = try compile("sum(where(x > 0, sqrt(x) + log(x) / x, 0))", ["x": x])
    let tensorWorkspace = workspace(program, ["x": x])
    let gradient = tensorWorkspace.valueWithPullback().adjoints[0]
    XCTAssertEqual(gradient.scalars[0], 0)
    XCTAssertEqual(gradient.scalars[1], 0)
    XCTAssertEqual(gradient.scalars[3], 0)
    XCTAssertEqual(gradient.scalars[2], 0.25 + (1 - Foundation.log(4.0)) / 16, accuracy: 1e-15)
    let tensorHessian = tensorWorkspace.hessian().blocks[0][0]
    XCTAssertFalse(tensorHessian.scalars.contains { $0.isNaN })
    XCTAssertEqual(tensorHessian.scalars.filter { $0 != 0 }.count, 1)
  }

  func testInputTheOutputDoesNotDependOnGetsZeros() throws {
    // y is bound to a name that the output does not use; z only reaches the output through a comparison.
    for (expr, inputs) in [
      ("a = y * 2; x * 3", ["x": Tensor(1.5), "y": Tensor(2)]),
      (
        "a = sin(y); sum(x * 3)",
        ["x": Tensor(shape: [2], scalars: [1, 2]), "y": Tensor(shape: [3], scalars: [1, 2, 3])]
      ),
      ("sum(x * (z > 0))", ["x": Tensor(shape: [2], scalars: [1, 2]), "z": Tensor(shape: [2], scalars: [-1, 2])]),
    ] as [(String, Inputs)] {
      let program = try compile(expr, inputs)
      let ws = workspace(program, inputs)
      let other = program.inputs.firstIndex { $0.name != "x" }!
      let otherShape = program.slots[program.inputs[other].slot].shape
      let adjoints = ws.valueWithPullback().adjoints
      XCTAssertEqual(adjoints[other], Tensor(repeating: 0, shape: otherShape), expr)
      XCTAssertNotEqual(adjoints[1 - other], Tensor(repeating: 0, shape: adjoints[1 - other].shape), expr)
      for mode in [Workspace.JacobianMode.forward, .reverse] {
        XCTAssertEqual(ws.jacobian(mode: mode).blocks[other], Tensor(repeating: 0, shape: otherShape), expr)
      }
      for row in ws.hessian().blocks { for block in row { assertExactlyZero(block, expr) } }
    }
  }

  func testWrtSubsetGivesZerosForTheOthers() throws {
    for inputs in [
      ["x": Tensor(0.5), "y": Tensor(-1.5)],
      ["x": Tensor(shape: [2], scalars: [0.5, 1]), "y": Tensor(shape: [2], scalars: [-1.5, 2])],
    ] as [Inputs] {
      let expr = "sum(x * y + sin(x) * y ^ 2)"
      let program = try compile(expr, inputs)
      let (x, y) = (try inputIndices(program, ["x"])[0], try inputIndices(program, ["y"])[0])
      let ws = workspace(program, inputs)
      let all = ws.valueWithPullback().adjoints
      let onlyX = ws.valueWithPullback(wrt: [x]).adjoints
      XCTAssertEqual(onlyX[x], all[x])
      assertExactlyZero(onlyX[y], "d/dy when only x is asked for")
      let onlyY = ws.valueWithPullback(wrt: [y]).adjoints
      XCTAssertEqual(onlyY[y], all[y])
      assertExactlyZero(onlyY[x], "d/dx when only y is asked for")
      XCTAssertEqual(ws.jacobian(wrt: [y]).blocks.count, 1)
      XCTAssertEqual(ws.jacobian(wrt: [y], mode: .forward).blocks[0], ws.jacobian(wrt: [y], mode: .reverse).blocks[0])
      let hessian = ws.hessian(wrt: [y])
      XCTAssertEqual(hessian.gradient, [all[y]])
      XCTAssertEqual(hessian.blocks.count, 1)
      XCTAssertEqual(hessian.blocks[0].count, 1)
    }
  }
}
