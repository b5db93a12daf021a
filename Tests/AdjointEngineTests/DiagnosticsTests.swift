import AdjointEngine
import Foundation
import XCTest

/// `gradientCheck` (a central-difference check built into the workspace) and `firstNonFinite` (the instruction that
/// first produced a NaN or an infinity).
final class DiagnosticsTests: XCTestCase {
  func testGradientCheckAgreesWithTheClosedForm() throws {
    let inputs: Inputs = ["x": Tensor(shape: [3], scalars: [0.5, -1.25, 2]), "y": Tensor(0.75)]
    let program = try compile("sum(x ^ 3 + sin(x) * y)", inputs)
    let ws = workspace(program, inputs)
    let value = ws.evaluate()[0]
    let results = ws.gradientCheck()
    XCTAssertEqual(results.count, 2)
    let (x, y) = (try inputIndices(program, ["x"])[0], try inputIndices(program, ["y"])[0])
    let xs = inputs["x"]!.scalars
    let dx = Tensor(shape: [3], scalars: xs.map { 3 * $0 * $0 + Foundation.cos($0) * 0.75 })
    let dy = Tensor(xs.map(Foundation.sin).reduce(0, +))
    assertClose(results[x].numeric, dx, relative: 1e-8, "numeric d/dx")
    assertClose(results[y].numeric, dy, relative: 1e-8, "numeric d/dy")
    assertClose(results[x].analytic, dx, relative: 1e-15, "analytic d/dx")
    assertClose(results[y].analytic, dy, relative: 1e-15, "analytic d/dy")
    XCTAssertLessThan(results[x].maxRelativeError, 1e-8)
    XCTAssertLessThan(results[y].maxRelativeError, 1e-8)
    // The inputs are left as they were.
    XCTAssertEqual(ws.evaluate()[0], value)
    XCTAssertEqual(ws.inputValues, [inputs["x"]!, inputs["y"]!])
  }

  func testGradientCheckHonoursEpsAndWrt() throws {
    // For x³ the central difference is exactly 3x² + h², so the step shows in the result.
    let inputs: Inputs = ["x": Tensor(1), "y": Tensor(2)]
    let program = try compile("x ^ 3 + y", inputs)
    let ws = workspace(program, inputs)
    let result = try XCTUnwrap(ws.gradientCheck(wrt: try inputIndices(program, ["x"]), eps: 1e-2).first)
    XCTAssertEqual(ws.gradientCheck(wrt: try inputIndices(program, ["x"])).count, 1)
    XCTAssertEqual(result.analytic, Tensor(3))
    XCTAssertEqual(result.numeric.scalars[0], 3 + 1e-4, accuracy: 1e-10)
    XCTAssertEqual(result.maxRelativeError, 1e-4 / (3 + 1e-4), accuracy: 1e-10)
  }

  func testGradientCheckReportsADisagreement() throws {
    // relu at 0: the convention says 0, the central difference sees (h − 0)/2h = 0.5.
    let program = try compile("relu(x)", ["x": Tensor(0)])
    let result = try XCTUnwrap(workspace(program, ["x": Tensor(0)]).gradientCheck().first)
    XCTAssertEqual(result.analytic, Tensor(0))
    XCTAssertEqual(result.numeric.scalars[0], 0.5, accuracy: 1e-12)
    XCTAssertEqual(result.maxRelativeError, 0.5, accuracy: 1e-12)
    // A NaN gradient is an infinite error.
    let nan = try compile("x ^ y", ["x": Tensor(-2), "y": Tensor(2)])
    let results = workspace(nan, ["x": Tensor(-2), "y": Tensor(2)]).gradientCheck()
    XCTAssertEqual(results[try inputIndices(nan, ["y"])[0]].maxRelativeError, .infinity)
  }

  private func assertNonFinite(
    _ result: Workspace.NonFinite?, at instruction: Int, inBackward: Bool, file: StaticString = #filePath,
    line: UInt = #line
  ) {
    XCTAssertEqual(result?.instruction, instruction, "instruction", file: file, line: line)
    XCTAssertEqual(result?.inBackward, inBackward, "inBackward", file: file, line: line)
  }

  /// The index of the first instruction running `op`.
  private func instruction(_ op: OpCode, in program: Program) throws -> Int {
    try XCTUnwrap((0..<program.instructionCount).first { program.op(at: $0) == op }, "no \(op.name) in the program")
  }

  func testFirstNonFiniteInTheForwardSweep() throws {
    let expr = "log(x - 2) * 3"
    let program = try compile(expr, ["x": Tensor(1)])
    let ws = workspace(program, ["x": Tensor(1)])
    let log = try instruction(.log, in: program)
    assertNonFinite(ws.firstNonFinite(backward: false), at: log, inBackward: false)
    assertNonFinite(ws.firstNonFinite(backward: true), at: log, inBackward: false)
    XCTAssertEqual(program.origins[log], 0, "the position of log in the expression")
    // Later instructions that only carry the NaN along are not blamed: exp overflows first.
    let overflow = try compile("a = exp(x); b = a * 2; b - b", ["x": Tensor(1000)])
    assertNonFinite(
      workspace(overflow, ["x": Tensor(1000)]).firstNonFinite(backward: false), at: try instruction(.exp, in: overflow),
      inBackward: false)
  }

  func testFirstNonFiniteInTheBackwardSweep() throws {
    let program = try compile("sqrt(x)", ["x": Tensor(0)])
    let ws = workspace(program, ["x": Tensor(0)])
    let sqrt = try instruction(.sqrt, in: program)
    XCTAssertNil(ws.firstNonFinite(backward: false))
    assertNonFinite(ws.firstNonFinite(backward: true, seed: [1]), at: sqrt, inBackward: true)
    assertNonFinite(ws.firstNonFinite(backward: true), at: sqrt, inBackward: true)
    // A zero cotangent contributes exactly zero: nothing non-finite.
    XCTAssertNil(ws.firstNonFinite(backward: true, seed: [0]))
    // On tensors, and only along the inputs asked for.
    let inputs: Inputs = ["x": Tensor(shape: [2], scalars: [1, 0]), "y": Tensor(3)]
    let tensor = try compile("sum(sqrt(x) * y) + y", inputs)
    let tensorWorkspace = workspace(tensor, inputs)
    assertNonFinite(
      tensorWorkspace.firstNonFinite(backward: true), at: try instruction(.sqrt, in: tensor), inBackward: true)
    XCTAssertNil(tensorWorkspace.firstNonFinite(backward: true, wrt: try inputIndices(tensor, ["y"])))
  }

  func testFirstNonFiniteIsNilForAFiniteProgram() throws {
    let inputs: Inputs = ["x": Tensor(shape: [3], scalars: [0.5, 1, 2])]
    let program = try compile("sum(log(x) * sqrt(x) + softmax(x))", inputs)
    let ws = workspace(program, inputs)
    XCTAssertNil(ws.firstNonFinite(backward: false))
    XCTAssertNil(ws.firstNonFinite(backward: true))
    XCTAssertNil(ws.firstNonFinite(backward: true, seed: [2]))
  }
}
