import RealModule

// The rules of the elementwise ops, side by side: the forward kernel, the first derivative (used by both the reverse
// rule, VJP, and the forward rule, JVP) and, for Hessians, the second derivative.
//
// Conventions at singular points follow PyTorch (see API.md): sqrt'(0) = +Infinity; d(x^y)/dy is x^y·log(x) for x > 0,
// 0 at x = 0 and NaN for x < 0; d(x^y)/dx is 0 when y = 0. Every chain-rule term goes through `chain`, where a zero
// factor gives exactly zero even when the other is infinite or NaN: a zero cotangent (reverse) or a zero partial
// (forward, e.g. the masked branch of `where`) contributes nothing, and both modes agree.

/// One chain-rule term, `g · d`, that is exactly zero when either factor is zero.
@inline(__always)
func chain(_ g: Double, _ d: Double) -> Double {
  g == 0 || d == 0 ? 0 : g * d
}

/// Forward kernels and derivatives of the unary elementwise ops.
enum UnaryRule {
  /// `op(x)`.
  @inline(__always)
  static func value(_ op: OpCode, _ x: Double) -> Double {
    switch op {
    case .neg: -x
    case .sin: Double.sin(x)
    case .cos: Double.cos(x)
    case .exp: Double.exp(x)
    case .log: Double.log(x)
    case .tanh: Double.tanh(x)
    case .sqrt: x.squareRoot()
    default: preconditionFailure("\(op.name) is not a unary elementwise op")
    }
  }

  /// `op'(x)`, given also `y = op(x)` so that exp, tanh and sqrt reuse their output.
  @inline(__always)
  static func derivative(_ op: OpCode, _ x: Double, _ y: Double) -> Double {
    switch op {
    case .neg: -1
    case .sin: Double.cos(x)
    case .cos: -Double.sin(x)
    case .exp: y
    case .log: 1 / x
    case .tanh: 1 - y * y
    case .sqrt: 0.5 / y
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
    case .add: a + b
    case .sub: a - b
    case .mul: a * b
    case .div: a / b
    case .pow: power(a, b)
    default: preconditionFailure("\(op.name) is not a binary elementwise op")
    }
  }

  /// ∂op/∂a at `(a, b)`, given also `y = op(a, b)`.
  @inline(__always)
  static func partialA(_ op: OpCode, _ a: Double, _ b: Double, _ y: Double) -> Double {
    switch op {
    case .add, .sub: 1
    case .mul: b
    case .div: 1 / b
    case .pow: b == 0 ? 0 : b * power(a, b - 1)
    default: preconditionFailure("\(op.name) is not a binary elementwise op")
    }
  }

  /// ∂op/∂b at `(a, b)`, given also `y = op(a, b)`.
  @inline(__always)
  static func partialB(_ op: OpCode, _ a: Double, _ b: Double, _ y: Double) -> Double {
    switch op {
    case .add: 1
    case .sub: -1
    case .mul: a
    case .div: -y / b
    case .pow: a > 0 ? y * Double.log(a) : (a == 0 ? 0 : .nan)
    default: preconditionFailure("\(op.name) is not a binary elementwise op")
    }
  }

  /// `a^b` with C's `pow` semantics: a negative base with an integral exponent is defined.
  @inline(__always)
  static func power(_ a: Double, _ b: Double) -> Double {
    if a >= 0 || a.isNaN { return Double.pow(a, b) }
    if b.rounded(.towardZero) == b {
      // |b| >= 2^62 is an even integer; pow(a, b) = pow(|a|, b) then.
      if let n = Int(exactly: b), n.magnitude < (1 << 62) { return Double.pow(a, n) }
      return Double.pow(-a, b)
    }
    return .nan
  }
}
