// The loops of the elementwise families (unary, binary, comparison, where): forward kernels and reverse rules.
// Each loop is generic over the number type and inlined with a constant op, so the rule's `switch` folds away.

extension Executor {
  // MARK: Unary

  @inline(__always)
  static func unaryLoop<T: ADScalar>(
    _ op: OpCode, _ n: Int, _ a: UnsafeMutablePointer<T>, _ out: UnsafeMutablePointer<T>
  ) {
    if T.self == Double.self {
      let (a, out) = (doubles(a), doubles(out))
      // The cheapest ops get loops of their own, free of any dispatch, so that they vectorise.
      switch op {
      case .square: for i in 0..<n { out[i] = a[i] * a[i] }
      case .neg: for i in 0..<n { out[i] = -a[i] }
      case .tanh: Tanh.forward(n, a, out)
      default: for i in 0..<n { out[i] = UnaryRule.value(op, a[i]) }
      }
      return
    }
    for i in 0..<n { out[i] = T.unary(op, a[i]) }
  }

  /// `gx = gy·op'(x)` over doubles for the ops a network's hidden layers use most; false, having written nothing,
  /// for the others. Each term is `0 + gy·op'(x)`, what accumulating into a zeroed adjoint gives (-0 becomes +0).
  @inline(__always)
  static func unaryStore(
    _ op: OpCode, _ n: Int, _ x: UnsafeMutablePointer<Double>, _ y: UnsafeMutablePointer<Double>,
    _ gx: UnsafeMutablePointer<Double>, _ gy: UnsafeMutablePointer<Double>
  ) -> Bool {
    switch op {
    case .neg: for i in 0..<n { gx[i] = 0 - gy[i] }
    case .square: for i in 0..<n { gx[i] = Double.chain(gy[i], 2 * x[i]) }
    case .exp: for i in 0..<n { gx[i] = Double.chain(gy[i], y[i]) }
    case .tanh: for i in 0..<n { gx[i] = Double.chain(gy[i], 1 - y[i] * y[i]) }
    case .sigmoid: for i in 0..<n { gx[i] = Double.chain(gy[i], y[i] * (1 - y[i])) }
    case .relu: for i in 0..<n { gx[i] = Double.chain(gy[i], x[i] > 0 ? 1 : 0) }
    default: return false
    }
    return true
  }

  /// `g[i] += term(i)` for `i` in `0..<n`, or `g[i] = 0 + term(i)` with `store` (what adding to a zero gives).
  @inline(__always)
  static func accumulate(
    _ n: Int, into g: UnsafeMutablePointer<Double>, store: Bool, _ term: (Int) -> Double
  ) {
    if store {
      for i in 0..<n { g[i] = 0 + term(i) }
    } else {
      for i in 0..<n { g[i] += term(i) }
    }
  }

  /// The same memory seen as doubles, once `T` is known to be `Double`: loops over it call the rules directly.
  @inline(__always)
  static func doubles<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Double> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: Double.self)
  }

  @inline(__always)
  static func unaryReverseLoop<T: ADScalar>(
    _ op: OpCode, _ n: Int, _ x: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>,
    _ gx: UnsafeMutablePointer<T>, _ gy: UnsafeMutablePointer<T>
  ) {
    if T.self == Double.self {
      let (x, y, gx, gy) = (doubles(x), doubles(y), doubles(gx), doubles(gy))
      switch op {
      case .square: for i in 0..<n { gx[i] += Double.chain(gy[i], 2 * x[i]) }
      case .exp: for i in 0..<n { gx[i] += Double.chain(gy[i], y[i]) }
      case .tanh: for i in 0..<n { gx[i] += Double.chain(gy[i], 1 - y[i] * y[i]) }
      default: for i in 0..<n { gx[i] += Double.chain(gy[i], UnaryRule.derivative(op, x[i], y[i])) }
      }
      return
    }
    for i in 0..<n where !gy[i].isZero {
      gx[i] += T.chain(gy[i], UnaryRule.derivative(op, x[i], y[i]))
    }
  }

  static func unaryForward<T: ADScalar>(
    _ op: OpCode, _ n: Int, _ a: UnsafeMutablePointer<T>, _ out: UnsafeMutablePointer<T>
  ) {
    switch op {
    case .neg: unaryLoop(.neg, n, a, out)
    case .abs: unaryLoop(.abs, n, a, out)
    case .sign: unaryLoop(.sign, n, a, out)
    case .exp: unaryLoop(.exp, n, a, out)
    case .log: unaryLoop(.log, n, a, out)
    case .log1p: unaryLoop(.log1p, n, a, out)
    case .expm1: unaryLoop(.expm1, n, a, out)
    case .sqrt: unaryLoop(.sqrt, n, a, out)
    case .square: unaryLoop(.square, n, a, out)
    case .sin: unaryLoop(.sin, n, a, out)
    case .cos: unaryLoop(.cos, n, a, out)
    case .tan: unaryLoop(.tan, n, a, out)
    case .asin: unaryLoop(.asin, n, a, out)
    case .acos: unaryLoop(.acos, n, a, out)
    case .atan: unaryLoop(.atan, n, a, out)
    case .sinh: unaryLoop(.sinh, n, a, out)
    case .cosh: unaryLoop(.cosh, n, a, out)
    case .tanh: unaryLoop(.tanh, n, a, out)
    case .sigmoid: unaryLoop(.sigmoid, n, a, out)
    case .relu: unaryLoop(.relu, n, a, out)
    case .softplus: unaryLoop(.softplus, n, a, out)
    case .erf: unaryLoop(.erf, n, a, out)
    default: preconditionFailure("\(op.name) is not unary")
    }
  }

  /// `gx += gy·op'(x)`, or `gx = gy·op'(x)` with `store` (the first write of `gx` in the sweep: see
  /// ``adjointStorers(code:plans:slots:outputs:fusedAway:groups:)``).
  static func unaryReverse<T: ADScalar>(
    _ op: OpCode, _ n: Int, _ x: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>,
    _ gx: UnsafeMutablePointer<T>, _ gy: UnsafeMutablePointer<T>, store: Bool = false
  ) {
    if store {
      if T.self == Double.self, unaryStore(op, n, doubles(x), doubles(y), doubles(gx), doubles(gy)) { return }
      gx.update(repeating: T(0), count: n)  // then accumulate into zeros
    }
    switch op {
    case .neg: for i in 0..<n { gx[i] -= gy[i] }
    case .abs: unaryReverseLoop(.abs, n, x, y, gx, gy)
    case .sign: break
    case .exp: unaryReverseLoop(.exp, n, x, y, gx, gy)
    case .log: unaryReverseLoop(.log, n, x, y, gx, gy)
    case .log1p: unaryReverseLoop(.log1p, n, x, y, gx, gy)
    case .expm1: unaryReverseLoop(.expm1, n, x, y, gx, gy)
    case .sqrt: unaryReverseLoop(.sqrt, n, x, y, gx, gy)
    case .square: unaryReverseLoop(.square, n, x, y, gx, gy)
    case .sin: unaryReverseLoop(.sin, n, x, y, gx, gy)
    case .cos: unaryReverseLoop(.cos, n, x, y, gx, gy)
    case .tan: unaryReverseLoop(.tan, n, x, y, gx, gy)
    case .asin: unaryReverseLoop(.asin, n, x, y, gx, gy)
    case .acos: unaryReverseLoop(.acos, n, x, y, gx, gy)
    case .atan: unaryReverseLoop(.atan, n, x, y, gx, gy)
    case .sinh: unaryReverseLoop(.sinh, n, x, y, gx, gy)
    case .cosh: unaryReverseLoop(.cosh, n, x, y, gx, gy)
    case .tanh: unaryReverseLoop(.tanh, n, x, y, gx, gy)
    case .sigmoid: unaryReverseLoop(.sigmoid, n, x, y, gx, gy)
    case .relu: unaryReverseLoop(.relu, n, x, y, gx, gy)
    case .softplus: unaryReverseLoop(.softplus, n, x, y, gx, gy)
    case .erf: unaryReverseLoop(.erf, n, x, y, gx, gy)
    default: preconditionFailure("\(op.name) is not unary")
    }
  }

  // MARK: Binary and comparisons

  @inline(__always)
  static func binaryLoop<T: ADScalar>(
    _ op: OpCode, _ map: StridedMap?, _ count: Int, _ out: UnsafeMutablePointer<T>, _ a: UnsafeMutablePointer<T>,
    _ b: UnsafeMutablePointer<T>
  ) {
    guard let map else {
      if T.self == Double.self {
        let (out, a, b) = (doubles(out), doubles(a), doubles(b))
        switch op {
        case .add: for i in 0..<count { out[i] = a[i] + b[i] }
        case .sub: for i in 0..<count { out[i] = a[i] - b[i] }
        case .mul: for i in 0..<count { out[i] = a[i] * b[i] }
        case .div: for i in 0..<count { out[i] = a[i] / b[i] }
        default: for i in 0..<count { out[i] = BinaryRule.value(op, a[i], b[i]) }
        }
        return
      }
      for i in 0..<count { out[i] = T.binary(op, a[i], b[i]) }
      return
    }
    if T.self == Double.self {
      let (out, a, b) = (doubles(out), doubles(a), doubles(b))
      map.forEachRow { n, o, x, y, _, so, sx, sy, _ in
        // Rows that are contiguous in every operand (a bias added to each row of a matrix) get a loop that
        // vectorises; one operand constant along the row is hoisted out.
        if so == 1 && sx == 1 && sy == 1 {
          binaryRow(op, n, out + o, a + x, b + y)
        } else if so == 1 && sx == 1 && sy == 0 {
          let right = b[y]
          for i in 0..<n { out[o + i] = BinaryRule.value(op, a[x + i], right) }
        } else if so == 1 && sx == 0 && sy == 1 {
          let left = a[x]
          for i in 0..<n { out[o + i] = BinaryRule.value(op, left, b[y + i]) }
        } else {
          for i in 0..<n { out[o + i * so] = BinaryRule.value(op, a[x + i * sx], b[y + i * sy]) }
        }
      }
      return
    }
    map.forEachRow { n, o, x, y, _, so, sx, sy, _ in
      for i in 0..<n { out[o + i * so] = T.binary(op, a[x + i * sx], b[y + i * sy]) }
    }
  }

  /// `out[i] = op(a[i], b[i])` over one contiguous row, with the cheapest ops free of any dispatch.
  @inline(__always)
  static func binaryRow(
    _ op: OpCode, _ n: Int, _ out: UnsafeMutablePointer<Double>, _ a: UnsafeMutablePointer<Double>,
    _ b: UnsafeMutablePointer<Double>
  ) {
    switch op {
    case .add: for i in 0..<n { out[i] = a[i] + b[i] }
    case .sub: for i in 0..<n { out[i] = a[i] - b[i] }
    case .mul: for i in 0..<n { out[i] = a[i] * b[i] }
    case .div: for i in 0..<n { out[i] = a[i] / b[i] }
    default: for i in 0..<n { out[i] = BinaryRule.value(op, a[i], b[i]) }
    }
  }

  /// The reverse rule of one binary op: `ga += gy·∂op/∂a`, `gb += gy·∂op/∂b`. An operand with `store` set (never
  /// broadcast, so it has `count` elements) is written instead of added to: it is the first write of that adjoint in
  /// the sweep (``adjointStorers(code:plans:slots:outputs:fusedAway:groups:)``).
  @inline(__always)
  static func binaryReverseLoop<T: ADScalar>(
    _ op: OpCode, _ map: StridedMap?, _ count: Int,
    _ values: (out: UnsafeMutablePointer<T>, a: UnsafeMutablePointer<T>, b: UnsafeMutablePointer<T>),
    _ adjoints: (out: UnsafeMutablePointer<T>, a: UnsafeMutablePointer<T>?, b: UnsafeMutablePointer<T>?),
    store: (a: Bool, b: Bool)
  ) {
    let (y, a, b) = values
    let (gy, ga, gb) = adjoints
    @inline(__always) func step(_ o: Int, _ x: Int, _ z: Int) {
      let g = gy[o]
      if g.isZero { return }
      if let ga { ga[x] += T.chain(g, BinaryRule.partialA(op, a[x], b[z], y[o])) }
      if let gb { gb[z] += T.chain(g, BinaryRule.partialB(op, a[x], b[z], y[o])) }
    }
    let rows = T.self == Double.self && (map == nil || op == .add || op == .sub || op == .mul)
    if !rows {
      // The general loops skip zero cotangents: a stored operand is zeroed first and accumulated into.
      if store.a, let ga { ga.update(repeating: T(0), count: count) }
      if store.b, let gb { gb.update(repeating: T(0), count: count) }
      if let map {
        map.forEachRow { n, o, x, z, _, so, sx, sz, _ in
          for i in 0..<n { step(o + i * so, x + i * sx, z + i * sz) }
        }
      } else {
        for i in 0..<count { step(i, i, i) }
      }
      return
    }
    let (yd, ad, bd, gyd) = (doubles(y), doubles(a), doubles(b), doubles(gy))
    let (gad, gbd) = (ga.map(doubles), gb.map(doubles))
    guard let map else {
      // Branch-free loops (a zero term is added as 0), so that they vectorise.
      if let ga = gad {
        switch op {
        case .add, .sub: accumulate(count, into: ga, store: store.a) { gyd[$0] }
        case .mul: accumulate(count, into: ga, store: store.a) { Double.chain(gyd[$0], bd[$0]) }
        default:
          accumulate(count, into: ga, store: store.a) {
            Double.chain(gyd[$0], BinaryRule.partialA(op, ad[$0], bd[$0], yd[$0]))
          }
        }
      }
      if let gb = gbd {
        switch op {
        case .add: accumulate(count, into: gb, store: store.b) { gyd[$0] }
        case .sub: accumulate(count, into: gb, store: store.b) { -gyd[$0] }
        case .mul: accumulate(count, into: gb, store: store.b) { Double.chain(gyd[$0], ad[$0]) }
        default:
          accumulate(count, into: gb, store: store.b) {
            Double.chain(gyd[$0], BinaryRule.partialB(op, ad[$0], bd[$0], yd[$0]))
          }
        }
      }
      return
    }
    // A broadcast add, sub or mul, one row at a time: rows contiguous in every operand (a row bias, whose adjoint
    // sums the rows) and operands constant along the row get branch-free loops.
    map.forEachRow { n, o, x, z, _, so, sx, sz, _ in
      let g = gyd + o
      guard so == 1 && (sx == 1 || sx == 0) && (sz == 1 || sz == 0) else {
        // A stored operand is not broadcast: this row holds its elements for the only time, so zero them here.
        if store.a, let ga = gad { for i in 0..<n { ga[x + i * sx] = 0 } }
        if store.b, let gb = gbd { for i in 0..<n { gb[z + i * sz] = 0 } }
        for i in 0..<n {
          let gi = g[i * so]
          if gi == 0 { continue }
          let (u, v, w) = (ad[x + i * sx], bd[z + i * sz], yd[o + i * so])
          if let ga = gad { ga[x + i * sx] += Double.chain(gi, BinaryRule.partialA(op, u, v, w)) }
          if let gb = gbd { gb[z + i * sz] += Double.chain(gi, BinaryRule.partialB(op, u, v, w)) }
        }
        return
      }
      if let ga = gad {
        if sx == 1 {
          switch op {
          case .add, .sub: accumulate(n, into: ga + x, store: store.a) { g[$0] }
          default:
            if sz == 1 {
              accumulate(n, into: ga + x, store: store.a) { Double.chain(g[$0], bd[z + $0]) }
            } else {
              let right = bd[z]
              accumulate(n, into: ga + x, store: store.a) { Double.chain(g[$0], right) }
            }
          }
        } else {
          var total = 0.0
          switch op {
          case .add, .sub: total = contiguousSum(g, n)
          default:
            if sz == 1 {
              for i in 0..<n { total += Double.chain(g[i], bd[z + i]) }
            } else {
              for i in 0..<n { total += Double.chain(g[i], bd[z]) }
            }
          }
          ga[x] = (store.a ? 0 : ga[x]) + total
        }
      }
      if let gb = gbd {
        if sz == 1 {
          switch op {
          case .add: accumulate(n, into: gb + z, store: store.b) { g[$0] }
          case .sub: accumulate(n, into: gb + z, store: store.b) { -g[$0] }
          default:
            if sx == 1 {
              accumulate(n, into: gb + z, store: store.b) { Double.chain(g[$0], ad[x + $0]) }
            } else {
              let left = ad[x]
              accumulate(n, into: gb + z, store: store.b) { Double.chain(g[$0], left) }
            }
          }
        } else {
          var total = 0.0
          switch op {
          case .add: total = contiguousSum(g, n)
          case .sub: total = -contiguousSum(g, n)
          default:
            if sx == 1 {
              for i in 0..<n { total += Double.chain(g[i], ad[x + i]) }
            } else {
              for i in 0..<n { total += Double.chain(g[i], ad[x]) }
            }
          }
          gb[z] = (store.b ? 0 : gb[z]) + total
        }
      }
    }
  }

  static func binaryForward<T: ADScalar>(
    _ op: OpCode, _ map: StridedMap?, _ count: Int, _ out: UnsafeMutablePointer<T>, _ a: UnsafeMutablePointer<T>,
    _ b: UnsafeMutablePointer<T>
  ) {
    switch op {
    case .add: binaryLoop(.add, map, count, out, a, b)
    case .sub: binaryLoop(.sub, map, count, out, a, b)
    case .mul: binaryLoop(.mul, map, count, out, a, b)
    case .div: binaryLoop(.div, map, count, out, a, b)
    case .pow: binaryLoop(.pow, map, count, out, a, b)
    case .maximum: binaryLoop(.maximum, map, count, out, a, b)
    case .minimum: binaryLoop(.minimum, map, count, out, a, b)
    case .atan2: binaryLoop(.atan2, map, count, out, a, b)
    case .lt: binaryLoop(.lt, map, count, out, a, b)
    case .le: binaryLoop(.le, map, count, out, a, b)
    case .gt: binaryLoop(.gt, map, count, out, a, b)
    case .ge: binaryLoop(.ge, map, count, out, a, b)
    case .eq: binaryLoop(.eq, map, count, out, a, b)
    case .ne: binaryLoop(.ne, map, count, out, a, b)
    default: preconditionFailure("\(op.name) is not binary")
    }
  }

  static func binaryReverse<T: ADScalar>(
    _ op: OpCode, _ map: StridedMap?, _ count: Int,
    _ values: (out: UnsafeMutablePointer<T>, a: UnsafeMutablePointer<T>, b: UnsafeMutablePointer<T>),
    _ adjoints: (out: UnsafeMutablePointer<T>, a: UnsafeMutablePointer<T>?, b: UnsafeMutablePointer<T>?),
    store: (a: Bool, b: Bool) = (false, false)
  ) {
    switch op {
    case .add: binaryReverseLoop(.add, map, count, values, adjoints, store: store)
    case .sub: binaryReverseLoop(.sub, map, count, values, adjoints, store: store)
    case .mul: binaryReverseLoop(.mul, map, count, values, adjoints, store: store)
    case .div: binaryReverseLoop(.div, map, count, values, adjoints, store: store)
    case .pow: binaryReverseLoop(.pow, map, count, values, adjoints, store: store)
    case .maximum: binaryReverseLoop(.maximum, map, count, values, adjoints, store: store)
    case .minimum: binaryReverseLoop(.minimum, map, count, values, adjoints, store: store)
    case .atan2: binaryReverseLoop(.atan2, map, count, values, adjoints, store: store)
    default: break  // comparisons have no gradient
    }
  }

  // MARK: where

  static func selectForward<T: ADScalar>(
    _ map: StridedMap?, _ count: Int, _ out: UnsafeMutablePointer<T>, _ condition: UnsafeMutablePointer<T>,
    _ a: UnsafeMutablePointer<T>, _ b: UnsafeMutablePointer<T>
  ) {
    guard let map else {
      for i in 0..<count { out[i] = condition[i].primal != 0 ? a[i] : b[i] }
      return
    }
    map.forEachRow { n, o, c, x, z, so, sc, sx, sz in
      for i in 0..<n { out[o + i * so] = condition[c + i * sc].primal != 0 ? a[x + i * sx] : b[z + i * sz] }
    }
  }

  static func selectReverse<T: ADScalar>(
    _ map: StridedMap?, _ count: Int, _ gout: UnsafeMutablePointer<T>, _ condition: UnsafeMutablePointer<T>,
    _ ga: UnsafeMutablePointer<T>?, _ gb: UnsafeMutablePointer<T>?
  ) {
    @inline(__always) func step(_ o: Int, _ c: Int, _ x: Int, _ z: Int) {
      if condition[c].primal != 0 {
        ga?[x] += gout[o]
      } else {
        gb?[z] += gout[o]
      }
    }
    guard let map else {
      for i in 0..<count { step(i, i, i, i) }
      return
    }
    map.forEachRow { n, o, c, x, z, so, sc, sx, sz in
      for i in 0..<n { step(o + i * so, c + i * sc, x + i * sx, z + i * sz) }
    }
  }
}
