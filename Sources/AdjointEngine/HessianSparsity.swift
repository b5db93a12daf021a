// Sparse Hessians. The Hessian's sparsity pattern is found once per program by propagating, element by element, the
// set of inputs each value depends on, and recording which pairs of inputs meet in a nonlinear op (Walther's
// nonlinear interaction domains). Columns that share no row of the pattern get one colour (distance-2 colouring),
// so one Hessian-vector product per colour recovers every nonzero directly: a tridiagonal Hessian takes three
// products whatever its size. Programs with ops the analysis does not cover use the dense path.

/// The pattern and colouring of a program's Hessian with respect to some inputs.
struct HessianColoring: Sendable {
  /// The number of colours (Hessian-vector products needed).
  let colors: Int
  /// The colour of each column (input element, over the inputs concatenated).
  let colorOf: [Int]
  /// For each row, the columns where the Hessian may be nonzero.
  let pattern: [[Int]]

  /// Finds the pattern and colouring, or nil when the program has an op the analysis does not cover or the pattern
  /// is dense enough that colouring cannot help.
  static func analyze(_ program: Program, wrt inputs: [Int]) -> HessianColoring? {
    var base: [Int: Int] = [:]  // input slot → its first column
    var columns = 0
    for index in inputs {
      base[program.inputs[index].slot] = columns
      columns += program.slots[program.inputs[index].slot].count
    }
    guard columns > 1 else { return nil }
    // Per element of every slot: the sorted columns it depends on.
    var depends = program.slots.map { [[Int]](repeating: [], count: $0.count) }
    for (slot, first) in base {
      for i in 0..<program.slots[slot].count { depends[slot][i] = [first + i] }
    }
    var interactions = [Set<Int>](repeating: [], count: columns)
    // Past this many recorded pairs (64 per column on average) the pattern is too dense for colouring to pay for
    // its own analysis, which grows with the pairs: give up early and let the dense path run.
    let budget = 64 * columns + 4096
    var pairs = 0
    func interact(_ a: [Int], _ b: [Int]) {
      pairs += a.count * b.count
      guard pairs <= budget else { return }
      for i in a {
        for j in b {
          interactions[i].insert(j)
          interactions[j].insert(i)
        }
      }
    }
    func union(_ a: [Int], _ b: [Int]) -> [Int] { Array(Set(a).union(b)).sorted() }
    for instruction in program.code {
      let out = Int(instruction.out)
      let count = program.slots[out].count
      let plan = program.plans[Int(instruction.plan)]
      let (a, b, c) = (Int(instruction.a), Int(instruction.b), Int(instruction.c))
      /// Visits (output element, operand elements) for elementwise ops, with or without broadcasting.
      func elementwise(_ body: (Int, Int, Int, Int) -> Void) {
        if let map = plan.map {
          map.forEachRow { n, o, x, y, z, so, sx, sy, sz in
            for k in 0..<n { body(o + k * so, x + k * sx, y + k * sy, z + k * sz) }
          }
        } else {
          for i in 0..<count { body(i, i, i, i) }
        }
      }
      switch instruction.op.family {
      case .unary:
        let linear = instruction.op == .neg || instruction.op == .abs || instruction.op == .relu
        elementwise { o, x, _, _ in
          depends[out][o] = instruction.op == .sign ? [] : depends[a][x]
          if !linear { interact(depends[a][x], depends[a][x]) }
        }
      case .binary:
        elementwise { o, x, y, _ in
          let (left, right) = (depends[a][x], depends[b][y])
          depends[out][o] = union(left, right)
          switch instruction.op {
          case .add, .sub, .maximum, .minimum: break
          case .mul: interact(left, right)
          case .div:
            interact(left, right)
            interact(right, right)
          default:
            let both = union(left, right)
            interact(both, both)
          }
        }
      case .comparison:
        for i in 0..<count { depends[out][i] = [] }
      case .select:
        elementwise { o, _, x, y in depends[out][o] = union(depends[b][x], depends[c][y]) }
      case .view:
        guard let map = plan.map else { return nil }
        map.forEachRow { n, o, x, _, _, so, sx, _, _ in
          for k in 0..<n { depends[out][o + k * so] = depends[a][x + k * sx] }
        }
      case .copy:
        depends[out] = instruction.op == .stopGradient ? depends[out] : depends[a]
      case .reduction where instruction.op == .sum:
        guard case .reduce(let map, _) = plan else { return nil }
        var sets = [Set<Int>](repeating: [], count: count)
        map.forEachRow { n, x, o, _, _, sx, so, _, _ in
          for k in 0..<n { sets[o + k * so].formUnion(depends[a][x + k * sx]) }
        }
        depends[out] = sets.map { $0.sorted() }
      default:
        return nil
      }
      if pairs > budget { return nil }
    }
    let pattern = interactions.map { $0.sorted() }
    // Greedy distance-2 colouring: a column may not share a colour with any column it meets in some row.
    var colorOf = [Int](repeating: -1, count: columns)
    var colors = 0
    for column in 0..<columns {
      var taken = Set<Int>()
      for row in pattern[column] {
        for other in pattern[row] where colorOf[other] >= 0 && other != column { taken.insert(colorOf[other]) }
      }
      var color = 0
      while taken.contains(color) { color += 1 }
      colorOf[column] = color
      colors = Swift.max(colors, color + 1)
    }
    guard colors < columns else { return nil }
    return HessianColoring(colors: colors, colorOf: colorOf, pattern: pattern)
  }
}
