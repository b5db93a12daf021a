import AdjointEngine
import AdjointExpressions
import Foundation
import XCTest

// The shared machinery of the engine's test ladder: a seeded generator and input domains, plain-Double reference
// implementations of the ops (written with loops over multi-indices, independently of the engine's strided maps),
// and the assertions of the ladder. Every assertion forwards `file:line`, so a failure points at the test case.

/// The inputs of a function, by name.
typealias Inputs = [String: Tensor]

// MARK: - Seeded random numbers

/// SplitMix64: a small deterministic generator, so that every run draws the same "random" cases.
struct SeededGenerator: RandomNumberGenerator {
  private var state: UInt64

  init(seed: UInt64) { state = seed }

  /// A generator seeded by the FNV-1a hash of a label (`String.hashValue` changes from run to run).
  init(_ label: String) {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in label.utf8 {
      hash ^= UInt64(byte)
      hash &*= 0x100_0000_01b3
    }
    state = hash
  }

  mutating func next() -> UInt64 {
    state &+= 0x9e37_79b9_7f4a_7c15
    var z = state
    z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
    z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
    return z ^ (z >> 31)
  }

  mutating func uniform(_ range: ClosedRange<Double>) -> Double { Double.random(in: range, using: &self) }
}

/// Where an input's elements are drawn from: inside an op's domain and away from its kinks.
struct Domain {
  let sample: (inout SeededGenerator, [Int]) -> Tensor

  /// Uniform in `range`.
  static func uniform(_ range: ClosedRange<Double>) -> Domain {
    Domain { rng, shape in
      Tensor(shape: shape, scalars: (0..<Tensor.elementCount(shape)).map { _ in rng.uniform(range) })
    }
  }

  /// A magnitude uniform in `magnitude` with a random sign: away from 0, the kink of abs, relu and sign.
  static func signed(_ magnitude: ClosedRange<Double>) -> Domain {
    Domain { rng, shape in
      Tensor(
        shape: shape,
        scalars: (0..<Tensor.elementCount(shape)).map { _ in
          rng.uniform(magnitude) * (Bool.random(using: &rng) ? 1 : -1)
        })
    }
  }

  /// Pairwise distinct elements in `range`, neighbours at least half a grid step apart (no ties for max and min).
  static func distinct(_ range: ClosedRange<Double>) -> Domain {
    Domain { rng, shape in
      let count = Tensor.elementCount(shape)
      let step = (range.upperBound - range.lowerBound) / Double(max(count, 1))
      var scalars = (0..<count).map { range.lowerBound + step * (Double($0) + rng.uniform(0...0.5)) }
      scalars.shuffle(using: &rng)
      return Tensor(shape: shape, scalars: scalars)
    }
  }

  /// Multiples of 0.5 in [-2, 2] plus `offset` plus a jitter below 0.1: two lattices with offsets 0 and 0.25 never
  /// come closer than 0.15, so `maximum` and `minimum` of any broadcast pair are away from ties.
  static func lattice(offset: Double) -> Domain {
    Domain { rng, shape in
      Tensor(
        shape: shape,
        scalars: (0..<Tensor.elementCount(shape)).map { _ in
          0.5 * Double(Int.random(in: -4...4, using: &rng)) + offset + rng.uniform(0...0.1)
        })
    }
  }

  /// Small integers, so that comparisons meet ties.
  static func integers(_ range: ClosedRange<Int>) -> Domain {
    Domain { rng, shape in
      Tensor(
        shape: shape,
        scalars: (0..<Tensor.elementCount(shape)).map { _ in Double(Int.random(in: range, using: &rng)) })
    }
  }
}

// MARK: - Reference implementations (plain Double loops)

extension Tensor {
  /// Row-major strides of `shape`.
  static func strides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var step = 1
    for d in shape.indices.reversed() {
      strides[d] = step
      step *= shape[d]
    }
    return strides
  }

  /// The multi-index of flat position `flat` in `shape`.
  static func multiIndex(_ flat: Int, _ shape: [Int]) -> [Int] {
    var index = [Int](repeating: 0, count: shape.count)
    var rest = flat
    for d in shape.indices.reversed() where shape[d] > 0 {
      index[d] = rest % shape[d]
      rest /= shape[d]
    }
    return index
  }

  /// The tensor of `shape` whose element at each multi-index is `element(index)`.
  static func build(_ shape: [Int], _ element: ([Int]) -> Double) -> Tensor {
    Tensor(shape: shape, scalars: (0..<elementCount(shape)).map { element(multiIndex($0, shape)) })
  }

  /// The element at a multi-index.
  subscript(index: [Int]) -> Double {
    scalars[zip(index, Tensor.strides(shape)).reduce(0) { $0 + $1.0 * $1.1 }]
  }

  /// The tensor with `transform` applied to every element.
  func map(_ transform: (Double) -> Double) -> Tensor { Tensor(shape: shape, scalars: scalars.map(transform)) }

  /// The same elements in another shape.
  func reshaped(_ shape: [Int]) -> Tensor { Tensor(shape: shape, scalars: scalars) }
}

/// NumPy's broadcast of several shapes, written from the rule: right-aligned, extents equal or 1.
func broadcastShape(_ shapes: [[Int]]) -> [Int] {
  let rank = shapes.map(\.count).max() ?? 0
  return (0..<rank).map { d in
    shapes.map { shape in d < rank - shape.count ? 1 : shape[d - (rank - shape.count)] }.max() ?? 1
  }
}

/// The element of `t` that a broadcast reads at the output multi-index `index`.
func broadcastRead(_ t: Tensor, _ index: [Int]) -> Double {
  let lead = index.count - t.rank
  return t[(0..<t.rank).map { t.shape[$0] == 1 ? 0 : index[lead + $0] }]
}

/// An elementwise op over broadcast operands.
func elementwise(_ operands: [Tensor], _ f: ([Double]) -> Double) -> Tensor {
  Tensor.build(broadcastShape(operands.map(\.shape))) { index in f(operands.map { broadcastRead($0, index) }) }
}

/// A reduction over `axes` (nil: all; negative counted from the end): `combine` gets each group's elements in
/// row-major order.
func reduceReference(_ x: Tensor, axes: [Int]?, keepdims: Bool = false, _ combine: ([Double]) -> Double) -> Tensor {
  let reduced = Set((axes ?? Array(x.shape.indices)).map { $0 < 0 ? $0 + x.rank : $0 })
  let kept = x.shape.indices.map { reduced.contains($0) ? 1 : x.shape[$0] }
  var groups = [[Double]](repeating: [], count: Tensor.elementCount(kept))
  for flat in 0..<x.count {
    let index = Tensor.multiIndex(flat, x.shape)
    let group = x.shape.indices.map { reduced.contains($0) ? 0 : index[$0] }
    groups[zip(group, Tensor.strides(kept)).reduce(0) { $0 + $1.0 * $1.1 }].append(x.scalars[flat])
  }
  let values = groups.map(combine)
  let shape = keepdims ? kept : x.shape.indices.filter { !reduced.contains($0) }.map { x.shape[$0] }
  return Tensor(shape: shape, scalars: values)
}

/// Applies `f` to every line of `x` along `axis` (for softmax and log_softmax).
func alongAxis(_ x: Tensor, axis rawAxis: Int, _ f: ([Double]) -> [Double]) -> Tensor {
  let axis = rawAxis < 0 ? rawAxis + x.rank : rawAxis
  var out = x.scalars
  let strides = Tensor.strides(x.shape)
  for flat in 0..<x.count where Tensor.multiIndex(flat, x.shape)[axis] == 0 {
    let positions = (0..<x.shape[axis]).map { flat + $0 * strides[axis] }
    for (position, value) in zip(positions, f(positions.map { x.scalars[$0] })) { out[position] = value }
  }
  return Tensor(shape: x.shape, scalars: out)
}

/// NumPy's matmul: vectors are promoted and their axis dropped again; batch axes broadcast.
func matmulReference(_ a: Tensor, _ b: Tensor) -> Tensor {
  let am = a.rank == 1 ? a.reshaped([1, a.shape[0]]) : a
  let bm = b.rank == 1 ? b.reshaped([b.shape[0], 1]) : b
  let (m, k, n) = (am.shape[am.rank - 2], am.shape[am.rank - 1], bm.shape[bm.rank - 1])
  let batch = broadcastShape([Array(am.shape.dropLast(2)), Array(bm.shape.dropLast(2))])
  var shape = batch
  if a.rank > 1 { shape.append(m) }
  if b.rank > 1 { shape.append(n) }
  let full = Tensor.build(batch + [m, n]) { index in
    let prefix = Array(index.dropLast(2))
    let (i, j) = (index[index.count - 2], index[index.count - 1])
    var total = 0.0
    for l in 0..<k {
      total += broadcastRead(am, prefix + [i, l]) * broadcastRead(bm, prefix + [l, j])
    }
    return total
  }
  return full.reshaped(shape)
}

/// `out[i0, …] = x[i_perm[0], …]`: NumPy's transpose.
func transposeReference(_ x: Tensor, _ permutation: [Int]) -> Tensor {
  Tensor.build(permutation.map { x.shape[$0] }) { index in
    var source = [Int](repeating: 0, count: x.rank)
    for (d, p) in permutation.enumerated() { source[p] = index[d] }
    return x[source]
  }
}

/// The elements at the given positions along `axis` (NumPy's take; also a slice, given its positions).
func takeReference(_ x: Tensor, axis rawAxis: Int, _ positions: [Int]) -> Tensor {
  let axis = rawAxis < 0 ? rawAxis + x.rank : rawAxis
  var shape = x.shape
  shape[axis] = positions.count
  return Tensor.build(shape) { index in
    var source = index
    source[axis] = positions[index[axis]]
    return x[source]
  }
}

/// Concatenation along `axis`.
func concatReference(_ parts: [Tensor], axis rawAxis: Int) -> Tensor {
  let axis = rawAxis < 0 ? rawAxis + parts[0].rank : rawAxis
  var shape = parts[0].shape
  shape[axis] = parts.map { $0.shape[axis] }.reduce(0, +)
  return Tensor.build(shape) { index in
    var source = index
    for part in parts {
      if source[axis] < part.shape[axis] { return part[source] }
      source[axis] -= part.shape[axis]
    }
    preconditionFailure("index past the end of the concatenation")
  }
}

// MARK: - Compiling and running

/// Compiles `expr` for the shapes of `inputs` (extra names in `inputs` are ignored).
func compile(_ expr: String, _ inputs: Inputs) throws -> Program {
  try GraphCompiler.compile(try ExprParser.parse(expr), inputShapes: inputs.mapValues(\.shape))
}

/// A workspace for `program` with its inputs written from `inputs`.
func workspace(_ program: Program, _ inputs: Inputs) -> Workspace {
  let ws = Workspace(program)
  for (index, binding) in program.inputs.enumerated() {
    guard let tensor = inputs[binding.name] else { preconditionFailure("no value for \(binding.name)") }
    ws.setInput(index, tensor.scalars)
  }
  return ws
}

/// The value of the (only) output of `expr` at `inputs`.
func evaluate(_ expr: String, _ inputs: Inputs) throws -> Tensor {
  workspace(try compile(expr, inputs), inputs).evaluate()[0]
}

/// `expr` with its last statement (its output) passed through `outer`: `composed("u = x; u * 2", { "sum(\($0))" })`
/// is `"u = x; sum(u * 2)"`.
func composed(_ expr: String, _ outer: (String) -> String) -> String {
  guard let split = expr.lastIndex(of: ";") else { return outer(expr) }
  return String(expr[...split]) + " " + outer(String(expr[expr.index(after: split)...]))
}

/// The indices of the named inputs of `program`.
func inputIndices(_ program: Program, _ names: [String]) throws -> [Int] {
  try names.map { name in try XCTUnwrap(program.inputIndex(named: name), "no input \(name)") }
}

/// A Richardson-extrapolated central difference of `f` at `x`: (4·D(h/2) − D(h)) / 3 with D the central difference
/// over `[x - h, x + h]` and `h = 1e-3·max(1, |x|)`. The truncation error is O(h⁴), the rounding error about
/// 1e-13·|f|, so the result is good to about 1e-9 where `f` is smooth on `[x - h, x + h]`.
func richardsonDerivative(at x: Double, _ f: (Double) -> Double) -> Double {
  richardsonDerivatives(at: x) { [f($0)] }[0]
}

/// ``richardsonDerivative(at:_:)`` of every component of a vector-valued `f`.
func richardsonDerivatives(at x: Double, _ f: (Double) -> [Double]) -> [Double] {
  let h = 1e-3 * max(1, abs(x))
  func central(_ h: Double) -> [Double] {
    let (up, down) = (x + h, x - h)
    return zip(f(up), f(down)).map { ($0 - $1) / (up - down) }
  }
  let (coarse, fine) = (central(h), central(h / 2))
  return zip(fine, coarse).map { (4 * $0 - $1) / 3 }
}

// MARK: - Assertions

/// True when `actual` is within `relative·max(1, |expected|)` of `expected`, or both are the same non-finite value.
func isClose(_ actual: Double, _ expected: Double, relative: Double) -> Bool {
  if actual.isNaN || expected.isNaN { return actual.isNaN && expected.isNaN }
  if actual == expected { return true }
  return abs(actual - expected) <= relative * max(1, abs(expected))
}

/// Asserts equal shapes and elements within `relative·max(1, |expected|)` (NaN matches NaN, ±∞ match exactly).
func assertClose(
  _ actual: Tensor, _ expected: Tensor, relative: Double, _ message: @autoclosure () -> String = "",
  file: StaticString = #filePath, line: UInt = #line
) {
  guard actual.shape == expected.shape else {
    XCTFail("\(message()): shape \(actual.shape), expected \(expected.shape)", file: file, line: line)
    return
  }
  for i in 0..<actual.count where !isClose(actual.scalars[i], expected.scalars[i], relative: relative) {
    XCTFail(
      "\(message()): element \(i) (at \(Tensor.multiIndex(i, actual.shape))) is \(actual.scalars[i]), expected "
        + "\(expected.scalars[i]) (relative tolerance \(relative))", file: file, line: line)
    return
  }
}

/// Asserts that every element is exactly zero (either sign): no NaN, no rounding.
func assertExactlyZero(
  _ tensor: Tensor, _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
  XCTAssertTrue(
    tensor.scalars.allSatisfy { $0 == 0 }, "\(message()): \(tensor) is not all zero", file: file, line: line)
}

/// Asserts that `expr`'s forward value at `inputs` equals a reference computed in plain Double arithmetic.
func assertValues(
  _ expr: String, at inputs: Inputs, equal expected: Tensor, relative: Double = 1e-14,
  file: StaticString = #filePath, line: UInt = #line
) throws {
  assertClose(try evaluate(expr, inputs), expected, relative: relative, "value of \(expr)", file: file, line: line)
}

/// The relative tolerances of the ladder.
enum Tolerance {
  /// Reverse gradient against finite differences.
  static let finiteDifference = 1e-6
  /// Reverse mode against forward mode (the same rules, summed in another order).
  static let modes = 1e-12
  /// Hessians against finite differences of the gradient.
  static let hessian = 1e-6
}

/// The derivative ladder for one function `expr` at one point.
///
/// 1. The Jacobian of `expr` in forward mode (one JVP per input element) equals the one in reverse mode (one VJP per
///    output element), each block of shape `out.shape + x.shape`, and the VJP seeded with a weight tensor `W` equals
///    `Wᵀ·J`.
/// 2. For the scalar loss `sum(expr * W)` (just `expr * W` when `expr` is rank 0, which runs the scalar executor):
///    its value is `Σ expr·W`; its reverse gradient equals that VJP, a Richardson central difference (relative
///    `Tolerance.finiteDifference`) and forward mode along each basis direction (relative `Tolerance.modes`).
/// 3. With `hessian`, the Hessian of `sum(sin(expr) * W)` (forward over reverse; nonzero even for linear ops) is
///    symmetric and equals a Richardson difference of the reverse gradient (relative `Tolerance.hessian`).
///
/// - Parameters:
///   - wrt: the inputs to differentiate with respect to (default: all); the others are held fixed.
func assertDerivatives(
  _ expr: String, at inputs: Inputs, wrt names: [String]? = nil, hessian: Bool = true,
  file: StaticString = #filePath, line: UInt = #line
) throws {
  var rng = SeededGenerator(expr)
  let program = try compile(expr, inputs)
  let wrtNames = names ?? program.inputs.map(\.name)
  let wrt = try inputIndices(program, wrtNames)
  let ws = workspace(program, inputs)
  let value = ws.evaluate()[0]
  let weight = Domain.signed(0.25...1.5).sample(&rng, value.shape)

  // 1. Jacobians in both modes, and the VJP.
  let forwardJacobian = ws.jacobian(wrt: wrt, mode: .forward)
  let reverseJacobian = ws.jacobian(wrt: wrt, mode: .reverse)
  assertClose(
    forwardJacobian.value, value, relative: 0, "\(expr): value beside the forward Jacobian", file: file, line: line)
  assertClose(
    reverseJacobian.value, value, relative: 0, "\(expr): value beside the reverse Jacobian", file: file, line: line)
  let vjp = ws.valueWithPullback(seed: weight.scalars, wrt: wrt).adjoints
  for (k, index) in wrt.enumerated() {
    let name = wrtNames[k]
    let shape = program.slots[program.inputs[index].slot].shape
    XCTAssertEqual(forwardJacobian.blocks[k].shape, value.shape + shape, "\(expr): d/d\(name)", file: file, line: line)
    assertClose(
      forwardJacobian.blocks[k], reverseJacobian.blocks[k], relative: Tolerance.modes,
      "\(expr): d/d\(name), forward-mode Jacobian against reverse-mode", file: file, line: line)
    // Wᵀ·J, to a tolerance scaled by Σ|W·J| (the sum may cancel).
    let columns = Tensor.elementCount(shape)
    for j in 0..<columns {
      var total = 0.0
      var scale = 0.0
      for i in 0..<value.count {
        total += weight.scalars[i] * reverseJacobian.blocks[k].scalars[i * columns + j]
        scale += abs(weight.scalars[i] * reverseJacobian.blocks[k].scalars[i * columns + j])
      }
      XCTAssertEqual(
        vjp[index].scalars[j], total, accuracy: Tolerance.modes * max(1, scale),
        "\(expr): VJP d/d\(name)[\(j)] against the Jacobian", file: file, line: line)
    }
  }

  // 2. The weighted scalar loss.
  let weightName = "weight_"
  var lossInputs = inputs
  lossInputs[weightName] = weight
  let lossExpr = composed(expr) { value.shape.isEmpty ? "(\($0)) * \(weightName)" : "sum((\($0)) * \(weightName))" }
  let loss = try compile(lossExpr, lossInputs)
  let lossWrt = try inputIndices(loss, wrtNames)
  let lws = workspace(loss, lossInputs)
  let (lossValue, gradient) = lws.valueWithPullback(wrt: lossWrt)
  let expectedLoss = zip(value.scalars, weight.scalars).map(*).reduce(0, +)
  let lossScale = zip(value.scalars, weight.scalars).map { abs($0 * $1) }.reduce(0, +)
  XCTAssertEqual(
    lossValue.scalars[0], expectedLoss, accuracy: 1e-13 * max(1, lossScale), "\(lossExpr): value", file: file,
    line: line)
  for (k, index) in lossWrt.enumerated() {
    let name = wrtNames[k]
    let x = try XCTUnwrap(inputs[name])
    assertClose(
      gradient[index], vjp[wrt[k]], relative: Tolerance.modes, "\(lossExpr): gradient d/d\(name) against the VJP",
      file: file, line: line)
    for j in 0..<x.count {
      var probe = x.scalars
      let numeric = richardsonDerivative(at: x.scalars[j]) { t in
        probe[j] = t
        lws.setInput(index, probe)
        return lws.evaluate()[0].scalars[0]
      }
      lws.setInput(index, x.scalars)
      let reverse = gradient[index].scalars[j]
      XCTAssertTrue(
        isClose(reverse, numeric, relative: Tolerance.finiteDifference),
        "\(lossExpr): d/d\(name)[\(j)] is \(reverse), finite differences \(numeric)", file: file, line: line)
      var direction = [Double](repeating: 0, count: x.count)
      direction[j] = 1
      let tangent = lws.valueWithDifferential(tangents: [index: direction]).tangent.scalars[0]
      XCTAssertTrue(
        isClose(tangent, reverse, relative: Tolerance.modes),
        "\(lossExpr): d/d\(name)[\(j)] is \(reverse) in reverse mode, \(tangent) in forward mode", file: file,
        line: line)
    }
  }

  // 3. Second derivatives.
  if hessian {
    let curved = composed(expr) {
      value.shape.isEmpty ? "sin(\($0)) * \(weightName)" : "sum(sin(\($0)) * \(weightName))"
    }
    try assertHessianMatchesDifferences(curved, at: lossInputs, wrt: wrtNames, file: file, line: line)
  }
}

/// Asserts that the Hessian of the scalar `expr` (forward over reverse) is symmetric and equals Richardson central
/// differences of its reverse gradient, block by block.
func assertHessianMatchesDifferences(
  _ expr: String, at inputs: Inputs, wrt names: [String], relative: Double = Tolerance.hessian,
  file: StaticString = #filePath, line: UInt = #line
) throws {
  let program = try compile(expr, inputs)
  let wrt = try inputIndices(program, names)
  let ws = workspace(program, inputs)
  let (_, _, blocks) = ws.hessian(wrt: wrt)
  let probe = workspace(program, inputs)
  for (column, index) in wrt.enumerated() {
    let x = try XCTUnwrap(inputs[names[column]])
    for j in 0..<x.count {
      var scalars = x.scalars
      // Column j of every block: the derivative of the whole gradient along x[j], flattened block after block.
      let numeric = richardsonDerivatives(at: x.scalars[j]) { t in
        scalars[j] = t
        probe.setInput(index, scalars)
        let adjoints = probe.valueWithPullback(wrt: wrt).adjoints
        return wrt.flatMap { adjoints[$0].scalars }
      }
      probe.setInput(index, x.scalars)
      var offset = 0
      for (row, rowIndex) in wrt.enumerated() {
        let rowCount = program.slots[program.inputs[rowIndex].slot].count
        for i in 0..<rowCount {
          let analytic = blocks[row][column].scalars[i * x.count + j]
          XCTAssertTrue(
            isClose(analytic, numeric[offset + i], relative: relative),
            "\(expr): H[\(names[row])[\(i)], \(names[column])[\(j)]] is \(analytic), differences of the gradient "
              + "\(numeric[offset + i])", file: file, line: line)
          let mirrored = blocks[column][row].scalars[j * rowCount + i]
          XCTAssertTrue(
            isClose(analytic, mirrored, relative: 1e-12),
            "\(expr): the Hessian is not symmetric: \(analytic) and \(mirrored)", file: file, line: line)
        }
        offset += rowCount
      }
    }
  }
}

/// Asserts that `expr` has an exactly zero derivative with respect to `wrt` in every mode: the reverse gradient of
/// `sum(expr * W)`, its forward-mode tangents and its Hessian; and that its value matches `expected`.
func assertNoGradient(
  _ expr: String, at inputs: Inputs, wrt names: [String], expected: Tensor? = nil,
  file: StaticString = #filePath, line: UInt = #line
) throws {
  var rng = SeededGenerator(expr)
  let value = try evaluate(expr, inputs)
  if let expected { assertClose(value, expected, relative: 0, "value of \(expr)", file: file, line: line) }
  var lossInputs = inputs
  lossInputs["weight_"] = Domain.signed(0.25...1.5).sample(&rng, value.shape)
  let loss = try compile(composed(expr) { "sum((\($0)) * weight_)" }, lossInputs)
  let wrt = try inputIndices(loss, names)
  let ws = workspace(loss, lossInputs)
  let (_, gradient) = ws.valueWithPullback(wrt: wrt)
  for (k, index) in wrt.enumerated() {
    assertExactlyZero(gradient[index], "\(expr): reverse d/d\(names[k])", file: file, line: line)
    let count = gradient[index].count
    let tangent = ws.valueWithDifferential(tangents: [index: [Double](repeating: 1, count: count)]).tangent
    assertExactlyZero(tangent, "\(expr): forward d/d\(names[k])", file: file, line: line)
  }
  for row in ws.hessian(wrt: wrt).blocks {
    for block in row { assertExactlyZero(block, "\(expr): Hessian", file: file, line: line) }
  }
}

/// The ladder along one random direction, for inputs too large for element-by-element checks: for the scalar
/// `expr`, the reverse gradient dotted with a direction `v` equals a Richardson difference along `v` and the
/// forward-mode JVP along `v`, and the Hessian-vector product along `v` equals a Richardson difference of the
/// gradient along `v`.
func assertDirectionalDerivatives(
  _ expr: String, at inputs: Inputs, file: StaticString = #filePath, line: UInt = #line
) throws {
  var rng = SeededGenerator("direction " + expr)
  let program = try compile(expr, inputs)
  let names = program.inputs.map(\.name)
  let points = try names.map { name in try XCTUnwrap(inputs[name]) }
  let directions = points.map { Domain.uniform(-1...1).sample(&rng, $0.shape) }
  let ws = workspace(program, inputs)
  let (_, gradient) = ws.valueWithPullback()
  let along = zip(gradient, directions).map { zip($0.scalars, $1.scalars).map(*).reduce(0, +) }.reduce(0, +)
  let scale = zip(gradient, directions).map { zip($0.scalars, $1.scalars).map { abs($0 * $1) }.reduce(0, +) }
    .reduce(0, +)
  let probe = workspace(program, inputs)
  func move(_ t: Double) {
    for (index, (point, direction)) in zip(points, directions).enumerated() {
      probe.setInput(index, zip(point.scalars, direction.scalars).map { $0 + t * $1 })
    }
  }
  let numeric = richardsonDerivative(at: 0) { t in
    move(t)
    return probe.evaluate()[0].scalars[0]
  }
  XCTAssertEqual(
    along, numeric, accuracy: Tolerance.finiteDifference * max(1, scale),
    "\(expr): the gradient along a direction against finite differences", file: file, line: line)
  let tangents = Dictionary(uniqueKeysWithValues: directions.enumerated().map { ($0.offset, $0.element.scalars) })
  let jvp = ws.valueWithDifferential(tangents: tangents).tangent.scalars[0]
  XCTAssertEqual(
    jvp, along, accuracy: Tolerance.modes * max(1, scale), "\(expr): forward mode against reverse mode",
    file: file, line: line)
  let product = ws.hessianVectorProduct(direction: tangents).product.flatMap(\.scalars)
  let differences = richardsonDerivatives(at: 0) { t in
    move(t)
    return probe.valueWithPullback().adjoints.flatMap(\.scalars)
  }
  for (i, (analytic, numeric)) in zip(product, differences).enumerated() {
    XCTAssertTrue(
      isClose(analytic, numeric, relative: Tolerance.hessian),
      "\(expr): (H·v)[\(i)] is \(analytic), differences of the gradient \(numeric)", file: file, line: line)
  }
}
