import AdjointEngine
import Foundation
import XCTest

/// Jacobians: forward and reverse mode agree, blocks have shape `out.shape + x.shape`, and a closed form.
final class JacobianTests: XCTestCase {
  func testNonSquareJacobianInBothModes() throws {
    var rng = SeededGenerator("jacobian")
    let inputs: Inputs = [
      "x": Domain.uniform(-1...1).sample(&rng, [3]), "A": Domain.uniform(-1...1).sample(&rng, [4, 3]),
    ]
    let program = try compile("tanh(A @ x) * sum(x)", inputs)
    let ws = workspace(program, inputs)
    let (x, a) = (try inputIndices(program, ["x"])[0], try inputIndices(program, ["A"])[0])
    let forward = ws.jacobian(wrt: [x, a], mode: .forward)
    let reverse = ws.jacobian(wrt: [x, a], mode: .reverse)
    let automatic = ws.jacobian(wrt: [x, a])
    XCTAssertEqual(forward.blocks.map(\.shape), [[4, 3], [4, 4, 3]])
    XCTAssertEqual(reverse.blocks.map(\.shape), [[4, 3], [4, 4, 3]])
    XCTAssertEqual(forward.value, reverse.value)
    for k in 0..<2 {
      assertClose(forward.blocks[k], reverse.blocks[k], relative: 1e-12, "block \(k), forward against reverse")
      assertClose(automatic.blocks[k], reverse.blocks[k], relative: 1e-12, "block \(k), auto against reverse")
    }
    // d/dx_j [tanh(Ax)_i·s] = (1 − t_i²)·A_ij·s + t_i, with t = tanh(Ax) and s = Σx.
    let (xs, am) = (inputs["x"]!.scalars, inputs["A"]!.scalars)
    let s = xs.reduce(0, +)
    let t = (0..<4).map { i in Foundation.tanh((0..<3).map { am[i * 3 + $0] * xs[$0] }.reduce(0, +)) }
    assertClose(
      forward.blocks[0], Tensor.build([4, 3]) { (1 - t[$0[0]] * t[$0[0]]) * am[$0[0] * 3 + $0[1]] * s + t[$0[0]] },
      relative: 1e-14)
    // d/dA_kj [out_i] = δ_ik·(1 − t_i²)·x_j·s.
    assertClose(
      reverse.blocks[1],
      Tensor.build([4, 4, 3]) { $0[0] == $0[1] ? (1 - t[$0[0]] * t[$0[0]]) * xs[$0[2]] * s : 0 }, relative: 1e-14)
    // Only the blocks asked for, in the order asked for.
    XCTAssertEqual(ws.jacobian(wrt: [a, x], mode: .forward).blocks.map(\.shape), [[4, 4, 3], [4, 3]])
  }

  func testJacobianShapes() throws {
    var rng = SeededGenerator("jacobian shapes")
    let cases: [(String, Inputs, [[Int]])] = [
      ("stack(sin(x), x * x, exp(x))", ["x": Domain.uniform(-1...1).sample(&rng, [2])], [[3, 2, 2]]),
      ("sum(x ^ 3)", ["x": Domain.uniform(-1...1).sample(&rng, [3])], [[3]]),
      ("x * c", ["x": Tensor(0.5), "c": Domain.uniform(-1...1).sample(&rng, [3])], [[3], [3, 3]]),
      ("x * 2", ["x": Tensor(0.5)], [[]]),
      (
        "outer(x, y)", ["x": Domain.uniform(-1...1).sample(&rng, [2]), "y": Domain.uniform(-1...1).sample(&rng, [3])],
        [[2, 3, 2], [2, 3, 3]]
      ),
    ]
    for (expr, inputs, shapes) in cases {
      let program = try compile(expr, inputs)
      let ws = workspace(program, inputs)
      let forward = ws.jacobian(mode: .forward)
      let reverse = ws.jacobian(mode: .reverse)
      XCTAssertEqual(forward.blocks.map(\.shape), shapes, expr)
      XCTAssertEqual(reverse.blocks.map(\.shape), shapes, expr)
      for (f, r) in zip(forward.blocks, reverse.blocks) { assertClose(f, r, relative: 1e-12, expr) }
    }
  }

  func testJacobianOfALinearMapIsExact() throws {
    // transpose and slice: 0/1 matrices, exactly, in both modes.
    let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
    for (expr, map) in [
      ("transpose(x)", { (o: [Int]) in [o[1], o[0]] }),
      ("slice(x, axis=1, step=-2)", { (o: [Int]) in [o[0], 2 - 2 * o[1]] }),
    ] as [(String, ([Int]) -> [Int])] {
      let ws = workspace(try compile(expr, ["x": x]), ["x": x])
      let outShape = ws.evaluate()[0].shape
      let expected = Tensor.build(outShape + [2, 3]) { index in
        map(Array(index.prefix(outShape.count))) == Array(index.suffix(2)) ? 1 : 0
      }
      XCTAssertEqual(ws.jacobian(mode: .forward).blocks, [expected], expr)
      XCTAssertEqual(ws.jacobian(mode: .reverse).blocks, [expected], expr)
    }
  }
}
