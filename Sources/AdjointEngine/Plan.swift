/// What an instruction needs, precomputed when the program is built, so that a replay only runs loops.
enum Plan: Sendable, Equatable {
  /// Nothing: unary ops, equal-shape binary ops and copies run one flat loop.
  case none
  /// Elementwise with broadcasting, or a view: a map whose operand 0 is the output and 1, 2, 3 the inputs.
  case map(StridedMap)
  /// A reduction: a map over the input (operand 0) whose operand 1 is the output with stride 0 on reduced axes.
  case reduce(StridedMap, outputCount: Int)
  /// Softmax along an axis: a map over the input whose operand 1 addresses a reduced scratch buffer.
  case normalize(StridedMap, reducedCount: Int)
  /// A (batched) matrix product.
  case matmul(MatmulPlan)
  /// Concatenation: where each operand's blocks go.
  case concat([ConcatPart])
  /// `take` along an axis.
  case take(TakePlan)
}

/// A batched matrix product `out[b] = a[b] · b[b]` of row-major M×K and K×N matrices.
struct MatmulPlan: Sendable, Equatable {
  var m: Int
  var k: Int
  var n: Int
  /// Iterates the broadcast batch: operand 0 is the output's matrix offset, 1 is a's, 2 is b's.
  var batch: StridedMap
}

/// One operand of a concatenation: `outer` blocks of `width` elements, placed `offset` into each output block of
/// `outputWidth` elements.
struct ConcatPart: Sendable, Equatable {
  /// The operand's slot; set by the builder.
  var slot: Int = -1
  var outer: Int
  var width: Int
  var outputWidth: Int
  var offset: Int
}

/// `out[o, j, i] = in[o, indices[j], i]`.
struct TakePlan: Sendable, Equatable {
  var outer: Int
  var axisExtent: Int
  var inner: Int
  var indices: [Int]
}

/// The shape rule of every op: the output shape and the plan of an op applied to operands of given shapes.
public enum ShapeRules {
  /// The shape of `op` applied to operands of the given shapes.
  ///
  /// - Throws: ``ShapeError`` when the operands or attributes do not fit the op.
  public static func resultShape(_ op: OpCode, _ shapes: [[Int]], _ attributes: OpAttributes = OpAttributes())
    throws(ShapeError) -> [Int]
  {
    try infer(op, shapes, attributes).shape
  }

  /// The largest product of extents (zero extents counted as 1) a shape may have: strides and offsets computed from
  /// it then never overflow.
  public static let maxAddressable = 1 << 50

  /// Whether every extent is non-negative and the extents' product (zeros counted as 1) is at most
  /// ``maxAddressable``. Shapes from requests are checked with this before they reach a builder.
  public static func isAddressable(_ shape: [Int]) -> Bool {
    var product = 1
    for extent in shape {
      guard extent >= 0 else { return false }
      let (next, overflow) = product.multipliedReportingOverflow(by: Swift.max(extent, 1))
      guard !overflow, next <= maxAddressable else { return false }
      product = next
    }
    return true
  }

  /// NumPy's broadcast of two shapes.
  public static func broadcast(_ a: [Int], _ b: [Int]) -> [Int]? {
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for d in 0..<rank {
      let x = d < rank - a.count ? 1 : a[d - (rank - a.count)]
      let y = d < rank - b.count ? 1 : b[d - (rank - b.count)]
      guard x == y || x == 1 || y == 1 else { return nil }
      out[d] = x == 1 ? y : x
    }
    return out
  }

  /// Normalises possibly negative axes against `rank`; rejects duplicates and axes out of range.
  static func normalizeAxes(_ axes: [Int], rank: Int, op: OpCode) throws(ShapeError) -> [Int] {
    var result: [Int] = []
    for axis in axes {
      let a = axis < 0 ? axis + rank : axis
      guard a >= 0 && a < rank else {
        throw ShapeError("\(op.name): axis \(axis) is out of range for a tensor of rank \(rank)")
      }
      guard !result.contains(a) else { throw ShapeError("\(op.name): axis \(axis) is repeated") }
      result.append(a)
    }
    return result
  }

  // swiftlint:disable:next cyclomatic_complexity function_body_length
  static func infer(_ op: OpCode, _ shapes: [[Int]], _ attributes: OpAttributes) throws(ShapeError) -> (
    shape: [Int], plan: Plan, scratch: Int
  ) {
    if let arity = op.arity, shapes.count != arity {
      throw ShapeError("\(op.name) takes \(arity) operand\(arity == 1 ? "" : "s"), not \(shapes.count)")
    }
    switch op.family {
    case .unary:
      return (shapes[0], .none, 0)
    case .copy where op == .stopGradient:
      return (shapes[0], .none, 0)
    case .binary, .comparison, .select:
      var shape = shapes[0]
      for other in shapes.dropFirst() {
        guard let joined = broadcast(shape, other) else {
          throw ShapeError(
            "\(op.name): cannot broadcast shapes \(shapes.map { "\($0)" }.joined(separator: " and "))")
        }
        shape = joined
      }
      if shapes.allSatisfy({ $0 == shape }) { return (shape, .none, 0) }
      let strides = [StridedMap.contiguousStrides(shape)] + shapes.map { StridedMap.broadcastStrides($0, to: shape) }
      return (shape, .map(StridedMap(shape: shape, strides: strides)), 0)
    case .copy:  // reshape
      return (try reshaped(shapes[0], attributes.shape, op: op), .none, 0)
    case .reduction:
      let input = shapes[0]
      let axes = try normalizeAxes(attributes.axes ?? Array(input.indices), rank: input.count, op: op)
      var kept = input
      for a in axes { kept[a] = 1 }
      let keptStrides = StridedMap.contiguousStrides(kept)
      let outStrides = input.indices.map { axes.contains($0) ? 0 : keptStrides[$0] }
      let map = StridedMap(shape: input, strides: [StridedMap.contiguousStrides(input), outStrides])
      let shape = attributes.keepdims ? kept : input.indices.filter { !axes.contains($0) }.map { input[$0] }
      let outputCount = Tensor.elementCount(kept)
      let scratch = op == .prod ? 2 * outputCount : (op == .sum ? 0 : outputCount)
      if op != .sum && op != .prod && Tensor.elementCount(input) == 0 && outputCount > 0 {
        throw ShapeError("\(op.name): cannot reduce an empty axis")
      }
      return (shape, .reduce(map, outputCount: outputCount), scratch)
    case .normalization:
      let input = shapes[0]
      guard !input.isEmpty else { throw ShapeError("\(op.name) needs a tensor of rank 1 or more") }
      let axes = try normalizeAxes(attributes.axes ?? [-1], rank: input.count, op: op)
      guard axes.count == 1 else { throw ShapeError("\(op.name) takes one axis") }
      var kept = input
      kept[axes[0]] = 1
      let keptStrides = StridedMap.contiguousStrides(kept)
      let reducedStrides = input.indices.map { $0 == axes[0] ? 0 : keptStrides[$0] }
      let map = StridedMap(shape: input, strides: [StridedMap.contiguousStrides(input), reducedStrides])
      let reducedCount = Tensor.elementCount(kept)
      return (input, .normalize(map, reducedCount: reducedCount), 2 * reducedCount)
    case .matmul:
      return try matmul(shapes[0], shapes[1])
    case .view:
      return try view(op, shapes[0], attributes)
    case .concat:
      guard (attributes.axes?.count ?? 1) == 1 else { throw ShapeError("concat takes one axis") }
      return try concat(shapes, axis: attributes.axes?.first ?? 0)
    case .take:
      let input = shapes[0]
      guard !input.isEmpty else { throw ShapeError("index needs a tensor of rank 1 or more") }
      let axis = try normalizeAxes(attributes.axes ?? [0], rank: input.count, op: op)
      guard axis.count == 1 else { throw ShapeError("index takes one axis") }
      let extent = input[axis[0]]
      var indices: [Int] = []
      for index in attributes.indices ?? [] {
        let i = index < 0 ? index + extent : index
        guard i >= 0 && i < extent else {
          throw ShapeError("index: index \(index) is out of range for an axis of extent \(extent)")
        }
        indices.append(i)
      }
      var shape = input
      shape[axis[0]] = indices.count
      let plan = TakePlan(
        outer: input[..<axis[0]].reduce(1, *), axisExtent: extent, inner: input[(axis[0] + 1)...].reduce(1, *),
        indices: indices)
      return (shape, .take(plan), 0)
    }
  }

  private static func reshaped(_ input: [Int], _ target: [Int]?, op: OpCode) throws(ShapeError) -> [Int] {
    guard var shape = target else { throw ShapeError("\(op.name) needs a shape") }
    guard isAddressable(shape.map { Swift.max($0, 1) }) else {
      throw ShapeError("\(op.name): shape \(shape) is too large", isLimit: true)
    }
    let count = Tensor.elementCount(input)
    let unknown = shape.indices.filter { shape[$0] == -1 }
    guard unknown.count <= 1, shape.allSatisfy({ $0 >= -1 }) else {
      throw ShapeError("\(op.name): shape \(shape) may hold one -1 and no other negative extent")
    }
    if let u = unknown.first {
      let known = shape.enumerated().filter { $0.offset != u }.reduce(1) { $0 * $1.element }
      guard known > 0, count % known == 0 else {
        throw ShapeError("\(op.name): cannot reshape \(input) (\(count) elements) to \(target!)")
      }
      shape[u] = count / known
    }
    guard Tensor.elementCount(shape) == count else {
      throw ShapeError("\(op.name): cannot reshape \(input) (\(count) elements) to \(target!)")
    }
    return shape
  }

  private static func matmul(_ a: [Int], _ b: [Int]) throws(ShapeError) -> (shape: [Int], plan: Plan, scratch: Int) {
    guard !a.isEmpty, !b.isEmpty else { throw ShapeError("matmul: operands must have rank 1 or more, not 0") }
    let am = a.count == 1 ? [1, a[0]] : a
    let bm = b.count == 1 ? [b[0], 1] : b
    let (m, k) = (am[am.count - 2], am[am.count - 1])
    let (k2, n) = (bm[bm.count - 2], bm[bm.count - 1])
    guard k == k2 else { throw ShapeError("matmul: shapes \(a) and \(b) do not align (\(k) ≠ \(k2))") }
    let batchA = Array(am.dropLast(2))
    let batchB = Array(bm.dropLast(2))
    guard let batch = broadcast(batchA, batchB) else {
      throw ShapeError("matmul: cannot broadcast the batch dimensions of \(a) and \(b)")
    }
    var shape = batch
    if a.count > 1 { shape.append(m) }
    if b.count > 1 { shape.append(n) }
    let scale = { (strides: [Int], size: Int) in strides.map { $0 * size } }
    let map = StridedMap(
      shape: batch,
      strides: [
        scale(StridedMap.contiguousStrides(batch), m * n), scale(StridedMap.broadcastStrides(batchA, to: batch), m * k),
        scale(StridedMap.broadcastStrides(batchB, to: batch), k * n),
      ])
    return (shape, .matmul(MatmulPlan(m: m, k: k, n: n, batch: map)), 0)
  }

  private static func view(_ op: OpCode, _ input: [Int], _ attributes: OpAttributes) throws(ShapeError) -> (
    shape: [Int], plan: Plan, scratch: Int
  ) {
    let own = StridedMap.contiguousStrides(input)
    switch op {
    case .transpose:
      let permutation = try normalizeAxes(
        attributes.permutation ?? Array(input.indices.reversed()), rank: input.count, op: op)
      guard permutation.count == input.count else {
        throw ShapeError("transpose: axes \(permutation) are not a permutation of \(input.count) axes")
      }
      let shape = permutation.map { input[$0] }
      let map = StridedMap(
        shape: shape, strides: [StridedMap.contiguousStrides(shape), permutation.map { own[$0] }])
      return (shape, .map(map), 0)
    case .broadcastTo:
      if let shape = attributes.shape, !isAddressable(shape) {
        throw ShapeError(
          "broadcast_to: shape \(shape) is too large or has a negative extent", isLimit: shape.allSatisfy { $0 >= 0 })
      }
      guard let shape = attributes.shape, shape.allSatisfy({ $0 >= 0 }),
        broadcast(input, shape) == shape
      else {
        throw ShapeError("broadcast_to: cannot broadcast \(input) to \(attributes.shape ?? [])")
      }
      let map = StridedMap(
        shape: shape, strides: [StridedMap.contiguousStrides(shape), StridedMap.broadcastStrides(input, to: shape)])
      return (shape, .map(map), 0)
    default:  // slice
      guard !input.isEmpty else { throw ShapeError("slice needs a tensor of rank 1 or more") }
      guard (attributes.axes?.count ?? 1) == 1 else { throw ShapeError("slice takes one axis") }
      let axis = try normalizeAxes(attributes.axes ?? [0], rank: input.count, op: op)[0]
      let step = attributes.step ?? 1
      guard step != 0 else { throw ShapeError("slice: step must not be 0") }
      guard step.magnitude <= UInt(maxAddressable) else { throw ShapeError("slice: step \(step) is out of range") }
      let (start, count) = sliceBounds(extent: input[axis], start: attributes.start, stop: attributes.stop, step: step)
      var shape = input
      shape[axis] = count
      var strides = own
      strides[axis] = own[axis] * step
      let map = StridedMap(
        shape: shape, strides: [StridedMap.contiguousStrides(shape), strides], offsets: [0, start * own[axis]])
      return (shape, .map(map), 0)
    }
  }

  /// Python's slice semantics: the first index and the number of elements of `start:stop:step` over `extent`.
  static func sliceBounds(extent: Int, start: Int?, stop: Int?, step: Int) -> (start: Int, count: Int) {
    func clamp(_ index: Int?, _ defaultValue: Int, low: Int, high: Int) -> Int {
      guard var i = index else { return defaultValue }
      if i < 0 { i += extent }
      return Swift.min(Swift.max(i, low), high)
    }
    if step > 0 {
      let first = clamp(start, 0, low: 0, high: extent)
      let last = clamp(stop, extent, low: 0, high: extent)
      return (first, last > first ? (last - first + step - 1) / step : 0)
    }
    let first = clamp(start, extent - 1, low: -1, high: extent - 1)
    let last = clamp(stop, -1, low: -1, high: extent - 1)
    return (Swift.max(first, 0), first > last ? (first - last - step - 1) / -step : 0)
  }

  private static func concat(_ shapes: [[Int]], axis rawAxis: Int) throws(ShapeError) -> (
    shape: [Int], plan: Plan, scratch: Int
  ) {
    guard let first = shapes.first else { throw ShapeError("concat needs at least one operand") }
    guard !first.isEmpty else { throw ShapeError("concat: operands must have rank 1 or more, not 0") }
    let axis = try normalizeAxes([rawAxis], rank: first.count, op: .concat)[0]
    var total = 0
    for shape in shapes {
      guard shape.count == first.count,
        shape.indices.allSatisfy({ $0 == axis || shape[$0] == first[$0] })
      else {
        throw ShapeError("concat: shapes \(shapes.map { "\($0)" }.joined(separator: ", ")) differ off axis \(rawAxis)")
      }
      total += shape[axis]
    }
    let inner = first[(axis + 1)...].reduce(1, *)
    let outer = first[..<axis].reduce(1, *)
    var parts: [ConcatPart] = []
    var offset = 0
    for shape in shapes {
      parts.append(ConcatPart(outer: outer, width: shape[axis] * inner, outputWidth: total * inner, offset: offset))
      offset += shape[axis] * inner
    }
    var shape = first
    shape[axis] = total
    return (shape, .concat(parts), 0)
  }
}
