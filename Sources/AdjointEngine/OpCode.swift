/// The primitive operations the engine executes.
///
/// The front ends (the `expr` language and JSON graphs) lower every operation of the wire contract onto these.
/// Each op's forward kernel, reverse rule (VJP) and forward rule (JVP) live side by side in `Ops/`.
public enum OpCode: UInt8, Sendable, CaseIterable {
  // Binary, elementwise.
  case add, sub, mul, div, pow
  // Unary, elementwise.
  case neg, sin, cos, exp, log, tanh, sqrt
  // Reductions.
  case sum

  /// The wire name of the op (`"add"`, `"sin"`, …).
  public var name: String {
    switch self {
    case .add: "add"
    case .sub: "sub"
    case .mul: "mul"
    case .div: "div"
    case .pow: "pow"
    case .neg: "neg"
    case .sin: "sin"
    case .cos: "cos"
    case .exp: "exp"
    case .log: "log"
    case .tanh: "tanh"
    case .sqrt: "sqrt"
    case .sum: "sum"
    }
  }

  /// The number of tensor operands.
  public var arity: Int {
    switch self {
    case .add, .sub, .mul, .div, .pow: 2
    default: 1
    }
  }

  /// The op with the given wire name, if there is one.
  public init?(name: String) {
    guard let op = OpCode.byName[name] else { return nil }
    self = op
  }

  private static let byName: [String: OpCode] = Dictionary(
    uniqueKeysWithValues: OpCode.allCases.map { ($0.name, $0) })
}
