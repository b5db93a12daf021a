/// The primitive operations the engine executes.
///
/// The front ends lower every operation of the wire contract onto these (`mean` to `sum` and `div`, `dot` and
/// `outer` to `matmul` and `mul`, `stack`, `squeeze` and `expand_dims` to `reshape` and `concat`).
/// Each op's forward kernel and reverse rule live side by side in `Ops/`; forward mode runs the forward kernels on
/// dual numbers, whose derivatives are the same rules.
public enum OpCode: UInt8, Sendable, CaseIterable {
  // Binary, elementwise, broadcasting.
  case add, sub, mul, div, pow, maximum, minimum, atan2
  // Comparisons: 1 or 0, no gradient.
  case lt, le, gt, ge, eq, ne
  // Unary, elementwise.
  case neg, abs, sign, exp, log, log1p, expm1, sqrt, square, sin, cos, tan, asin, acos, atan
  case sinh, cosh, tanh, sigmoid, relu, softplus, erf
  // `where(cond, a, b)`: a where cond is nonzero, else b; broadcasting.
  case `where`
  // Reductions over `axes` (all when none), with `keepdims`.
  case sum, max, min, prod, logsumexp
  // Along one axis.
  case softmax, logSoftmax
  // Linear algebra.
  case matmul, transpose
  // Shape.
  case reshape, broadcastTo, concat, slice, take
  // Identity forward, zero backward.
  case stopGradient

  /// The op's name (the wire name where there is one).
  public var name: String {
    switch self {
    case .logSoftmax: "log_softmax"
    case .broadcastTo: "broadcast_to"
    case .take: "index"
    case .stopGradient: "stop_gradient"
    case .where: "where"
    default: "\(self)"
    }
  }

  /// The family the op belongs to, which decides its kernels and its shape rule.
  public var family: Family {
    switch self {
    case .add, .sub, .mul, .div, .pow, .maximum, .minimum, .atan2: .binary
    case .lt, .le, .gt, .ge, .eq, .ne: .comparison
    case .neg, .abs, .sign, .exp, .log, .log1p, .expm1, .sqrt, .square, .sin, .cos, .tan, .asin, .acos, .atan,
      .sinh, .cosh, .tanh, .sigmoid, .relu, .softplus, .erf:
      .unary
    case .where: .select
    case .sum, .max, .min, .prod, .logsumexp: .reduction
    case .softmax, .logSoftmax: .normalization
    case .matmul: .matmul
    case .transpose, .broadcastTo, .slice: .view
    case .reshape, .stopGradient: .copy
    case .concat: .concat
    case .take: .take
    }
  }

  /// The families of ops.
  public enum Family: Sendable {
    case unary, binary, comparison, select, reduction, normalization, matmul, view, copy, concat, take
  }

  /// The number of tensor operands, or nil for a variable number (`concat`).
  public var arity: Int? {
    switch family {
    case .binary, .comparison, .matmul: 2
    case .select: 3
    case .concat: nil
    default: 1
    }
  }

  /// True when the op is elementwise: each output element depends on the operands' elements at the same
  /// (broadcast) index only.
  public var isElementwise: Bool {
    switch family {
    case .unary, .binary, .comparison, .select: true
    default: false
    }
  }

  /// The op with the given name, if there is one.
  public init?(name: String) {
    guard let op = OpCode.byName[name] else { return nil }
    self = op
  }

  private static let byName: [String: OpCode] = Dictionary(
    uniqueKeysWithValues: OpCode.allCases.map { ($0.name, $0) })
}

/// The static parameters of an op: axes, shapes, slice bounds, indices.
public struct OpAttributes: Sendable, Equatable {
  /// The axes of a reduction (nil: all), or the one axis of softmax, concat, slice and take; may be negative.
  public var axes: [Int]?
  /// Whether a reduction keeps the reduced axes with extent 1.
  public var keepdims: Bool
  /// The target shape of reshape (one entry may be -1) and broadcast_to.
  public var shape: [Int]?
  /// The permutation of transpose (nil: reversed).
  public var permutation: [Int]?
  /// Slice bounds, with Python's defaults and negative indices.
  public var start: Int?
  /// Slice bounds, with Python's defaults and negative indices.
  public var stop: Int?
  /// Slice step (default 1; must not be 0).
  public var step: Int?
  /// The indices of take (NumPy's `take`); may be negative.
  public var indices: [Int]?

  /// Creates attributes; every field defaults to absent.
  public init(
    axes: [Int]? = nil, keepdims: Bool = false, shape: [Int]? = nil, permutation: [Int]? = nil, start: Int? = nil,
    stop: Int? = nil, step: Int? = nil, indices: [Int]? = nil
  ) {
    self.axes = axes
    self.keepdims = keepdims
    self.shape = shape
    self.permutation = permutation
    self.start = start
    self.stop = stop
    self.step = step
    self.indices = indices
  }
}
