import AdjointEngine

/// The operations of the wire contract: their names, arities, attributes and documentation, shared by the `expr`
/// compiler, the JSON graph decoder and `GET /ops`.
public enum OpCatalog {
  /// One operation of the contract.
  public struct Spec: Sendable {
    /// The wire name.
    public let name: String
    /// The number of tensor arguments, or nil for one or more.
    public let arity: Int?
    /// The attributes (keyword arguments) it accepts.
    public let attributes: [String]
    /// One line for people.
    public let doc: String
    /// The engine op it maps to directly, if any.
    let op: OpCode?
  }

  private static func spec(_ name: String, _ arity: Int?, _ attributes: [String], _ doc: String, _ op: OpCode?) -> Spec
  {
    Spec(name: name, arity: arity, attributes: attributes, doc: doc, op: op)
  }

  /// Every operation, in the order of the contract.
  public static let all: [Spec] = {
    var specs: [Spec] = []
    let binary: [(String, String)] = [
      ("add", "a + b"), ("sub", "a - b"), ("mul", "a * b"), ("div", "a / b"), ("pow", "a ^ b"),
      ("maximum", "elementwise maximum; ties share the gradient"),
      ("minimum", "elementwise minimum; ties share the gradient"),
      ("atan2", "atan2(a, b), the angle of the point (b, a)"),
    ]
    for (name, doc) in binary { specs.append(spec(name, 2, [], doc + " (broadcasting)", OpCode(name: name))) }
    let unary = [
      "neg", "abs", "sign", "exp", "log", "log1p", "expm1", "sqrt", "square", "sin", "cos", "tan", "asin", "acos",
      "atan", "sinh", "cosh", "tanh", "sigmoid", "relu", "softplus", "erf",
    ]
    for name in unary { specs.append(spec(name, 1, [], "elementwise \(name)", OpCode(name: name))) }
    for name in ["sum", "max", "min", "prod", "logsumexp"] {
      specs.append(
        spec(name, 1, ["axis", "keepdims"], "\(name) over axis (int or list; all when absent)", OpCode(name: name)))
    }
    specs.append(spec("mean", 1, ["axis", "keepdims"], "mean over axis (int or list; all when absent)", nil))
    specs += [
      spec("matmul", 2, [], "matrix product (vector, matrix and batched, as NumPy's)", .matmul),
      spec("dot", 2, [], "inner product of two vectors of equal length", nil),
      spec("transpose", 1, ["axes"], "permute axes (default: reversed)", .transpose),
      spec("outer", 2, [], "outer product of two vectors", nil),
      spec("reshape", 1, ["shape"], "reshape; one extent may be -1", .reshape),
      spec("broadcast_to", 1, ["shape"], "broadcast to a shape", .broadcastTo),
      spec("concat", nil, ["axis"], "join along an existing axis (default 0)", .concat),
      spec("stack", nil, ["axis"], "join along a new axis (default 0)", nil),
      spec("slice", 1, ["axis", "start", "stop", "step"], "Python slice along axis (default 0)", .slice),
      spec("index", 1, ["indices", "axis"], "take indices along axis (default 0), as NumPy's take", .take),
      spec("squeeze", 1, ["axis"], "remove axes of extent 1", nil),
      spec("expand_dims", 1, ["axis"], "insert an axis of extent 1", nil),
      spec("softmax", 1, ["axis"], "softmax along axis (default -1)", .softmax),
      spec("log_softmax", 1, ["axis"], "log of softmax along axis (default -1)", .logSoftmax),
      spec("where", 3, [], "where(cond, a, b): a where cond is nonzero, else b", .where),
    ]
    for name in ["lt", "le", "gt", "ge", "eq", "ne"] {
      specs.append(spec(name, 2, [], "comparison, 1 or 0 (no gradient)", OpCode(name: name)))
    }
    specs += [
      spec("stop_gradient", 1, [], "identity whose gradient is zero", .stopGradient),
      spec("const", 0, ["value"], "a constant tensor (attr value)", nil),
    ]
    return specs
  }()

  /// The operations by wire name.
  public static let byName: [String: Spec] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
}
