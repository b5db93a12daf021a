import AdjointEngine
import Foundation
import XCTest

/// Every op's reverse gradient against central finite differences and against forward mode.
final class GradientTests: XCTestCase {
  /// Points inside each op's domain, away from kinks.
  private static let unaryPoints: [OpCode: [Double]] = [
    .neg: [-1.3, 0.2, 2.5], .sin: [-2.0, 0.3, 1.1], .cos: [-0.7, 0.4, 2.9], .exp: [-1.5, 0.0, 1.2],
    .log: [0.3, 1.0, 4.2], .tanh: [-1.1, 0.05, 0.9], .sqrt: [0.25, 1.0, 3.7],
  ]

  private func program(_ op: OpCode, shapes: [[Int]]) throws -> Program {
    var builder = ProgramBuilder()
    let inputs = shapes.enumerated().map { builder.input("x\($0.offset)", shape: $0.element) }
    var out = inputs.count == 2 ? try builder.apply(op, inputs[0], inputs[1]) : try builder.apply(op, inputs[0])
    if builder.shape(of: out) != [] {
      // Weight the elements so a gradient that mixes them up is caught, then reduce to a scalar.
      let count = Tensor.elementCount(builder.shape(of: out))
      let weights = builder.constant(
        Tensor(shape: builder.shape(of: out), scalars: (0..<count).map { 0.5 + Double($0) * 0.25 }))
      out = try builder.apply(.sum, try builder.apply(.mul, out, weights))
    }
    return try builder.build(outputs: [("out", out)])
  }

  /// Checks the reverse gradient of a scalar program against central differences (relative 1e-6) and against forward
  /// mode along each basis direction (1e-12).
  private func checkGradient(
    _ program: Program, at inputs: [Tensor], file: StaticString = #filePath, line: UInt = #line
  ) {
    let ws = Workspace(program)
    for (index, tensor) in inputs.enumerated() { ws.setInput(index, tensor.scalars) }
    let (value, gradients) = ws.valueWithPullback()
    XCTAssertEqual(value.count, 1, file: file, line: line)
    for (index, tensor) in inputs.enumerated() {
      for element in 0..<tensor.count {
        var direction = [Double](repeating: 0, count: tensor.count)
        direction[element] = 1
        let forward = ws.valueWithDifferential(tangents: [index: direction]).tangent.scalars[0]
        let reverse = gradients[index].scalars[element]
        XCTAssertEqual(
          forward, reverse, accuracy: 1e-12 * max(1, abs(reverse)), "forward vs reverse", file: file, line: line)

        let h = 1e-6 * max(1, abs(tensor.scalars[element]))
        func f(_ delta: Double) -> Double {
          let probe = Workspace(program)
          for (other, t) in inputs.enumerated() {
            var scalars = t.scalars
            if other == index { scalars[element] += delta }
            probe.setInput(other, scalars)
          }
          return probe.evaluate()[0].scalars[0]
        }
        let numeric = (f(h) - f(-h)) / (2 * h)
        XCTAssertEqual(
          reverse, numeric, accuracy: 1e-6 * max(1, abs(numeric)),
          "input \(index) element \(element): reverse \(reverse), central difference \(numeric)", file: file, line: line
        )
      }
    }
  }

  func testUnaryOpsOnScalars() throws {
    for (op, points) in Self.unaryPoints {
      let p = try program(op, shapes: [[]])
      for x in points { checkGradient(p, at: [Tensor(x)]) }
    }
  }

  func testUnaryOpsOnTensors() throws {
    for (op, points) in Self.unaryPoints {
      let p = try program(op, shapes: [[3]])
      checkGradient(p, at: [Tensor(shape: [3], scalars: points)])
    }
  }

  func testBinaryOps() throws {
    let pairs: [(OpCode, Double, Double)] = [
      (.add, 1.5, -0.5), (.sub, 1.5, -0.5), (.mul, 1.5, -0.5), (.div, 1.5, -0.5), (.div, -2.0, 0.3),
      (.pow, 1.5, 2.5), (.pow, 0.7, -1.3),
    ]
    for (op, a, b) in pairs {
      let p = try program(op, shapes: [[], []])
      checkGradient(p, at: [Tensor(a), Tensor(b)])
    }
  }

  func testBinaryOpsOnTensorsAndScalarBroadcast() throws {
    for op in [OpCode.add, .sub, .mul, .div, .pow] {
      let x = Tensor(shape: [2, 2], scalars: [0.5, 1.25, 2.0, 0.75])
      let y = Tensor(shape: [2, 2], scalars: [1.5, -0.5, 0.25, 2.0])
      checkGradient(try program(op, shapes: [[2, 2], [2, 2]]), at: [x, y])
      checkGradient(try program(op, shapes: [[2, 2], []]), at: [x, Tensor(1.75)])
      checkGradient(try program(op, shapes: [[], [2, 2]]), at: [Tensor(1.75), x])
    }
  }

  func testSum() throws {
    checkGradient(try program(.sum, shapes: [[2, 3]]), at: [Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])])
  }

  func testFanOutAccumulates() throws {
    // f(x) = x*x + x: f'(x) = 2x + 1. A reverse pass that overwrites adjoints instead of adding gets 1 or 2x.
    var builder = ProgramBuilder()
    let x = builder.input("x", shape: [])
    let f = try builder.apply(.add, try builder.apply(.mul, x, x), x)
    let program = try builder.build(outputs: [("out", f)])
    let ws = Workspace(program)
    ws.setInput(0, scalar: 3)
    let (value, gradient) = ws.valueWithPullback()
    XCTAssertEqual(value.scalar, 12)
    XCTAssertEqual(gradient[0].scalar, 7)
    checkGradient(program, at: [Tensor(-0.4)])
  }

  func testReuseAcrossReplays() throws {
    var builder = ProgramBuilder()
    let x = builder.input("x", shape: [])
    let f = try builder.apply(.mul, try builder.apply(.sin, x), x)
    let program = try builder.build(outputs: [("out", f)])
    let ws = Workspace(program)
    for x in stride(from: -2.0, through: 2.0, by: 0.5) {
      ws.setInput(0, scalar: x)
      let (value, gradient) = ws.valueWithPullback()
      XCTAssertEqual(value.scalar!, x * Foundation.sin(x), accuracy: 1e-15)
      XCTAssertEqual(gradient[0].scalar!, Foundation.sin(x) + x * Foundation.cos(x), accuracy: 1e-14)
    }
  }

  func testUnusedInputGetsZeroGradient() throws {
    var builder = ProgramBuilder()
    let x = builder.input("x", shape: [])
    _ = builder.input("unused", shape: [2])
    let out = try builder.apply(.exp, x)
    let program = try builder.build(outputs: [("out", out)])
    let ws = Workspace(program)
    ws.setInputs(["x": Tensor(0), "unused": Tensor(shape: [2], scalars: [1, 2])])
    let (_, gradients) = ws.valueWithPullback()
    XCTAssertEqual(gradients[1], Tensor(shape: [2], scalars: [0, 0]))
  }

  func testZeroCotangentContributesExactlyZero() throws {
    // sqrt'(0) is infinite; multiplied by the zero cotangent of an unused branch it must give 0, not NaN.
    var builder = ProgramBuilder()
    let x = builder.input("x", shape: [])
    let zero = builder.constant(0)
    let f = try builder.apply(.add, try builder.apply(.mul, try builder.apply(.sqrt, x), zero), x)
    let program = try builder.build(outputs: [("out", f)])
    let ws = Workspace(program)
    ws.setInput(0, scalar: 0)
    XCTAssertEqual(ws.valueWithPullback().adjoints[0].scalar, 1)
    XCTAssertEqual(ws.valueWithDifferential(tangents: [0: [1]]).tangent.scalar, 1)
  }

  func testConventionsAtSingularPoints() throws {
    var builder = ProgramBuilder()
    let x = builder.input("x", shape: [])
    let y = builder.input("y", shape: [])
    let power = try builder.apply(.pow, x, y)
    let program = try builder.build(outputs: [("out", power)])
    let ws = Workspace(program)
    func grad(_ a: Double, _ b: Double) -> [Double] {
      ws.setInputs(["x": Tensor(a), "y": Tensor(b)])
      return ws.valueWithPullback().adjoints.map { $0.scalars[0] }
    }
    XCTAssertEqual(grad(0, 2), [0, 0])  // d/dy at x = 0 is 0
    XCTAssertTrue(grad(-2, 2)[1].isNaN)  // d/dy for x < 0 is NaN
    XCTAssertEqual(grad(-2, 2)[0], -4)
    XCTAssertEqual(grad(0, 0), [0, 0])  // d/dx of x^0 is 0

    var sqrtBuilder = ProgramBuilder()
    let s = sqrtBuilder.input("x", shape: [])
    let root = try sqrtBuilder.apply(.sqrt, s)
    let sqrtProgram = try sqrtBuilder.build(outputs: [("out", root)])
    let sqrtWorkspace = Workspace(sqrtProgram)
    sqrtWorkspace.setInput(0, scalar: 0)
    XCTAssertEqual(sqrtWorkspace.valueWithPullback().adjoints[0].scalar, .infinity)
  }

  func testShapeMismatchIsAnError() {
    var builder = ProgramBuilder()
    let a = builder.input("a", shape: [2, 3])
    let b = builder.input("b", shape: [3, 2])
    XCTAssertThrowsError(try builder.apply(.add, a, b)) { error in
      XCTAssertEqual((error as? ShapeError)?.message, "add: cannot broadcast shapes [2, 3] and [3, 2]")
    }
  }

  func testListing() throws {
    var builder = ProgramBuilder()
    let x = builder.input("x", shape: [])
    let two = builder.constant(2)
    let out = try builder.apply(.mul, x, two)
    let program = try builder.build(outputs: [("out", out)])
    XCTAssertEqual(program.listing, "%0 = input x []\n%1 = const 2.0 []\n%2 = mul %0 %1 []\noutput out = %2")
  }
}
