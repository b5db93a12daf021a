// The operators, functions and methods of `Traced`: one per op of `OpCode`, each recording onto the operands' tape
// as it computes. A `Double` may stand on either side of a binary op (micrograd's `__radd__`); it becomes a rank-0
// constant. Shape errors stop the program with the shape rule's message; `Tape.apply(_:_:_:)` is the throwing form.

// MARK: - Arithmetic operators

extension Traced {
  /// Elementwise sum, with broadcasting.
  public static func + (a: Traced, b: Traced) -> Traced { a.tape.binary(.add, a, b) }
  /// Elementwise sum with a constant.
  public static func + (a: Traced, b: Double) -> Traced { a.tape.binary(.add, a, b) }
  /// Elementwise sum with a constant.
  public static func + (a: Double, b: Traced) -> Traced { b.tape.binary(.add, a, b) }

  /// Elementwise difference, with broadcasting.
  public static func - (a: Traced, b: Traced) -> Traced { a.tape.binary(.sub, a, b) }
  /// Elementwise difference with a constant.
  public static func - (a: Traced, b: Double) -> Traced { a.tape.binary(.sub, a, b) }
  /// Elementwise difference from a constant.
  public static func - (a: Double, b: Traced) -> Traced { b.tape.binary(.sub, a, b) }

  /// Elementwise product, with broadcasting.
  public static func * (a: Traced, b: Traced) -> Traced { a.tape.binary(.mul, a, b) }
  /// Elementwise product with a constant.
  public static func * (a: Traced, b: Double) -> Traced { a.tape.binary(.mul, a, b) }
  /// Elementwise product with a constant.
  public static func * (a: Double, b: Traced) -> Traced { b.tape.binary(.mul, a, b) }

  /// Elementwise quotient, with broadcasting.
  public static func / (a: Traced, b: Traced) -> Traced { a.tape.binary(.div, a, b) }
  /// Elementwise quotient by a constant.
  public static func / (a: Traced, b: Double) -> Traced { a.tape.binary(.div, a, b) }
  /// Elementwise quotient of a constant.
  public static func / (a: Double, b: Traced) -> Traced { b.tape.binary(.div, a, b) }

  /// Elementwise power `a^b`, with broadcasting.
  ///
  /// `^` keeps the precedence Swift gives it, that of `+` (left-associative, below `*`): `1 + x ^ 2` means
  /// `(1 + x) ^ 2` and `2 * x ^ 2` means `(2 * x) ^ 2`. Parenthesise, as in `1 + (x ^ 2)`, or use ``pow(_:_:)``.
  public static func ^ (a: Traced, b: Traced) -> Traced { a.tape.binary(.pow, a, b) }
  /// Elementwise power with a constant exponent; `x ^ 2` records `square`. `^` has the precedence of `+`.
  public static func ^ (a: Traced, b: Double) -> Traced { a.tape.binary(.pow, a, b) }
  /// Elementwise power of a constant base. `^` has the precedence of `+`.
  public static func ^ (a: Double, b: Traced) -> Traced { b.tape.binary(.pow, a, b) }

  /// Elementwise negation.
  public static prefix func - (x: Traced) -> Traced { x.tape.unary(.neg, x) }

  /// Replaces `a` by `a + b`.
  public static func += (a: inout Traced, b: Traced) { a = a + b }
  /// Replaces `a` by `a + b`.
  public static func += (a: inout Traced, b: Double) { a = a + b }
  /// Replaces `a` by `a - b`.
  public static func -= (a: inout Traced, b: Traced) { a = a - b }
  /// Replaces `a` by `a - b`.
  public static func -= (a: inout Traced, b: Double) { a = a - b }
  /// Replaces `a` by `a * b`.
  public static func *= (a: inout Traced, b: Traced) { a = a * b }
  /// Replaces `a` by `a * b`.
  public static func *= (a: inout Traced, b: Double) { a = a * b }
  /// Replaces `a` by `a / b`.
  public static func /= (a: inout Traced, b: Traced) { a = a / b }
  /// Replaces `a` by `a / b`.
  public static func /= (a: inout Traced, b: Double) { a = a / b }
}

// MARK: - Unary elementwise functions

/// `|x|`, elementwise; the derivative at 0 is 0.
public func abs(_ x: Traced) -> Traced { x.tape.unary(.abs, x) }
/// The sign of `x` (-1, 0 or 1), elementwise; no gradient.
public func sign(_ x: Traced) -> Traced { x.tape.unary(.sign, x) }
/// `e^x`, elementwise.
///
/// ```swift
/// let y = exp(tape.variable(1.0))   // e
/// ```
public func exp(_ x: Traced) -> Traced { x.tape.unary(.exp, x) }
/// The natural logarithm, elementwise.
public func log(_ x: Traced) -> Traced { x.tape.unary(.log, x) }
/// `log(1 + x)`, elementwise, accurate near 0.
public func log1p(_ x: Traced) -> Traced { x.tape.unary(.log1p, x) }
/// `e^x - 1`, elementwise, accurate near 0.
public func expm1(_ x: Traced) -> Traced { x.tape.unary(.expm1, x) }
/// The square root, elementwise; the derivative at 0 is +infinity.
public func sqrt(_ x: Traced) -> Traced { x.tape.unary(.sqrt, x) }
/// `x·x`, elementwise.
public func square(_ x: Traced) -> Traced { x.tape.unary(.square, x) }
/// The sine, elementwise.
public func sin(_ x: Traced) -> Traced { x.tape.unary(.sin, x) }
/// The cosine, elementwise.
public func cos(_ x: Traced) -> Traced { x.tape.unary(.cos, x) }
/// The tangent, elementwise.
public func tan(_ x: Traced) -> Traced { x.tape.unary(.tan, x) }
/// The arcsine, elementwise.
public func asin(_ x: Traced) -> Traced { x.tape.unary(.asin, x) }
/// The arccosine, elementwise.
public func acos(_ x: Traced) -> Traced { x.tape.unary(.acos, x) }
/// The arctangent, elementwise.
public func atan(_ x: Traced) -> Traced { x.tape.unary(.atan, x) }
/// The hyperbolic sine, elementwise.
public func sinh(_ x: Traced) -> Traced { x.tape.unary(.sinh, x) }
/// The hyperbolic cosine, elementwise.
public func cosh(_ x: Traced) -> Traced { x.tape.unary(.cosh, x) }
/// The hyperbolic tangent, elementwise.
public func tanh(_ x: Traced) -> Traced { x.tape.unary(.tanh, x) }
/// The logistic function `1 / (1 + e^-x)`, elementwise.
public func sigmoid(_ x: Traced) -> Traced { x.tape.unary(.sigmoid, x) }
/// `max(x, 0)`, elementwise; the derivative at 0 is 0.
public func relu(_ x: Traced) -> Traced { x.tape.unary(.relu, x) }
/// `log(1 + e^x)`, elementwise.
public func softplus(_ x: Traced) -> Traced { x.tape.unary(.softplus, x) }
/// The error function, elementwise.
public func erf(_ x: Traced) -> Traced { x.tape.unary(.erf, x) }

// MARK: - Binary elementwise functions

/// `a^b`, elementwise, with broadcasting (the `^` operator, without its precedence pitfall).
///
/// ```swift
/// let y = pow(x, 3)
/// ```
public func pow(_ a: Traced, _ b: Traced) -> Traced { a.tape.binary(.pow, a, b) }
/// `a^b` with a constant exponent.
public func pow(_ a: Traced, _ b: Double) -> Traced { a.tape.binary(.pow, a, b) }
/// `a^b` with a constant base.
public func pow(_ a: Double, _ b: Traced) -> Traced { b.tape.binary(.pow, a, b) }

/// The larger of `a` and `b`, elementwise; ties share the gradient equally.
///
/// ```swift
/// let clipped = maximum(x, 0)
/// ```
public func maximum(_ a: Traced, _ b: Traced) -> Traced { a.tape.binary(.maximum, a, b) }
/// The larger of `a` and a constant, elementwise.
public func maximum(_ a: Traced, _ b: Double) -> Traced { a.tape.binary(.maximum, a, b) }
/// The larger of a constant and `b`, elementwise.
public func maximum(_ a: Double, _ b: Traced) -> Traced { b.tape.binary(.maximum, a, b) }

/// The smaller of `a` and `b`, elementwise; ties share the gradient equally.
public func minimum(_ a: Traced, _ b: Traced) -> Traced { a.tape.binary(.minimum, a, b) }
/// The smaller of `a` and a constant, elementwise.
public func minimum(_ a: Traced, _ b: Double) -> Traced { a.tape.binary(.minimum, a, b) }
/// The smaller of a constant and `b`, elementwise.
public func minimum(_ a: Double, _ b: Traced) -> Traced { b.tape.binary(.minimum, a, b) }

/// The angle of the point `(x, y)`, elementwise: `atan2(y, x)`.
public func atan2(_ y: Traced, _ x: Traced) -> Traced { y.tape.binary(.atan2, y, x) }
/// `atan2(y, x)` with a constant `x`.
public func atan2(_ y: Traced, _ x: Double) -> Traced { y.tape.binary(.atan2, y, x) }
/// `atan2(y, x)` with a constant `y`.
public func atan2(_ y: Double, _ x: Traced) -> Traced { x.tape.binary(.atan2, y, x) }

/// NumPy's `where`: elementwise, `a` where `condition` is nonzero and `b` elsewhere, with broadcasting. The
/// gradient flows to the chosen operand; the condition has none.
///
/// ```swift
/// let y = select(x.gt(0), x, 0.1 * x)   // leaky relu
/// ```
public func select(_ condition: Traced, _ a: Traced, _ b: Traced) -> Traced { condition.tape.select(condition, a, b) }
/// `where` with a constant for the second choice.
public func select(_ condition: Traced, _ a: Traced, _ b: Double) -> Traced {
  condition.tape.select(condition, a, condition.tape.constant(b))
}
/// `where` with a constant for the first choice.
public func select(_ condition: Traced, _ a: Double, _ b: Traced) -> Traced {
  condition.tape.select(condition, condition.tape.constant(a), b)
}

/// Concatenates values along an existing axis.
///
/// ```swift
/// let ab = concat([a, b], axis: 0)
/// ```
///
/// - Precondition: `parts` is not empty, and the shapes agree off `axis`.
public func concat(_ parts: [Traced], axis: Int = 0) -> Traced {
  precondition(!parts.isEmpty, "concat needs at least one operand")
  return parts[0].tape.recordOrTrap(.concat, parts, OpAttributes(axes: [axis]))
}

// MARK: - Comparisons

extension Traced {
  /// `self < other` elementwise, as 1 or 0; no gradient.
  public func lt(_ other: Traced) -> Traced { tape.binary(.lt, self, other) }
  /// `self < other` elementwise, as 1 or 0; no gradient.
  public func lt(_ other: Double) -> Traced { tape.binary(.lt, self, other) }
  /// `self <= other` elementwise, as 1 or 0; no gradient.
  public func le(_ other: Traced) -> Traced { tape.binary(.le, self, other) }
  /// `self <= other` elementwise, as 1 or 0; no gradient.
  public func le(_ other: Double) -> Traced { tape.binary(.le, self, other) }
  /// `self > other` elementwise, as 1 or 0; no gradient.
  ///
  /// ```swift
  /// let positive = x.gt(0)
  /// ```
  public func gt(_ other: Traced) -> Traced { tape.binary(.gt, self, other) }
  /// `self > other` elementwise, as 1 or 0; no gradient.
  public func gt(_ other: Double) -> Traced { tape.binary(.gt, self, other) }
  /// `self >= other` elementwise, as 1 or 0; no gradient.
  public func ge(_ other: Traced) -> Traced { tape.binary(.ge, self, other) }
  /// `self >= other` elementwise, as 1 or 0; no gradient.
  public func ge(_ other: Double) -> Traced { tape.binary(.ge, self, other) }
  /// `self == other` elementwise, as 1 or 0; no gradient.
  public func eq(_ other: Traced) -> Traced { tape.binary(.eq, self, other) }
  /// `self == other` elementwise, as 1 or 0; no gradient.
  public func eq(_ other: Double) -> Traced { tape.binary(.eq, self, other) }
  /// `self != other` elementwise, as 1 or 0; no gradient.
  public func ne(_ other: Traced) -> Traced { tape.binary(.ne, self, other) }
  /// `self != other` elementwise, as 1 or 0; no gradient.
  public func ne(_ other: Double) -> Traced { tape.binary(.ne, self, other) }
}

// MARK: - Reductions and normalisation

extension Traced {
  /// The sum over `axes` (all axes when nil); reduced axes are dropped unless `keepdims`.
  ///
  /// ```swift
  /// let rows = m.sum(axes: [1])   // shape [m.rows]
  /// ```
  public func sum(axes: [Int]? = nil, keepdims: Bool = false) -> Traced { reduce(.sum, axes, keepdims) }

  /// The mean over `axes` (all axes when nil): the sum divided by the number of elements reduced.
  public func mean(axes: [Int]? = nil, keepdims: Bool = false) -> Traced {
    let total = sum(axes: axes, keepdims: keepdims)
    let shape = self.shape
    let reduced = (axes ?? Array(shape.indices)).map { shape[$0 < 0 ? $0 + shape.count : $0] }
    return total / Double(reduced.reduce(1, *))
  }

  /// The largest element over `axes` (all axes when nil); ties share the gradient.
  public func max(axes: [Int]? = nil, keepdims: Bool = false) -> Traced { reduce(.max, axes, keepdims) }

  /// The smallest element over `axes` (all axes when nil); ties share the gradient.
  public func min(axes: [Int]? = nil, keepdims: Bool = false) -> Traced { reduce(.min, axes, keepdims) }

  /// The product over `axes` (all axes when nil).
  public func prod(axes: [Int]? = nil, keepdims: Bool = false) -> Traced { reduce(.prod, axes, keepdims) }

  /// `log(sum(exp(x)))` over `axes` (all axes when nil), computed stably.
  ///
  /// ```swift
  /// let nll = z.logsumexp(axes: [1]) - (z * y).sum(axes: [1])
  /// ```
  public func logsumexp(axes: [Int]? = nil, keepdims: Bool = false) -> Traced { reduce(.logsumexp, axes, keepdims) }

  private func reduce(_ op: OpCode, _ axes: [Int]?, _ keepdims: Bool) -> Traced {
    tape.recordOrTrap(op, [self], OpAttributes(axes: axes, keepdims: keepdims))
  }

  /// The softmax along `axis` (the last by default).
  ///
  /// ```swift
  /// let p = logits.softmax()
  /// ```
  public func softmax(axis: Int = -1) -> Traced { tape.recordOrTrap(.softmax, [self], OpAttributes(axes: [axis])) }

  /// The log of the softmax along `axis` (the last by default), computed stably.
  public func logSoftmax(axis: Int = -1) -> Traced {
    tape.recordOrTrap(.logSoftmax, [self], OpAttributes(axes: [axis]))
  }
}

// MARK: - Linear algebra and shape

extension Traced {
  /// The matrix product, NumPy's `matmul`: vectors are promoted and leading axes broadcast as batches.
  ///
  /// ```swift
  /// let z = x.matmul(w) + b   // x: [n, k], w: [k, m], b: [m]
  /// ```
  public func matmul(_ other: Traced) -> Traced { tape.recordOrTrap(.matmul, [self, other]) }

  /// The axes permuted (reversed when `permutation` is nil).
  public func transpose(_ permutation: [Int]? = nil) -> Traced {
    tape.recordOrTrap(.transpose, [self], OpAttributes(permutation: permutation))
  }

  /// The same elements in another shape; one extent may be -1.
  ///
  /// ```swift
  /// let column = v.reshape([-1, 1])
  /// ```
  public func reshape(_ shape: [Int]) -> Traced { tape.recordOrTrap(.reshape, [self], OpAttributes(shape: shape)) }

  /// The value broadcast to `shape` (NumPy's `broadcast_to`).
  public func broadcast(to shape: [Int]) -> Traced {
    tape.recordOrTrap(.broadcastTo, [self], OpAttributes(shape: shape))
  }

  /// Python's slice `start:stop:step` along `axis`, with its defaults and negative indices.
  ///
  /// ```swift
  /// let tail = x.slice(start: 1)        // x[1:]
  /// let head = x.slice(stop: -1)        // x[:-1]
  /// ```
  public func slice(axis: Int = 0, start: Int? = nil, stop: Int? = nil, step: Int? = nil) -> Traced {
    tape.recordOrTrap(.slice, [self], OpAttributes(axes: [axis], start: start, stop: stop, step: step))
  }

  /// The elements at `indices` along `axis` (NumPy's `take`); indices may repeat and be negative.
  public func take(_ indices: [Int], axis: Int = 0) -> Traced {
    tape.recordOrTrap(.take, [self], OpAttributes(axes: [axis], indices: indices))
  }
}

extension Tape {
  /// Records an op that has no rank-0 shortcut, stopping the program with the shape rule's message if it throws.
  func recordOrTrap(_ op: OpCode, _ operands: [Traced], _ attributes: OpAttributes = OpAttributes()) -> Traced {
    do {
      return try apply(op, operands, attributes)
    } catch {
      preconditionFailure(error.message)
    }
  }
}
