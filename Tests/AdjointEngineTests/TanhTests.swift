import Foundation
import XCTest

@testable import AdjointEngine

/// The engine's own tanh (Ops/Tanh.swift and its C array kernels): its values against glibc's over a wide range and
/// at the special points, the array kernels against the scalar formula bit for bit, and its derivative.
final class TanhTests: XCTestCase {
  /// The distance in units in the last place between two doubles of the same sign (0 when equal).
  private func ulps(_ a: Double, _ b: Double) -> UInt64 {
    if a == b { return 0 }
    let (x, y) = (Int64(bitPattern: a.bitPattern), Int64(bitPattern: b.bitPattern))
    return (x - y).magnitude
  }

  /// Seeded points: magnitudes spread over 10⁻³⁰⁰…10³⁰⁰ by decade, dense points in [-25, 25], and both signs.
  private func samples(_ count: Int, _ label: String) -> [Double] {
    var rng = SeededGenerator(label)
    return (0..<count).map { i in
      let sign: Double = rng.next() & 1 == 0 ? 1 : -1
      switch i % 3 {
      case 0: return sign * Foundation.pow(10, rng.uniform(-300...300))
      case 1: return sign * Foundation.pow(10, rng.uniform(-9...1.5))
      default: return rng.uniform(-25...25)
      }
    }
  }

  /// The points where a formula changes or the result saturates, their neighbours, and the special values.
  private var edges: [Double] {
    var points: [Double] = [
      0, .leastNonzeroMagnitude, .leastNormalMagnitude, 1e-300, 1e-20, Tanh.identityBound, Tanh.rationalBound,
      0.5, 1, 2, 19, 19.1, Tanh.saturationBound, 30, 709, 710, 1e300, .greatestFiniteMagnitude, .infinity,
    ]
    points += points.flatMap { [$0.nextUp, $0.nextDown] }.filter { $0 >= 0 }
    return points + points.map { -$0 }
  }

  func testValuesAreWithinTwoUlpsOfGlibc() {
    for x in samples(300_000, "tanh values") + edges where x.isFinite {
      let (ours, glibc) = (Tanh.value(x), Foundation.tanh(x))
      XCTAssertEqual(ours.sign, glibc.sign, "tanh(\(x)): sign")
      XCTAssertLessThanOrEqual(ulps(ours, glibc), 2, "tanh(\(x)) is \(ours), glibc's \(glibc)")
      XCTAssertLessThanOrEqual(ours.magnitude, 1, "tanh(\(x))")
    }
  }

  func testSpecialValues() {
    XCTAssertEqual(Tanh.value(0).bitPattern, (0.0).bitPattern, "tanh(+0) is +0")
    XCTAssertEqual(Tanh.value(-0.0).bitPattern, (-0.0).bitPattern, "tanh(-0) is -0")
    XCTAssertEqual(Tanh.value(.infinity), 1)
    XCTAssertEqual(Tanh.value(-.infinity), -1)
    XCTAssertTrue(Tanh.value(.nan).isNaN)
    XCTAssertTrue(Tanh.value(-.nan).isNaN)
    // Tiny arguments (subnormal ones included) come back unchanged, as tanh x = x to double precision there.
    for x in [
      Double.leastNonzeroMagnitude, 0x1p-1030, .leastNormalMagnitude, 1e-300, 1e-20, Tanh.identityBound.nextDown,
    ] {
      XCTAssertEqual(Tanh.value(x), x, "tanh(\(x))")
      XCTAssertEqual(Tanh.value(-x), -x, "tanh(\(-x))")
    }
    // Large arguments saturate to exactly ±1, as glibc's do.
    for x in [20.0, Tanh.saturationBound, 30, 710, 1e300, .greatestFiniteMagnitude] {
      XCTAssertEqual(Tanh.value(x), 1, "tanh(\(x))")
      XCTAssertEqual(Tanh.value(-x), -1, "tanh(\(-x))")
      XCTAssertEqual(Tanh.value(x), Foundation.tanh(x), "tanh(\(x)) against glibc")
    }
    // Odd, to the bit.
    for x in samples(3_000, "tanh odd") {
      XCTAssertEqual(Tanh.value(-x).bitPattern, (-Tanh.value(x)).bitPattern, "tanh(-\(x))")
    }
  }

  func testArrayKernelsMatchTheScalarFormulaBitForBit() {
    // An odd length, so that the vector loops run their remainders too.
    let x = samples(20_001, "tanh kernels") + edges + [.nan, -.nan]
    let expected = x.map(Tanh.value)
    var levelsRun = 0
    for level in 0...LibM.vectorLevel {
      var out = [Double](repeating: 7, count: x.count)
      let ran = x.withUnsafeBufferPointer { source in
        out.withUnsafeMutableBufferPointer {
          LibM.tanh(count: x.count, source.baseAddress!, $0.baseAddress!, level: level)
        }
      }
      XCTAssertEqual(ran, level > 0, "level \(level) has kernels exactly when it is above 0")
      guard ran else { continue }
      levelsRun += 1
      for i in x.indices where out[i].bitPattern != expected[i].bitPattern && !(out[i].isNaN && expected[i].isNaN) {
        XCTFail("level \(level): tanh(\(x[i])) is \(out[i]), the scalar formula gives \(expected[i])")
        break
      }
    }
    XCTAssertEqual(levelsRun, LibM.vectorLevel)
    // In place, the kernels decline (their pointers are `restrict`) and the Swift loop runs.
    var inPlace = x
    let ran = inPlace.withUnsafeMutableBufferPointer { LibM.tanh(count: x.count, $0.baseAddress!, $0.baseAddress!) }
    XCTAssertFalse(ran)
    inPlace.withUnsafeMutableBufferPointer { Tanh.forward(x.count, $0.baseAddress!, $0.baseAddress!) }
    XCTAssertTrue(zip(inPlace, expected).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) })
  }

  func testTheEngineUsesTheSameTanhOnEveryPath() throws {
    // The array kernels (a tensor), the scalar executor (rank 0), fused runs (`x * a + b`) and forward mode must
    // agree to the bit, so that no path's values drift from another's.
    let x = samples(1_000, "tanh paths")
    let inputs: Inputs = ["x": Tensor(shape: [x.count], scalars: x), "a": Tensor(1), "b": Tensor(0)]
    let expected = x.map(Tanh.value)
    XCTAssertEqual(try evaluate("tanh(x)", inputs).scalars.map(\.bitPattern), expected.map(\.bitPattern))
    XCTAssertEqual(try evaluate("tanh(x * a + b)", inputs).scalars.map(\.bitPattern), expected.map(\.bitPattern))
    for v in x.prefix(50) {
      XCTAssertEqual(try evaluate("tanh(x)", ["x": Tensor(v)]).scalars[0].bitPattern, Tanh.value(v).bitPattern)
    }
    let program = try compile("tanh(x)", inputs)
    let jacobian = workspace(program, inputs).jacobian(wrt: try inputIndices(program, ["x"]), mode: .forward)
    XCTAssertEqual(jacobian.value.scalars.map(\.bitPattern), expected.map(\.bitPattern))
  }

  func testDerivative() throws {
    // d tanh/dx = 1 - tanh², from the stored value: against glibc's tanh, finite differences and forward mode,
    // over arguments from tiny to saturated.
    var points = samples(2_000, "tanh derivative").filter(\.isFinite)
    points += [0, -0.0, 1e-300, 0.625, -0.625, 19.5, 30, -30, 1e300]
    let inputs: Inputs = ["x": Tensor(shape: [points.count], scalars: points)]
    let program = try compile("sum(tanh(x))", inputs)
    let gradient = workspace(program, inputs).valueWithPullback().adjoints[try inputIndices(program, ["x"])[0]]
    for (x, g) in zip(points, gradient.scalars) {
      let t = Foundation.tanh(x)
      XCTAssertEqual(g, 1 - t * t, accuracy: 1e-15, "d tanh/dx at \(x)")
      XCTAssertTrue(g >= 0 && g <= 1, "d tanh/dx at \(x) is \(g)")
      if x.magnitude < 8 {
        XCTAssertEqual(g, richardsonDerivative(at: x, Tanh.value), accuracy: 1e-8, "d tanh/dx at \(x), differences")
      }
    }
    XCTAssertEqual(gradient.scalars[points.count - 9], 1, "d tanh/dx at 0")
    XCTAssertEqual(gradient.scalars[points.count - 1], 0, "d tanh/dx at 1e300")
    // The full ladder (forward against reverse mode, finite differences, the Hessian) on a spread of points.
    var rng = SeededGenerator("tanh ladder")
    try assertDerivatives("tanh(x)", at: ["x": Domain.uniform(-6...6).sample(&rng, [40])])
    try assertDerivatives("tanh(x)", at: ["x": Tensor(0.3)])
  }
}
