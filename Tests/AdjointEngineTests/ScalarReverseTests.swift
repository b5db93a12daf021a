import AdjointEngine
import Foundation
import XCTest

/// The scalar reverse sweep stores, rather than adds, a slot's first contribution; these cases make that wrong if
/// the first contribution is chosen wrongly (a slot read twice by one instruction, an output read again, replays at
/// new points, a zero cotangent that skips instructions).
final class ScalarReverseTests: XCTestCase {
  private func program() throws -> Program {
    var builder = ProgramBuilder()
    let x = builder.input("x", shape: [])
    let y = builder.input("y", shape: [])
    let p = try builder.apply(.mul, x, x)
    let q = try builder.apply(.add, p, x)
    let r = try builder.apply(.mul, try builder.apply(.sin, q), y)
    let s = try builder.apply(.sub, r, p)
    return try builder.build(outputs: [("s", s), ("r", r)])
  }

  private func gradient(_ workspace: Workspace, _ program: Program) -> [Double] {
    program.inputs.map { workspace.adjoint(ofSlot: $0.slot).scalars[0] }
  }

  func testFirstContributionsAreStoredCorrectlyAcrossReplays() throws {
    let program = try program()
    let workspace = Workspace(program)
    for (x, y) in [(0.7, -1.3), (-2.1, 0.4), (0.0, 3.0), (1.5, -0.5)] {
      workspace.setInputs(["x": Tensor(x), "y": Tensor(y)])
      workspace.forward()
      let q = x * x + x
      workspace.backward(output: 0)
      let ds = gradient(workspace, program)
      XCTAssertEqual(ds[0], cos(q) * (2 * x + 1) * y - 2 * x, accuracy: 1e-13)
      XCTAssertEqual(ds[1], sin(q), accuracy: 1e-13)
      workspace.backward(output: 1)
      let dr = gradient(workspace, program)
      XCTAssertEqual(dr[0], cos(q) * (2 * x + 1) * y, accuracy: 1e-13)
      XCTAssertEqual(dr[1], sin(q), accuracy: 1e-13)
      workspace.backward(output: 0, seed: [0])
      XCTAssertEqual(gradient(workspace, program), [0, 0], "a zero cotangent leaves zeros, not the last gradient")
      workspace.backward(output: 0, seed: [2])
      let twice = gradient(workspace, program)
      XCTAssertEqual(twice[0], 2 * ds[0], accuracy: 1e-13)
      XCTAssertEqual(twice[1], 2 * ds[1], accuracy: 1e-13)
    }
  }
}
