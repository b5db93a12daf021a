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
      default: for i in 0..<n { out[i] = UnaryRule.value(op, a[i]) }
      }
      return
    }
    for i in 0..<n { out[i] = T.unary(op, a[i]) }
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

  static func unaryReverse<T: ADScalar>(
    _ op: OpCode, _ n: Int, _ x: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>,
    _ gx: UnsafeMutablePointer<T>, _ gy: UnsafeMutablePointer<T>
  ) {
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
    map.forEachRow { n, o, x, y, _, so, sx, sy, _ in
      for i in 0..<n { out[o + i * so] = T.binary(op, a[x + i * sx], b[y + i * sy]) }
    }
  }

  @inline(__always)
  static func binaryReverseLoop<T: ADScalar>(
    _ op: OpCode, _ map: StridedMap?, _ count: Int,
    _ values: (out: UnsafeMutablePointer<T>, a: UnsafeMutablePointer<T>, b: UnsafeMutablePointer<T>),
    _ adjoints: (out: UnsafeMutablePointer<T>, a: UnsafeMutablePointer<T>?, b: UnsafeMutablePointer<T>?)
  ) {
    let (y, a, b) = values
    let (gy, ga, gb) = adjoints
    @inline(__always) func step(_ o: Int, _ x: Int, _ z: Int) {
      let g = gy[o]
      if g.isZero { return }
      if let ga { ga[x] += T.chain(g, BinaryRule.partialA(op, a[x], b[z], y[o])) }
      if let gb { gb[z] += T.chain(g, BinaryRule.partialB(op, a[x], b[z], y[o])) }
    }
    guard let map else {
      if T.self == Double.self {
        // Branch-free loops (a zero term is added as 0), so that they vectorise.
        let (y, a, b, gy) = (doubles(y), doubles(a), doubles(b), doubles(gy))
        if let ga = ga.map(doubles) {
          switch op {
          case .add, .sub: for i in 0..<count { ga[i] += gy[i] }
          case .mul: for i in 0..<count { ga[i] += Double.chain(gy[i], b[i]) }
          default: for i in 0..<count { ga[i] += Double.chain(gy[i], BinaryRule.partialA(op, a[i], b[i], y[i])) }
          }
        }
        if let gb = gb.map(doubles) {
          switch op {
          case .add: for i in 0..<count { gb[i] += gy[i] }
          case .sub: for i in 0..<count { gb[i] -= gy[i] }
          case .mul: for i in 0..<count { gb[i] += Double.chain(gy[i], a[i]) }
          default: for i in 0..<count { gb[i] += Double.chain(gy[i], BinaryRule.partialB(op, a[i], b[i], y[i])) }
          }
        }
        return
      }
      for i in 0..<count { step(i, i, i) }
      return
    }
    map.forEachRow { n, o, x, z, _, so, sx, sz, _ in
      for i in 0..<n { step(o + i * so, x + i * sx, z + i * sz) }
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
    _ adjoints: (out: UnsafeMutablePointer<T>, a: UnsafeMutablePointer<T>?, b: UnsafeMutablePointer<T>?)
  ) {
    switch op {
    case .add: binaryReverseLoop(.add, map, count, values, adjoints)
    case .sub: binaryReverseLoop(.sub, map, count, values, adjoints)
    case .mul: binaryReverseLoop(.mul, map, count, values, adjoints)
    case .div: binaryReverseLoop(.div, map, count, values, adjoints)
    case .pow: binaryReverseLoop(.pow, map, count, values, adjoints)
    case .maximum: binaryReverseLoop(.maximum, map, count, values, adjoints)
    case .minimum: binaryReverseLoop(.minimum, map, count, values, adjoints)
    case .atan2: binaryReverseLoop(.atan2, map, count, values, adjoints)
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
