import XCTest

@testable import AdjointEngine

/// A slot's last reader stores its adjoint instead of adding to it, and the workspace then skips zeroing that
/// adjoint: replays must never see the previous sweep's adjoints, whatever the inputs and the `wrt` set.
final class AdjointStoreTests: XCTestCase {
  /// Programs whose last readers take every store path: matmul, the stored unary ops and the others, binary ops on
  /// equal shapes and broadcast ones (the full-shape operand stores, the broadcast one accumulates), fan-out.
  private static let cases: [(expr: String, shapes: [String: [Int]])] = [
    (
      "h = tanh(X @ W1 + b1); z = h @ W2 + b2; mean(logsumexp(z, axis=1) - sum(z * Y, axis=1))",
      ["X": [5, 4], "W1": [4, 3], "b1": [3], "W2": [3, 2], "b2": [2], "Y": [5, 2]]
    ),
    ("sum(exp(a) * b + square(a - b) - neg(relu(b)) + sigmoid(a) / (b * b + 1))", ["a": [3, 4], "b": [3, 4]]),
    ("u = a @ b; sum(log(u * u + 1) + sign(u) + abs(u) ^ 1.5)", ["a": [3, 2], "b": [2, 4]]),
    ("u = a * c; v = u + b; sum(v * v) + sum(u)", ["a": [4, 3], "b": [3], "c": [4, 1]]),
    ("x = a @ a; sum(x - transpose(x))", ["a": [3, 3]]),
  ]

  func testReusedWorkspacesMatchFreshOnes() throws {
    for (expr, shapes) in Self.cases {
      var rng = SeededGenerator(expr)
      let names = shapes.keys.sorted()
      let first: Inputs = shapes.mapValues { Domain.uniform(-1.5...1.5).sample(&rng, $0) }
      let program = try compile(expr, first)
      let reused = workspace(program, first)
      let subsets = [nil, [names[0]], Array(names.dropFirst()), names]
      for (trial, subset) in subsets.enumerated() {
        let inputs: Inputs = shapes.mapValues { Domain.uniform(-1.5...1.5).sample(&rng, $0) }
        for (index, binding) in program.inputs.enumerated() { reused.setInput(index, inputs[binding.name]!.scalars) }
        let wrt = try subset.map { try inputIndices(program, $0) }
        let fresh = workspace(program, inputs).valueWithPullback(wrt: wrt)
        let again = reused.valueWithPullback(wrt: wrt)
        XCTAssertEqual(again.value.scalars, fresh.value.scalars, "\(expr), trial \(trial): value")
        for (k, binding) in program.inputs.enumerated() {
          XCTAssertEqual(
            again.adjoints[k].scalars.map(\.bitPattern), fresh.adjoints[k].scalars.map(\.bitPattern),
            "\(expr), trial \(trial), wrt \(subset ?? names): d/d\(binding.name)")
        }
        // Forward over reverse (dual numbers) through the same stores, and back to plain gradients.
        let hessian = reused.hessian(wrt: wrt)
        let freshHessian = workspace(program, inputs).hessian(wrt: wrt)
        for (block, expected) in zip(hessian.blocks.joined(), freshHessian.blocks.joined()) {
          XCTAssertEqual(block.scalars, expected.scalars, "\(expr), trial \(trial): Hessian")
        }
      }
    }
  }

  func testStorersAreTheLastReaders() throws {
    // In the MLP, X @ W1 is the last reader of W1 (not of X, an input read once too, which it also stores), the
    // bias add of X @ W1 and tanh of the sum: their adjoints need no zeroing. b1, read by a broadcast, does.
    let shapes: [String: [Int]] = ["X": [5, 4], "W1": [4, 3], "b1": [3], "W2": [3, 2], "b2": [2], "Y": [5, 2]]
    let program = try compile(Self.cases[0].expr, shapes.mapValues { Tensor(repeating: 0.5, shape: $0) })
    let code = program.code
    func slot(_ name: String) -> Int { program.inputs.first { $0.name == name }!.slot }
    let matmul = code.firstIndex { $0.op == .matmul }!
    XCTAssertEqual(program.adjointStorers[slot("W1")], Int32(matmul))
    XCTAssertEqual(program.adjointStorers[slot("X")], Int32(matmul))
    let add = code.firstIndex { $0.op == .add }!
    XCTAssertEqual(program.adjointStorers[Int(code[matmul].out)], Int32(add))
    XCTAssertEqual(program.adjointStorers[slot("b1")], -1, "a broadcast operand accumulates")
    let tanh = code.firstIndex { $0.op == .tanh }!
    XCTAssertEqual(program.adjointStorers[Int(code[add].out)], Int32(tanh))
    for output in program.outputs { XCTAssertEqual(program.adjointStorers[output.slot], -1, "outputs are seeded") }
    // z is read by logsumexp, then by z * Y: the mul, its last reader, is the first to write its adjoint in a
    // reverse sweep, and logsumexp's rule adds to it afterwards.
    let mul = code.firstIndex { $0.op == .mul }!
    XCTAssertEqual(program.adjointStorers[Int(code[mul].a)], Int32(mul))
    XCTAssertLessThan(code.firstIndex { $0.op == .logsumexp }!, mul)
    let scalarProgram = try compile("sin(x) * y", ["x": Tensor(1), "y": Tensor(2)])
    XCTAssertTrue(scalarProgram.adjointStorers.allSatisfy { $0 < 0 }, "the scalar executor always accumulates")
  }
}
