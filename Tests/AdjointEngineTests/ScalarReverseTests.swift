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

  /// Records a random chain of scalar ops on `tape`: operands are the last result (as `a`, `b` or both) as often
  /// as older slots, with multiplications by zero and `sign` for zero cotangents. The structure depends on `seed`
  /// alone, so that two recordings at different points are the same program.
  private func randomChain(_ tape: Tape, at point: [Double], seed: String) -> (variables: [Traced], output: Traced) {
    var generator = SeededGenerator(seed)
    let variables = point.map { tape.variable($0) }
    var values = variables
    func pick() -> Traced {
      Int.random(in: 0..<2, using: &generator) == 0
        ? values[values.count - 1] : values.randomElement(using: &generator)!
    }
    for _ in 0..<300 {
      let (a, b) = (pick(), pick())
      let result: Traced
      switch Int.random(in: 0..<12, using: &generator) {
      case 0, 1: result = a + b
      case 2: result = a - b
      case 3: result = sin(a * b)
      case 4: result = sin(a / (b * b + 1))
      case 5: result = sin(a)
      case 6: result = cos(a)
      case 7: result = a * a
      case 8: result = tanh(a) - a
      case 9: result = a * 0.0 + b
      case 10: result = sign(a) * b
      default: result = b - sin(b)
      }
      values.append(result)
    }
    var output = values[values.count - 1]
    for _ in 0..<20 { output = output + pick() }
    return (variables, output)
  }

  func testRegisterChainsOfTheReplayMatchTheTapeBitForBit() throws {
    for seed in ["chain 1", "chain 2", "chain 3", "chain 4"] {
      let tape = Tape()
      let recorded = randomChain(tape, at: [0.3, -0.7, 1.1], seed: seed)
      let program = try tape.program(outputs: [recorded.output])
      let workspace = Workspace(program)
      for point in [[0.3, -0.7, 1.1], [-0.45, 0.2, 0.9], [1.3, 0.6, -0.25]] {
        let again = Tape()
        let (variables, output) = randomChain(again, at: point, seed: seed)
        let gradient = again.gradient(of: output, wrt: variables)
        for (index, x) in point.enumerated() { workspace.setInput(index, scalar: x) }
        let replay = workspace.valueWithPullback()
        XCTAssertEqual(replay.value, output.value, "\(seed) at \(point): value")
        XCTAssertEqual(replay.adjoints, gradient, "\(seed) at \(point): gradient")
        XCTAssertTrue(gradient.allSatisfy { $0.scalars[0].isFinite }, "\(seed) at \(point): finite")
        XCTAssertTrue(gradient.contains { $0.scalars[0] != 0 }, "\(seed) at \(point): a vacuous case")
      }
    }
  }
}
