import AdjointExpressions
import MallocCounter
import XCTest

@testable import AdjointEngine

/// Fused elementwise runs give the same values and gradients as the instructions one by one, across blocks and
/// across replays of one workspace (whose adjoints the runs zero themselves).
final class FusionTests: XCTestCase {
  private func compile(_ source: String, _ shapes: [String: [Int]]) throws -> Program {
    try GraphCompiler.compile(try ExprParser.parse(source), inputShapes: shapes)
  }

  /// The gradient of `sum(slice(x, start, stop, step)^2)` is `2x` on the elements the slice reads and exactly 0
  /// elsewhere, replay after replay, for runs that span several blocks.
  func testSlicesThatMissElementsLeaveExactZerosOnEveryReplay() throws {
    let n = 3000
    for (start, stop, step) in [(2, -2, 1), (1, n, 2), (0, -1, 3)] {
      let program = try compile("sum(slice(x, start=\(start), stop=\(stop), step=\(step))^2)", ["x": [n]])
      let workspace = Workspace(program)
      for replay in 0..<3 {
        let x = (0..<n).map { Double($0 % 17) - 8 + Double(replay) }
        workspace.setInput(0, x)
        let gradient = workspace.valueWithPullback().adjoints[0].scalars
        let first = start
        let last = stop < 0 ? n + stop : stop
        for i in 0..<n {
          let read = i >= first && i < last && (i - first) % step == 0
          XCTAssertEqual(gradient[i], read ? 2 * x[i] : 0, "start \(start) step \(step) replay \(replay) element \(i)")
        }
      }
    }
  }

  /// Two overlapping views of one input (Rosenbrock's x[1:] and x[:-1]) accumulate into the same adjoint across
  /// block boundaries; the result equals the closed form.
  func testOverlappingViewsAccumulateAcrossBlocks() throws {
    let n = 2500
    let program = try compile(
      "sum(100*(slice(x, start=1) - slice(x, stop=-1)^2)^2 + (1 - slice(x, stop=-1))^2)", ["x": [n]])
    let workspace = Workspace(program)
    let x = (0..<n).map { -1 + 2 * Double($0) / Double(n - 1) }
    workspace.setInput(0, x)
    for _ in 0..<2 {
      let gradient = workspace.valueWithPullback().adjoints[0].scalars
      var expected = [Double](repeating: 0, count: n)
      for i in 0..<(n - 1) {
        let d = x[i + 1] - x[i] * x[i]
        expected[i] += -400 * x[i] * d - 2 * (1 - x[i])
        expected[i + 1] += 200 * d
      }
      for i in 0..<n { XCTAssertEqual(gradient[i], expected[i], accuracy: 1e-9 * max(1, abs(expected[i]))) }
    }
  }

  /// A long chain of elementwise ops with a distinct constant in each step is cut into runs of bounded length: the
  /// block registers stay small (they grew with the chain before, about 300 MB for 20,000 terms, and building the
  /// runs took quadratic time) and the value is still right.
  func testLongChainsAreCutIntoBoundedRuns() throws {
    let terms = 2000
    let source = (1..<terms).map { "x*\($0)" }.joined(separator: "+")
    let program = try compile(source, ["x": [3]])
    XCTAssertGreaterThan(program.fusedGroups.count, 1)
    XCTAssertLessThanOrEqual(program.fusionScratchCount, 2 * Fusion.block * 3 * (Fusion.maxRunLength + 1))
    let workspace = Workspace(program)
    workspace.setInput(0, [1, 2, 3])
    let total = Double(terms * (terms - 1) / 2)
    XCTAssertEqual(workspace.evaluate()[0].scalars, [total, 2 * total, 3 * total])
    XCTAssertEqual(workspace.valueWithPullback().adjoints[0].scalars, [total, total, total])
  }

  // MARK: Fused against unfused

  /// The value of every slot and the adjoint of every slot, computed one instruction at a time (no fused runs), for
  /// output `output` seeded with `seed` and differentiated with respect to the inputs `wrt`.
  private func unfused(
    _ program: Program, _ inputs: [[Double]], output: Int, seed: [Double], wrt: [Int]
  ) -> (values: [Double], adjoints: [Double]) {
    let count = max(program.arenaCount, 1)
    var values = [Double](repeating: 0, count: count)
    var adjoints = [Double](repeating: 0, count: count)
    var scratch = [Double](repeating: 0, count: max(program.scratchCount, 1))
    for constant in program.constants {
      for (i, scalar) in constant.scalars.enumerated() { values[program.slots[constant.slot].offset + i] = scalar }
    }
    for (index, scalars) in inputs.enumerated() {
      for (i, scalar) in scalars.enumerated() { values[program.slots[program.inputs[index].slot].offset + i] = scalar }
    }
    let active = Executor.activeSlots(program, wrt: wrt)
    let out = program.slots[program.outputs[output].slot]
    for (i, scalar) in seed.enumerated() { adjoints[out.offset + i] = scalar }
    values.withUnsafeMutableBufferPointer { v in
      adjoints.withUnsafeMutableBufferPointer { g in
        scratch.withUnsafeMutableBufferPointer { s in
          for index in program.code.indices { Executor.forward(program, index, v.baseAddress!, s.baseAddress!) }
          for index in program.code.indices.reversed() {
            Executor.reverse(program, index, v.baseAddress!, g.baseAddress!, s.baseAddress!, active)
          }
        }
      }
    }
    return (values, adjoints)
  }

  /// Programs with fused runs across several blocks: broadcast scalars (inputs, so with adjoints of their own, and
  /// constants), slices with steps, several uses of one register, results read outside the run, `where` and
  /// comparisons, and outputs that are and are not a run's closing sum.
  private static let fusedCases: [(source: String, shapes: [String: [Int]])] = [
    ("sum(100*(slice(x, start=1) - slice(x, stop=-1)^2)^2 + (1 - slice(x, stop=-1))^2)", ["x": [2051]]),
    ("sum(a*x + sin(x)*b - x/c + (x*x)*a)", ["x": [1500], "b": [1500], "a": [], "c": []]),
    (
      "u = exp(-x^2) * s; v = u * u + slice(y, start=2, step=2) * s; sum(v - u) * 2",
      ["x": [700], "y": [1402], "s": []]
    ),
    ("u = x * y - 1; w = where(u > 0, u, 0.5 * u); sum(w * w + tanh(u)) + sum(u)", ["x": [1100], "y": [1100]]),
    ("t = 3 - x; t * t * s + x", ["x": [1300], "s": []]),
    ("q = x^2 + x; r = q * 2 + q / 3 - q; sum(-r + sqrt(x))", ["x": [1025]]),
    ("sum((x - y)^2 - (y + 1)^2)", ["x": [1300], "y": [1300]]),
    ("t = (x - y)^2 + y^2; t * s", ["x": [900], "y": [900], "s": []]),
  ]

  /// Fused runs give the gradient of instruction-by-instruction execution to 1e-12: for every case, for all inputs
  /// and for each input alone, seeded with ones and with random cotangents, on replay after replay.
  func testFusedGradientsEqualUnfusedGradients() throws {
    var rng = SeededGenerator("fused against unfused")
    for (source, shapes) in Self.fusedCases {
      let program = try compile(source, shapes)
      XCTAssertFalse(program.fusedGroups.isEmpty, source)
      let workspace = Workspace(program)
      let out = program.slots[program.outputs[0].slot]
      var wrts: [[Int]?] = [nil]
      wrts += program.inputs.indices.map { [$0] }
      for replay in 0..<3 {
        let inputs = program.inputs.map { binding in
          Domain.uniform(0.2...1.5).sample(&rng, program.slots[binding.slot].shape).scalars
        }
        for (index, scalars) in inputs.enumerated() { workspace.setInput(index, scalars) }
        for wrt in wrts {
          for random in [false, true] {
            let seed = random ? Domain.uniform(-2...2).sample(&rng, out.shape).scalars : nil
            let ones = [Double](repeating: 1, count: out.count)
            let reference = unfused(
              program, inputs, output: 0, seed: seed ?? ones, wrt: wrt ?? Array(program.inputs.indices))
            // Twice: the second forward sweep may compute the gradient ahead of its backward sweep.
            for pass in 0..<2 {
              workspace.forward()
              workspace.backward(seed: seed, wrt: wrt)
              let label = "\(source) replay \(replay) wrt \(String(describing: wrt)) random \(random) pass \(pass)"
              let value = workspace.value(ofSlot: program.outputs[0].slot).scalars
              for (i, v) in value.enumerated() {
                XCTAssertEqual(v, reference.values[out.offset + i], accuracy: 1e-12 * max(1, abs(v)), label)
              }
              for index in wrt ?? Array(program.inputs.indices) {
                let slot = program.slots[program.inputs[index].slot]
                let gradient = workspace.adjoint(ofSlot: program.inputs[index].slot).scalars
                for i in 0..<slot.count {
                  let expected = reference.adjoints[slot.offset + i]
                  XCTAssertEqual(
                    gradient[i], expected, accuracy: 1e-12 * max(1, abs(expected)), "\(label) input \(index)[\(i)]")
                }
              }
            }
          }
        }
      }
    }
  }

  /// Which results of a run need an adjoint block, and which are recomputed, is worked out when the program is
  /// built: Rosenbrock's sum hands a uniform adjoint down to its square terms, and the reverse sweep recomputes only
  /// the registers its rules read.
  func testRosenbrockRunKeepsUniformAdjointsAndRecomputesLittle() throws {
    let program = try compile(Self.fusedCases[0].source, Self.fusedCases[0].shapes)
    XCTAssertEqual(program.fusedGroups.count, 1)
    let group = program.fusedGroups[0]
    XCTAssertEqual(program.fusedGradientOutput, 0)
    XCTAssertNotNil(group.sum)
    XCTAssertTrue(group.sumUniform)
    // The square terms and the sums feeding the total are uniform; the differences are not.
    XCTAssertEqual(
      group.steps.filter(\.uniform).map(\.op).sorted { $0.name < $1.name }, [.add, .mul, .square, .square])
    // The first square, the difference and 1 - x are recomputed; the rest is not.
    XCTAssertEqual(group.steps.filter(\.recompute).map(\.op).sorted { $0.name < $1.name }, [.square, .sub, .sub])
    // The three squares are computed by their readers, and the last sum's terms go straight into the total.
    XCTAssertEqual(group.steps.filter(\.inlined).count, 3)
    XCTAssertTrue(group.sumFused)
    // 1 - x[:-1] passes its adjoint to x's directly; x[:-1]^2 shares the adjoint of the difference it is taken from.
    XCTAssertEqual(group.steps.filter(\.bypassed).map(\.op), [.sub])
    XCTAssertEqual(group.steps.filter(\.negated).map(\.op), [.square])
    // Dead values give their registers to later ones: fewer registers than results.
    XCTAssertLessThan(group.registers, group.steps.count + group.scalars.count)
  }

  /// The gradient a forward sweep computes ahead is used only by a backward sweep that asks for it: another seed, an
  /// output, other inputs or an intervening input change all get their own backward sweep.
  func testGradientComputedAheadIsUsedOnlyWhenItMatches() throws {
    let program = try compile("sum(a*x^2 + sin(x)*b)", ["x": [1200], "b": [1200], "a": []])
    XCTAssertEqual(program.fusedGradientOutput, 0)
    var rng = SeededGenerator("gradient ahead")
    let inputs = program.inputs.map { Domain.uniform(-1...1).sample(&rng, program.slots[$0.slot].shape).scalars }
    let workspace = Workspace(program)
    for (index, scalars) in inputs.enumerated() { workspace.setInput(index, scalars) }
    func check(_ seed: Double, _ wrt: [Int], _ label: String, at point: [[Double]]? = nil) {
      let reference = unfused(program, point ?? inputs, output: 0, seed: [seed], wrt: wrt)
      for index in wrt {
        let slot = program.slots[program.inputs[index].slot]
        let gradient = workspace.adjoint(ofSlot: program.inputs[index].slot).scalars
        for i in 0..<slot.count {
          let expected = reference.adjoints[slot.offset + i]
          XCTAssertEqual(gradient[i], expected, accuracy: 1e-12 * max(1, abs(expected)), "\(label) \(index)[\(i)]")
        }
      }
    }
    let all = Array(program.inputs.indices)
    workspace.forward()
    workspace.backward()
    check(1, all, "first")
    workspace.forward()  // computes the gradient ahead
    workspace.backward(seed: [2])
    check(2, all, "seed 2 after a gradient ahead")
    workspace.forward()
    workspace.backward()
    workspace.forward()  // ahead again
    workspace.backward(wrt: [1])
    check(1, [1], "one input after a gradient ahead for all")
    workspace.backward()
    workspace.forward()  // ahead, for all inputs
    _ = workspace.hessianVectorProduct(wrt: [0], direction: [0: inputs[0]])
    workspace.backward(wrt: [0])
    check(1, [0], "after a Hessian-vector product for other inputs")
    workspace.backward()
    workspace.forward()  // ahead
    workspace.forward()  // a second forward sweep: stops computing ahead, and must not leave a stale gradient
    let (x, b) = (try XCTUnwrap(program.inputIndex(named: "x")), try XCTUnwrap(program.inputIndex(named: "b")))
    var moved = inputs
    moved[x] = inputs[x].map { $0 + 0.25 }
    workspace.setInput(x, moved[x])
    workspace.forward()
    workspace.backward()
    check(1, all, "at a moved point", at: moved)
    XCTAssertEqual(workspace.adjoint(ofSlot: program.inputs[b].slot).scalars, moved[x].map { sin($0) }, "d/db = sin(x)")
  }

  /// A warm replay of a program of fused runs allocates nothing, whether or not it computes its value and gradient in
  /// one pass.
  func testWarmFusedReplayAllocatesNothing() throws {
    try XCTSkipUnless(malloc_counter_is_available(), "allocations are counted with glibc only")
    var checked = 0
    for (source, shapes) in Self.fusedCases {
      let program = try compile(source, shapes)
      // Programs made of fused runs only (the instruction-by-instruction kernels are not this test's subject).
      let fused = program.fusedGroups.reduce(0) { $0 + $1.last - $1.first + 1 }
      guard fused == program.instructionCount else { continue }
      checked += 1
      let workspace = Workspace(program)
      var rng = SeededGenerator(source)
      for (index, binding) in program.inputs.enumerated() {
        workspace.setInput(index, Domain.uniform(0.2...1.5).sample(&rng, program.slots[binding.slot].shape).scalars)
      }
      workspace.forward()
      workspace.backward()
      let before = malloc_counter_thread_allocations()
      for _ in 0..<20 {
        workspace.forward()
        workspace.backward()
      }
      XCTAssertEqual(malloc_counter_thread_allocations() - before, 0, source)
    }
    XCTAssertGreaterThanOrEqual(checked, 3)
  }
}
