import AdjointExpressions
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
}
