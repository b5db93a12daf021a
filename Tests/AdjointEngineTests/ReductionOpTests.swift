import AdjointEngine
import AdjointExpressions
import Foundation
import XCTest

/// The derivative ladder for the reductions (sum, mean, max, min, prod, logsumexp) and softmax / log_softmax, over
/// axis lists, negative axes and keepdims.
final class ReductionOpTests: XCTestCase {
  /// Axis attributes and the axes they mean for a rank-3 input (nil: all).
  private static let axisCases: [(attributes: String, axes: [Int]?, keepdims: Bool)] = [
    ("", nil, false), (", axis=0", [0], false), (", axis=1", [1], false), (", axis=-1", [-1], false),
    (", axis=[0, 2]", [0, 2], false), (", axis=[-1, 0]", [-1, 0], false), (", axis=1, keepdims=true", [1], true),
    (", keepdims=true", nil, true), (", axis=[-2, -3], keepdims=true", [-2, -3], true), (", axis=[]", [], false),
  ]

  /// The ladder and the values of `name(x, attributes)` for every axis case on a [2, 3, 4] input, and on a vector and
  /// a scalar.
  private func checkReduction(
    _ name: String, _ domain: Domain, _ reference: @escaping ([Double]) -> Double, file: StaticString = #filePath,
    line: UInt = #line
  ) throws {
    var rng = SeededGenerator(name)
    let x = domain.sample(&rng, [2, 3, 4])
    for (attributes, axes, keepdims) in Self.axisCases {
      let expr = "\(name)(x\(attributes))"
      try assertDerivatives(expr, at: ["x": x], file: file, line: line)
      try assertValues(
        expr, at: ["x": x], equal: reduceReference(x, axes: axes, keepdims: keepdims, reference), relative: 1e-13,
        file: file, line: line)
    }
    for shape in [[7], []] {
      let y = domain.sample(&rng, shape)
      try assertDerivatives("\(name)(y)", at: ["y": y], file: file, line: line)
      try assertValues(
        "\(name)(y)", at: ["y": y], equal: reduceReference(y, axes: nil, reference), relative: 1e-13, file: file,
        line: line)
    }
    // A reduction of a computed, broadcast tensor.
    let inputs: Inputs = ["a": domain.sample(&rng, [3, 1]), "b": domain.sample(&rng, [4])]
    try assertDerivatives("\(name)(a + b, axis=0) * b", at: inputs, file: file, line: line)
  }

  func testSum() throws { try checkReduction("sum", .uniform(-2...2)) { $0.reduce(0, +) } }
  func testMean() throws { try checkReduction("mean", .uniform(-2...2)) { $0.reduce(0, +) / Double($0.count) } }
  func testMax() throws { try checkReduction("max", .distinct(-2...2)) { $0.max()! } }
  func testMin() throws { try checkReduction("min", .distinct(-2...2)) { $0.min()! } }
  func testProd() throws { try checkReduction("prod", .signed(0.5...1.5)) { $0.reduce(1, *) } }

  func testLogsumexp() throws {
    try checkReduction("logsumexp", .uniform(-2...2)) { values in
      let m = values.max()!
      return m + Foundation.log(values.map { Foundation.exp($0 - m) }.reduce(0, +))
    }
  }

  func testLogsumexpIsStable() throws {
    let x = Tensor(shape: [2, 3], scalars: [1000, 1000, -.infinity, -1000, -1001, -.infinity])
    let value = try evaluate("logsumexp(x, axis=1)", ["x": x])
    assertClose(
      value, Tensor(shape: [2], scalars: [1000 + Foundation.log(2), -1000 + Foundation.log1p(Foundation.exp(-1.0))]),
      relative: 1e-15)
    let program = try compile("sum(logsumexp(x, axis=1))", ["x": x])
    let gradient = workspace(program, ["x": x]).valueWithPullback().adjoints[0]
    let e = 1 / (1 + Foundation.exp(-1.0))
    assertClose(gradient, Tensor(shape: [2, 3], scalars: [0.5, 0.5, 0, e, 1 - e, 0]), relative: 1e-12)
    try assertValues(
      "logsumexp(x)", at: ["x": Tensor(repeating: -.infinity, shape: [3])], equal: Tensor(-.infinity), relative: 0)
  }

  func testProdWithZeros() throws {
    // d prod / d x_i is the product of the other elements, computed without dividing by zero.
    let oneZero = Tensor(shape: [4], scalars: [2, 0, -1.5, 0.5])
    let twoZeros = Tensor(shape: [4], scalars: [2, 0, -1.5, 0])
    for x in [oneZero, twoZeros] {
      let program = try compile("prod(x)", ["x": x])
      let gradient = workspace(program, ["x": x]).valueWithPullback().adjoints[0]
      let expected = Tensor(
        shape: [4], scalars: (0..<4).map { i in (0..<4).filter { $0 != i }.map { x.scalars[$0] }.reduce(1, *) })
      XCTAssertEqual(gradient, expected)
      // ∂²/∂x_i∂x_j = the product of the elements other than i and j; 0 on the diagonal.
      let hessian = workspace(program, ["x": x]).hessian().blocks[0][0]
      let closedForm = Tensor.build([4, 4]) { index in
        index[0] == index[1]
          ? 0 : (0..<4).filter { $0 != index[0] && $0 != index[1] }.map { x.scalars[$0] }.reduce(1, *)
      }
      assertClose(hessian, closedForm, relative: 1e-15, "Hessian of prod at \(x.scalars)")
      try assertDerivatives("prod(x)", at: ["x": x])
    }
    try assertDerivatives("prod(x, axis=1)", at: ["x": Tensor(shape: [2, 3], scalars: [0, 2, 3, 0, 0, 1.5])])
  }

  func testEmptyReductions() throws {
    let empty = Tensor(shape: [0], scalars: [])
    try assertValues("sum(x)", at: ["x": empty], equal: Tensor(0), relative: 0)
    try assertValues("prod(x)", at: ["x": empty], equal: Tensor(1), relative: 0)
    try assertValues(
      "sum(x, axis=1)", at: ["x": Tensor(shape: [2, 0], scalars: [])], equal: Tensor(shape: [2], scalars: [0, 0]))
    let program = try compile("sum(x) * 2", ["x": empty])
    XCTAssertEqual(workspace(program, ["x": empty]).valueWithPullback().adjoints[0], empty)
    XCTAssertThrowsError(try compile("max(x)", ["x": empty])) { error in
      XCTAssertEqual((error as? Diagnostic)?.kind, .semantic)
    }
  }

  func testNaNPropagatesThroughReductions() throws {
    let x = Tensor(shape: [2, 3], scalars: [1, .nan, 3, 4, 5, 6])
    for name in ["sum", "mean", "max", "min", "prod", "logsumexp"] {
      let value = try evaluate("\(name)(x, axis=1)", ["x": x])
      XCTAssertTrue(value.scalars[0].isNaN, "\(name) of a row with a NaN: \(value)")
      XCTAssertFalse(value.scalars[1].isNaN, "\(name) of a row of numbers")
    }
    for name in ["softmax", "log_softmax"] {
      let value = try evaluate("\(name)(x, axis=1)", ["x": x])
      XCTAssertTrue(value.scalars[0..<3].allSatisfy(\.isNaN), "\(name) of a row with a NaN: \(value)")
      XCTAssertFalse(value.scalars[3..<6].contains { $0.isNaN }, "\(name) of a row of numbers")
    }
    try assertValues(
      "softmax(x)", at: ["x": Tensor(shape: [3], scalars: [-.infinity, 0, 0])],
      equal: Tensor(shape: [3], scalars: [0, 0.5, 0.5]), relative: 0)
  }

  // MARK: softmax and log_softmax

  private static func softmax(_ line: [Double]) -> [Double] {
    let m = line.max()!
    let e = line.map { Foundation.exp($0 - m) }
    let total = e.reduce(0, +)
    return e.map { $0 / total }
  }

  private func checkNormalization(
    _ name: String, _ reference: @escaping ([Double]) -> [Double], file: StaticString = #filePath, line: UInt = #line
  ) throws {
    var rng = SeededGenerator(name)
    let x = Domain.uniform(-2...2).sample(&rng, [2, 3, 4])
    for (attributes, axis) in [("", -1), (", axis=0", 0), (", axis=1", 1), (", axis=-2", -2), (", axis=2", 2)] {
      let expr = "\(name)(x\(attributes))"
      try assertDerivatives(expr, at: ["x": x], file: file, line: line)
      try assertValues(
        expr, at: ["x": x], equal: alongAxis(x, axis: axis, reference), relative: 1e-14, file: file, line: line)
    }
    let v = Domain.uniform(-2...2).sample(&rng, [5])
    try assertDerivatives("\(name)(v)", at: ["v": v], file: file, line: line)
    try assertValues("\(name)(v)", at: ["v": v], equal: alongAxis(v, axis: 0, reference), file: file, line: line)
    // Large inputs do not overflow.
    let large = Tensor(shape: [3], scalars: [1000, 999, -1000])
    try assertValues(
      "\(name)(v)", at: ["v": large], equal: alongAxis(large, axis: 0, reference), relative: 1e-14, file: file,
      line: line)
  }

  func testSoftmax() throws { try checkNormalization("softmax", Self.softmax) }
  func testLogSoftmax() throws { try checkNormalization("log_softmax") { Self.softmax($0).map(Foundation.log) } }

  func testSoftmaxRowsSumToOneAndLogSoftmaxIsItsLog() throws {
    var rng = SeededGenerator("softmax rows")
    let x = Domain.uniform(-5...5).sample(&rng, [4, 6])
    try assertValues("sum(softmax(x), axis=1)", at: ["x": x], equal: Tensor(repeating: 1, shape: [4]))
    let ratio = try evaluate("exp(log_softmax(x, axis=0)) - softmax(x, axis=0)", ["x": x])
    XCTAssertLessThan(ratio.scalars.map(abs).max()!, 1e-15)
  }
}
