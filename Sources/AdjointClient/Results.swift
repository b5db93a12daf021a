import AdjointJSON

/// Tensors keyed by name, in the order the service listed them (inputs in the function's order).
public struct NamedTensors: Sendable, Equatable, RandomAccessCollection, CustomStringConvertible {
  /// The names and tensors, in order.
  public let elements: [(name: String, tensor: Tensor)]

  /// Creates a collection from pairs.
  public init(_ elements: [(name: String, tensor: Tensor)]) { self.elements = elements }

  /// The tensor called `name`, else `nil`.
  public subscript(name: String) -> Tensor? { elements.first { $0.name == name }?.tensor }

  /// The names, in order.
  public var names: [String] { elements.map(\.name) }

  /// The first index.
  public var startIndex: Int { 0 }
  /// One past the last index.
  public var endIndex: Int { elements.count }
  /// The pair at `position`.
  public subscript(position: Int) -> (name: String, tensor: Tensor) { elements[position] }

  /// Whether both hold the same names and tensors in the same order.
  public static func == (lhs: NamedTensors, rhs: NamedTensors) -> Bool {
    lhs.elements.count == rhs.elements.count
      && zip(lhs.elements, rhs.elements).allSatisfy { $0.name == $1.name && $0.tensor == $1.tensor }
  }

  /// `name: tensor` pairs.
  public var description: String {
    "[" + elements.map { "\($0.name): \($0.tensor)" }.joined(separator: ", ") + "]"
  }

  init(json: JSONValue?, at pointer: JSONPointer) throws(AdjointError) {
    guard case .object(let object)? = json else {
      throw .invalidResponse("expected an object of tensors at \(pointer)")
    }
    var elements: [(name: String, tensor: Tensor)] = []
    for (key, value) in object {
      elements.append((key, try Tensor(json: value, at: pointer.appending(key))))
    }
    self.elements = elements
  }
}

/// The answer of `POST /evaluate`: the value of each output.
public struct Evaluation: Sendable, Equatable {
  /// The value of every output, keyed by output name (`out` for an unnamed one).
  public let values: NamedTensors

  /// The value of the output called `name`.
  public subscript(name: String) -> Tensor? { values[name] }

  init(json: JSONValue) throws(AdjointError) {
    values = try NamedTensors(json: json["values"], at: "/values")
  }
}

/// The answer of `POST /gradient`: the value and the gradient with respect to each input.
public struct GradientResult: Sendable, Equatable {
  /// The function's value (one element).
  public let value: Tensor
  /// The gradient with respect to each input asked for, each of its input's shape.
  public let gradient: NamedTensors

  init(json: JSONValue) throws(AdjointError) {
    value = try Tensor(json: try member(json, "value"), at: "/value")
    gradient = try NamedTensors(json: json["gradient"], at: "/gradient")
  }
}

/// The answer of `POST /vjp`: the value and the vector-Jacobian product with respect to each input.
public struct VJPResult: Sendable, Equatable {
  /// The function's value.
  public let value: Tensor
  /// The cotangent pulled back to each input asked for.
  public let vjp: NamedTensors

  init(json: JSONValue) throws(AdjointError) {
    value = try Tensor(json: try member(json, "value"), at: "/value")
    vjp = try NamedTensors(json: json["vjp"], at: "/vjp")
  }
}

/// The answer of `POST /jvp`: the value and the Jacobian-vector product (of the output's shape).
public struct JVPResult: Sendable, Equatable {
  /// The function's value.
  public let value: Tensor
  /// The tangent pushed forward to the output.
  public let jvp: Tensor

  init(json: JSONValue) throws(AdjointError) {
    value = try Tensor(json: try member(json, "value"), at: "/value")
    jvp = try Tensor(json: try member(json, "jvp"), at: "/jvp")
  }
}

/// The answer of `POST /jacobian`: the value and one Jacobian block per input, of shape `out.shape + x.shape`.
public struct JacobianResult: Sendable, Equatable {
  /// The function's value.
  public let value: Tensor
  /// The Jacobian with respect to each input asked for.
  public let jacobian: NamedTensors

  init(json: JSONValue) throws(AdjointError) {
    value = try Tensor(json: try member(json, "value"), at: "/value")
    jacobian = try NamedTensors(json: json["jacobian"], at: "/jacobian")
  }
}

/// The answer of `POST /hessian`: the value, the gradient, and the Hessian blocks `hessian[x][y]` of shape
/// `x.shape + y.shape`.
public struct HessianResult: Sendable, Equatable {
  /// The function's value (one element).
  public let value: Tensor
  /// The gradient with respect to each input asked for.
  public let gradient: NamedTensors
  /// The blocks: `hessian[i].name` is the row input, `hessian[i].blocks[column]` the block for a column input.
  public let hessian: [(name: String, blocks: NamedTensors)]

  /// The block of second derivatives with respect to `row` then `column`.
  public func block(_ row: String, _ column: String) -> Tensor? {
    hessian.first { $0.name == row }?.blocks[column]
  }

  /// Whether both hold the same values.
  public static func == (lhs: HessianResult, rhs: HessianResult) -> Bool {
    lhs.value == rhs.value && lhs.gradient == rhs.gradient && lhs.hessian.count == rhs.hessian.count
      && zip(lhs.hessian, rhs.hessian).allSatisfy { $0.name == $1.name && $0.blocks == $1.blocks }
  }

  init(json: JSONValue) throws(AdjointError) {
    value = try Tensor(json: try member(json, "value"), at: "/value")
    gradient = try NamedTensors(json: json["gradient"], at: "/gradient")
    guard case .object(let rows)? = json["hessian"] else { throw .invalidResponse("no 'hessian' object") }
    var blocks: [(name: String, blocks: NamedTensors)] = []
    for (name, row) in rows {
      blocks.append((name, try NamedTensors(json: row, at: JSONPointer(components: ["hessian", name]))))
    }
    hessian = blocks
  }
}

/// The answer of `POST /gradcheck`: the AD gradient beside a central finite-difference one.
public struct GradientCheck: Sendable, Equatable {
  /// The function's value.
  public let value: Tensor
  /// The gradient by automatic differentiation.
  public let gradient: NamedTensors
  /// The gradient by central finite differences.
  public let numericGradient: NamedTensors
  /// The largest relative difference between the two, per input.
  public let maxRelativeError: NamedTensors

  init(json: JSONValue) throws(AdjointError) {
    value = try Tensor(json: try member(json, "value"), at: "/value")
    gradient = try NamedTensors(json: json["gradient"], at: "/gradient")
    numericGradient = try NamedTensors(json: json["numeric_gradient"], at: "/numeric_gradient")
    maxRelativeError = try NamedTensors(json: json["max_relative_error"], at: "/max_relative_error")
  }
}

/// An op of the contract, as `GET /ops` lists it.
public struct OpInfo: Sendable, Equatable {
  /// The op's name (`add`, `matmul`, …).
  public let name: String
  /// How many operands it takes; `nil` for any number (`concat`, `stack`).
  public let arity: Int?
  /// The attributes it takes.
  public let attrs: [String]
  /// One line on what it computes.
  public let doc: String
}

/// A graph registered with `POST /graphs`: its content id, and the graph itself, so that a client can register it
/// again where the id is unknown (a restarted server, another replica).
public struct RegisteredGraph: Sendable, FunctionRepresentable {
  /// The content id (`sha256:…`).
  public let id: String
  /// Whether this registration created it (201) rather than finding it (200).
  public let created: Bool
  let registered: Function

  /// The function, named by its id in requests.
  public var function: Function { registered }
}

func member(_ json: JSONValue, _ key: String) throws(AdjointError) -> JSONValue {
  guard let value = json[key] else { throw .invalidResponse("no '\(key)' in the answer") }
  return value
}
