/// An iteration over an index space with up to four operands, each addressed by an offset plus strides.
///
/// Broadcasting, transposes, slices, `broadcast_to` and reductions are all strided maps: the iteration space is the
/// larger shape, and an operand that is broadcast (or reduced into) has stride 0 along those axes. The reverse rule
/// of a view is the same map run as a scatter-add. Dimensions are collapsed when they are contiguous for every
/// operand, so an elementwise op on equal shapes is one flat loop.
struct StridedMap: Sendable, Equatable {
  /// The number of operands a map addresses.
  static let operands = 4

  /// The iteration extents, outermost first; never empty.
  private(set) var shape: [Int]
  /// `strides[k * rank + d]`: the stride of operand k along dimension d.
  private(set) var strides: [Int]
  /// The element offset of each operand's first element.
  private(set) var offsets: [Int]

  /// The number of iterations.
  var count: Int { shape.reduce(1, *) }
  /// The number of collapsed dimensions.
  var rank: Int { shape.count }

  /// Creates a map over `shape` with the given per-operand strides (missing operands get stride 0), then collapses it.
  init(shape: [Int], strides operandStrides: [[Int]], offsets: [Int] = []) {
    let rank = shape.count
    var flat = [Int](repeating: 0, count: Self.operands * max(rank, 1))
    for (k, s) in operandStrides.enumerated() {
      precondition(s.count == rank, "strides of operand \(k) do not match the iteration rank")
      for d in 0..<rank { flat[k * max(rank, 1) + d] = s[d] }
    }
    self.shape = rank == 0 ? [1] : shape
    self.strides = flat
    self.offsets = (0..<Self.operands).map { $0 < offsets.count ? offsets[$0] : 0 }
    collapse()
  }

  /// Row-major contiguous strides of `shape`.
  static func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 0, count: shape.count)
    var step = 1
    for d in (0..<shape.count).reversed() {
      strides[d] = step
      step *= shape[d]
    }
    return strides
  }

  /// The strides with which an operand of `operandShape` is read when broadcast against `shape` (NumPy's rule:
  /// right-aligned; an axis of extent 1, or a missing axis, has stride 0).
  static func broadcastStrides(_ operandShape: [Int], to shape: [Int]) -> [Int] {
    let own = contiguousStrides(operandShape)
    var strides = [Int](repeating: 0, count: shape.count)
    let lead = shape.count - operandShape.count
    for d in 0..<operandShape.count where operandShape[d] != 1 {
      strides[lead + d] = own[d]
    }
    return strides
  }

  private mutating func collapse() {
    let rank = shape.count
    func stride(_ k: Int, _ d: Int) -> Int { strides[k * rank + d] }
    var keptShape: [Int] = []
    var kept: [[Int]] = Array(repeating: [], count: Self.operands)
    for d in 0..<rank {
      if shape[d] == 1 && rank > 1 { continue }
      if let last = keptShape.last,
        (0..<Self.operands).allSatisfy({ kept[$0].last! == stride($0, d) * shape[d] })
      {
        keptShape[keptShape.count - 1] = last * shape[d]
        for k in 0..<Self.operands { kept[k][kept[k].count - 1] = stride(k, d) }
        continue
      }
      keptShape.append(shape[d])
      for k in 0..<Self.operands { kept[k].append(stride(k, d)) }
    }
    if keptShape.isEmpty {
      keptShape = [1]
      kept = Array(repeating: [0], count: Self.operands)
    }
    shape = keptShape
    strides = kept.flatMap { $0 }
  }

  /// Calls `row` once per innermost row: `row(n, base0, base1, base2, base3, step0, step1, step2, step3)` where
  /// operand k's elements in the row are at `base_k + i * step_k` for `i` in `0..<n`. Allocates nothing.
  @inline(__always)
  func forEachRow(_ row: (Int, Int, Int, Int, Int, Int, Int, Int, Int) -> Void) {
    let rank = shape.count
    let inner = rank - 1
    let n = shape[inner]
    for extent in shape where extent == 0 { return }
    let s0 = strides[inner]
    let s1 = strides[rank + inner]
    let s2 = strides[2 * rank + inner]
    let s3 = strides[3 * rank + inner]
    if rank == 1 {
      row(n, offsets[0], offsets[1], offsets[2], offsets[3], s0, s1, s2, s3)
      return
    }
    withUnsafeTemporaryAllocation(of: Int.self, capacity: rank) { index in
      index.initialize(repeating: 0)
      var b0 = offsets[0]
      var b1 = offsets[1]
      var b2 = offsets[2]
      var b3 = offsets[3]
      while true {
        row(n, b0, b1, b2, b3, s0, s1, s2, s3)
        // Advance the outer index like an odometer, keeping the bases in step.
        var d = inner - 1
        while d >= 0 {
          index[d] += 1
          b0 += strides[d]
          b1 += strides[rank + d]
          b2 += strides[2 * rank + d]
          b3 += strides[3 * rank + d]
          if index[d] < shape[d] { break }
          b0 -= strides[d] * shape[d]
          b1 -= strides[rank + d] * shape[d]
          b2 -= strides[2 * rank + d] * shape[d]
          b3 -= strides[3 * rank + d] * shape[d]
          index[d] = 0
          d -= 1
        }
        if d < 0 { return }
      }
    }
  }
}
