import RealModule

// The engine's kernels are generic over the number they compute with. `Double` runs values, gradients and VJPs;
// `Dual` (a value and one tangent) runs the same forward kernels as forward mode (JVP), and the same reverse rules as
// forward-over-reverse (Hessian-vector products). Each rule is written once, so the modes cannot drift apart.

/// A number the kernels compute with: `Double`, or a dual number for forward mode.
public protocol ADScalar: Sendable, Equatable {
  /// The ordinary value (for a dual number, its primal part).
  var primal: Double { get }
  /// A constant: a number whose tangent is zero.
  init(_ constant: Double)
  /// Exactly zero, tangent included.
  var isZero: Bool { get }

  static func + (a: Self, b: Self) -> Self
  static func - (a: Self, b: Self) -> Self
  static func * (a: Self, b: Self) -> Self
  static func / (a: Self, b: Self) -> Self
  static prefix func - (a: Self) -> Self
  static func += (a: inout Self, b: Self)
  static func -= (a: inout Self, b: Self)

  /// One chain-rule term `g · d`, exactly zero where either factor is zero (API.md's zero-cotangent rule).
  static func chain(_ g: Self, _ d: Self) -> Self
  /// A unary elementwise op.
  static func unary(_ op: OpCode, _ x: Self) -> Self
  /// A binary elementwise op.
  static func binary(_ op: OpCode, _ a: Self, _ b: Self) -> Self
}

extension ADScalar {
  /// Zero.
  @inline(__always) public static var zero: Self { Self(0) }
}

extension Double: ADScalar {
  @inline(__always) public var primal: Double { self }
  @inline(__always) public var isZero: Bool { self == 0 }

  @inline(__always)
  public static func chain(_ g: Double, _ d: Double) -> Double {
    // A select rather than a branch, so that loops over arrays vectorise.
    let product = g * d
    return g == 0 || d == 0 ? 0 : product
  }

  @inline(__always)
  public static func unary(_ op: OpCode, _ x: Double) -> Double { UnaryRule.value(op, x) }

  @inline(__always)
  public static func binary(_ op: OpCode, _ a: Double, _ b: Double) -> Double { BinaryRule.value(op, a, b) }
}

/// A dual number `value + tangent·ε` with `ε² = 0`: forward mode along one direction.
///
/// Arithmetic follows the zero rule: a tangent term whose factor is zero contributes exactly zero, so an
/// infinite derivative on a branch with zero tangent does not turn into NaN.
public struct Dual: ADScalar, CustomStringConvertible {
  /// The value.
  public var value: Double
  /// The derivative along the direction being pushed forward.
  public var tangent: Double

  /// Creates a dual number.
  @inline(__always)
  public init(_ value: Double, tangent: Double) {
    self.value = value
    self.tangent = tangent
  }

  @inline(__always) public init(_ constant: Double) { self.init(constant, tangent: 0) }
  @inline(__always) public var primal: Double { value }
  @inline(__always) public var isZero: Bool { value == 0 && tangent == 0 }
  public var description: String { "\(value) + \(tangent)ε" }

  @inline(__always)
  public static func + (a: Dual, b: Dual) -> Dual { Dual(a.value + b.value, tangent: a.tangent + b.tangent) }
  @inline(__always)
  public static func - (a: Dual, b: Dual) -> Dual { Dual(a.value - b.value, tangent: a.tangent - b.tangent) }
  @inline(__always)
  public static prefix func - (a: Dual) -> Dual { Dual(-a.value, tangent: -a.tangent) }
  @inline(__always)
  public static func * (a: Dual, b: Dual) -> Dual {
    Dual(a.value * b.value, tangent: Double.chain(a.tangent, b.value) + Double.chain(a.value, b.tangent))
  }
  @inline(__always)
  public static func / (a: Dual, b: Dual) -> Dual {
    let q = a.value / b.value
    return Dual(q, tangent: Double.chain(a.tangent, 1 / b.value) - Double.chain(b.tangent, q / b.value))
  }
  @inline(__always) public static func += (a: inout Dual, b: Dual) { a = a + b }
  @inline(__always) public static func -= (a: inout Dual, b: Dual) { a = a - b }

  @inline(__always)
  public static func chain(_ g: Dual, _ d: Dual) -> Dual {
    Dual(
      Double.chain(g.value, d.value),
      tangent: Double.chain(g.tangent, d.value) + Double.chain(g.value, d.tangent))
  }

  @inline(__always)
  public static func unary(_ op: OpCode, _ x: Dual) -> Dual {
    let y = UnaryRule.value(op, x.value)
    if x.tangent == 0 { return Dual(y) }
    return Dual(y, tangent: Double.chain(x.tangent, UnaryRule.derivative(op, x.value, y)))
  }

  @inline(__always)
  public static func binary(_ op: OpCode, _ a: Dual, _ b: Dual) -> Dual {
    let y = BinaryRule.value(op, a.value, b.value)
    var t = 0.0
    if a.tangent != 0 { t += Double.chain(a.tangent, BinaryRule.partialA(op, a.value, b.value, y)) }
    if b.tangent != 0 { t += Double.chain(b.tangent, BinaryRule.partialB(op, a.value, b.value, y)) }
    return Dual(y, tangent: t)
  }
}
