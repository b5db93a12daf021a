import RealModule

// The rules of the elementwise ops, side by side: the forward kernel (`value`, on Double) and the derivative
// (`derivative`, `partialA`, `partialB`), written generically so that the same formula serves the reverse rule
// (VJP) on Double, the forward rule (JVP) through `Dual`, and forward-over-reverse (Hessians) on Dual.
//
// Conventions at points where a derivative does not exist follow PyTorch (API.md): relu'(0) = 0, abs'(0) = 0,
// sign' = 0, sqrt'(0) = +Infinity; ties in maximum/minimum share the gradient equally; d(x^y)/dy is x^y·log(x) for
// x > 0, 0 at x = 0 and NaN for x < 0; d(x^y)/dx is 0 when y = 0. Comparisons have no gradient.

/// Forward kernels and derivatives of the unary elementwise ops.
enum UnaryRule {
  /// `op(x)`.
  @inline(__always)
  static func value(_ op: OpCode, _ x: Double) -> Double {
    switch op {
    case .neg: return -x
    case .abs: return x.magnitude
    case .sign: return x > 0 ? 1 : x < 0 ? -1 : x
    case .exp: return Double.exp(x)
    case .log: return Double.log(x)
    case .log1p: return Double.log(onePlus: x)
    case .expm1: return Double.expMinusOne(x)
    case .sqrt: return x.squareRoot()
    case .square: return x * x
    case .sin: return Double.sin(x)
    case .cos: return Double.cos(x)
    case .tan: return Double.tan(x)
    case .asin: return Double.asin(x)
    case .acos: return Double.acos(x)
    case .atan: return Double.atan(x)
    case .sinh: return Double.sinh(x)
    case .cosh: return Double.cosh(x)
    case .tanh: return Tanh.value(x)
    case .sigmoid:
      if x >= 0 { return 1 / (1 + Double.exp(-x)) }
      let e = Double.exp(x)
      return e / (1 + e)
    case .relu: return x > 0 ? x : (x.isNaN ? x : 0)
    case .softplus: return x > 0 ? x + Double.log(onePlus: Double.exp(-x)) : Double.log(onePlus: Double.exp(x))
    case .erf: return Double.erf(x)
    default: preconditionFailure("\(op.name) is not a unary elementwise op")
    }
  }

  /// `op'(x)`, given also `y = op(x)` so that exp, tanh, sqrt and sigmoid reuse their output.
  @inline(__always)
  static func derivative<T: ADScalar>(_ op: OpCode, _ x: T, _ y: T) -> T {
    switch op {
    case .neg: return T(-1)
    case .abs: return T(x.primal > 0 ? 1 : x.primal < 0 ? -1 : 0)
    case .sign: return T(0)
    case .exp: return y
    case .log: return T(1) / x
    case .log1p: return T(1) / (T(1) + x)
    case .expm1: return y + T(1)
    case .sqrt: return T(0.5) / y
    case .square: return T(2) * x
    case .sin: return T.unary(.cos, x)
    case .cos: return -T.unary(.sin, x)
    case .tan: return T(1) + y * y
    case .asin: return T(1) / T.unary(.sqrt, T(1) - x * x)
    case .acos: return -(T(1) / T.unary(.sqrt, T(1) - x * x))
    case .atan: return T(1) / (T(1) + x * x)
    case .sinh: return T.unary(.cosh, x)
    case .cosh: return T.unary(.sinh, x)
    case .tanh: return T(1) - y * y
    case .sigmoid: return y * (T(1) - y)
    case .relu: return T(x.primal > 0 ? 1 : 0)
    case .softplus: return T.unary(.sigmoid, x)
    case .erf: return T(2 / Double.pi.squareRoot()) * T.unary(.exp, -(x * x))
    default: preconditionFailure("\(op.name) is not a unary elementwise op")
    }
  }
}

/// Forward kernels and partial derivatives of the binary elementwise ops.
enum BinaryRule {
  /// `op(a, b)`.
  @inline(__always)
  static func value(_ op: OpCode, _ a: Double, _ b: Double) -> Double {
    switch op {
    case .add: return a + b
    case .sub: return a - b
    case .mul: return a * b
    case .div: return a / b
    case .pow: return power(a, b)
    case .maximum: return a.isNaN || b.isNaN ? .nan : (a >= b ? a : b)
    case .minimum: return a.isNaN || b.isNaN ? .nan : (a <= b ? a : b)
    case .atan2: return Double.atan2(y: a, x: b)
    case .lt: return a < b ? 1 : 0
    case .le: return a <= b ? 1 : 0
    case .gt: return a > b ? 1 : 0
    case .ge: return a >= b ? 1 : 0
    case .eq: return a == b ? 1 : 0
    case .ne: return a != b ? 1 : 0
    default: preconditionFailure("\(op.name) is not a binary elementwise op")
    }
  }

  /// ∂op/∂a at `(a, b)`, given also `y = op(a, b)`.
  @inline(__always)
  static func partialA<T: ADScalar>(_ op: OpCode, _ a: T, _ b: T, _ y: T) -> T {
    switch op {
    case .add, .sub: return T(1)
    case .mul: return b
    case .div: return T(1) / b
    case .pow: return b.primal == 0 ? T(0) : b * T.binary(.pow, a, b - T(1))
    case .maximum: return T(a.primal > b.primal ? 1 : a.primal == b.primal ? 0.5 : 0)
    case .minimum: return T(a.primal < b.primal ? 1 : a.primal == b.primal ? 0.5 : 0)
    case .atan2: return b / (a * a + b * b)
    case .lt, .le, .gt, .ge, .eq, .ne: return T(0)
    default: preconditionFailure("\(op.name) is not a binary elementwise op")
    }
  }

  /// ∂op/∂b at `(a, b)`, given also `y = op(a, b)`.
  @inline(__always)
  static func partialB<T: ADScalar>(_ op: OpCode, _ a: T, _ b: T, _ y: T) -> T {
    switch op {
    case .add: return T(1)
    case .sub: return T(-1)
    case .mul: return a
    case .div: return -(y / b)
    case .pow: return a.primal > 0 ? y * T.unary(.log, a) : T(a.primal == 0 ? 0 : .nan)
    case .maximum: return T(b.primal > a.primal ? 1 : a.primal == b.primal ? 0.5 : 0)
    case .minimum: return T(b.primal < a.primal ? 1 : a.primal == b.primal ? 0.5 : 0)
    case .atan2: return -(a / (a * a + b * b))
    case .lt, .le, .gt, .ge, .eq, .ne: return T(0)
    default: preconditionFailure("\(op.name) is not a binary elementwise op")
    }
  }

  /// `a^b` with C's `pow` semantics: a negative base with an integral exponent is defined.
  @inline(__always)
  static func power(_ a: Double, _ b: Double) -> Double {
    if a >= 0 || a.isNaN { return b == 0 ? 1 : Double.pow(a, b) }
    if b.rounded(.towardZero) == b {
      // |b| >= 2^62 is an even integer; pow(a, b) = pow(|a|, b) then.
      if let n = Int(exactly: b), n.magnitude < (1 << 62) { return Double.pow(a, n) }
      return Double.pow(-a, b)
    }
    return .nan
  }
}
