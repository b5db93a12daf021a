import AdjointJSON

/// A value in a function being written: an input, a constant, or an operation on other nodes.
///
/// Nodes record the expression as it is written (the implicit tape of PyTorch, on the client side) and become the
/// contract's JSON `graph` when a request is sent. A node used twice is one object, and it is sent once:
///
/// ```swift
/// let x = Input("x"), y = Input("y")
/// let h = sin(x * y)               // used twice below, sent once
/// let f = h * h + x ** 2
/// let r = try await client.gradient(of: f, at: ["x": 1.5, "y": -0.5])
/// ```
public class Node: @unchecked Sendable {
  // Immutable after init, so sharing across tasks is safe.
  enum Kind {
    case input(String)
    case constant(Tensor)
    case op(String, [Node], [(String, JSONValue)])
  }

  let kind: Kind

  init(kind: Kind) { self.kind = kind }

  /// An operation of the contract by name, for ops without a Swift function here (`Node.op("atan2", y, x)`).
  ///
  /// - Parameters:
  ///   - name: the op's name, as `GET /ops` lists it.
  ///   - args: its operands.
  ///   - attrs: its attributes (`axis`, `keepdims`, `shape`, …) as JSON values.
  public static func op(_ name: String, _ args: Node..., attrs: [(String, JSONValue)] = []) -> Node {
    Node(kind: .op(name, args, attrs))
  }

  /// An operation of the contract by name, with its operands as an array.
  public static func op(_ name: String, args: [Node], attrs: [(String, JSONValue)] = []) -> Node {
    Node(kind: .op(name, args, attrs))
  }
}

/// An input of a function, named as the point of a request names it.
public final class Input: Node, @unchecked Sendable {
  /// The input's name.
  public let name: String

  /// An input called `name` (`Input("x")`).
  public init(_ name: String) {
    self.name = name
    super.init(kind: .input(name))
  }
}

/// A constant tensor in a function (`Constant([1, 2, 3])`); a `Double` next to a node becomes one by itself.
public final class Constant: Node, @unchecked Sendable {
  /// The constant's value.
  public let value: Tensor

  /// A constant holding `value`.
  public init(_ value: Tensor) {
    self.value = value
    super.init(kind: .constant(value))
  }
}

// MARK: - Operators

precedencegroup AdjointPowerPrecedence {
  higherThan: MultiplicationPrecedence
  associativity: right
}

/// Raises to a power: `x ** 2`, binding tighter than `*` and to the right, as `^` does in the `expr` language
/// (and `**` in Python). Swift's `^` cannot serve: the standard library declares it (XOR) at the precedence of
/// `+`, and a second declaration makes every `^` in a program that imports this module ambiguous.
infix operator ** : AdjointPowerPrecedence

/// Elementwise sum (broadcasting).
public func + (a: Node, b: Node) -> Node { .op("add", a, b) }
/// Elementwise difference (broadcasting).
public func - (a: Node, b: Node) -> Node { .op("sub", a, b) }
/// Elementwise product (broadcasting).
public func * (a: Node, b: Node) -> Node { .op("mul", a, b) }
/// Elementwise quotient (broadcasting).
public func / (a: Node, b: Node) -> Node { .op("div", a, b) }
/// Elementwise power (broadcasting).
public func ** (a: Node, b: Node) -> Node { .op("pow", a, b) }
/// Negation.
public prefix func - (a: Node) -> Node { .op("neg", a) }

/// A node plus a constant.
public func + (a: Node, b: Double) -> Node { a + Constant(Tensor(b)) }
/// A constant plus a node.
public func + (a: Double, b: Node) -> Node { Constant(Tensor(a)) + b }
/// A node minus a constant.
public func - (a: Node, b: Double) -> Node { a - Constant(Tensor(b)) }
/// A constant minus a node.
public func - (a: Double, b: Node) -> Node { Constant(Tensor(a)) - b }
/// A node times a constant.
public func * (a: Node, b: Double) -> Node { a * Constant(Tensor(b)) }
/// A constant times a node.
public func * (a: Double, b: Node) -> Node { Constant(Tensor(a)) * b }
/// A node divided by a constant.
public func / (a: Node, b: Double) -> Node { a / Constant(Tensor(b)) }
/// A constant divided by a node.
public func / (a: Double, b: Node) -> Node { Constant(Tensor(a)) / b }
/// A node to a constant power (`x ** 2`).
public func ** (a: Node, b: Double) -> Node { a ** Constant(Tensor(b)) }
/// A constant to the power of a node.
public func ** (a: Double, b: Node) -> Node { Constant(Tensor(a)) ** b }

// MARK: - Elementwise functions

/// Sine.
public func sin(_ x: Node) -> Node { .op("sin", x) }
/// Cosine.
public func cos(_ x: Node) -> Node { .op("cos", x) }
/// Tangent.
public func tan(_ x: Node) -> Node { .op("tan", x) }
/// Arcsine.
public func asin(_ x: Node) -> Node { .op("asin", x) }
/// Arccosine.
public func acos(_ x: Node) -> Node { .op("acos", x) }
/// Arctangent.
public func atan(_ x: Node) -> Node { .op("atan", x) }
/// The angle of the point `(x, y)`.
public func atan2(_ y: Node, _ x: Node) -> Node { .op("atan2", y, x) }
/// Hyperbolic sine.
public func sinh(_ x: Node) -> Node { .op("sinh", x) }
/// Hyperbolic cosine.
public func cosh(_ x: Node) -> Node { .op("cosh", x) }
/// Hyperbolic tangent.
public func tanh(_ x: Node) -> Node { .op("tanh", x) }
/// e to the power `x`.
public func exp(_ x: Node) -> Node { .op("exp", x) }
/// `exp(x) - 1`, accurate near 0.
public func expm1(_ x: Node) -> Node { .op("expm1", x) }
/// Natural logarithm.
public func log(_ x: Node) -> Node { .op("log", x) }
/// `log(1 + x)`, accurate near 0.
public func log1p(_ x: Node) -> Node { .op("log1p", x) }
/// Square root.
public func sqrt(_ x: Node) -> Node { .op("sqrt", x) }
/// `x * x`.
public func square(_ x: Node) -> Node { .op("square", x) }
/// Absolute value.
public func abs(_ x: Node) -> Node { .op("abs", x) }
/// -1, 0 or 1.
public func sign(_ x: Node) -> Node { .op("sign", x) }
/// `1 / (1 + exp(-x))`.
public func sigmoid(_ x: Node) -> Node { .op("sigmoid", x) }
/// `max(x, 0)`.
public func relu(_ x: Node) -> Node { .op("relu", x) }
/// `log(1 + exp(x))`.
public func softplus(_ x: Node) -> Node { .op("softplus", x) }
/// The error function.
public func erf(_ x: Node) -> Node { .op("erf", x) }
/// The larger of two values, elementwise.
public func maximum(_ a: Node, _ b: Node) -> Node { .op("maximum", a, b) }
/// The smaller of two values, elementwise.
public func minimum(_ a: Node, _ b: Node) -> Node { .op("minimum", a, b) }
/// `a` where `condition` is nonzero, else `b`.
public func `where`(_ condition: Node, _ a: Node, _ b: Node) -> Node { .op("where", condition, a, b) }
/// The value with no gradient flowing back through it.
public func stopGradient(_ x: Node) -> Node { .op("stop_gradient", x) }

// MARK: - Reductions

private func reduction(_ name: String, _ x: Node, axis: [Int]?, keepdims: Bool) -> Node {
  var attrs: [(String, JSONValue)] = []
  if let axis { attrs.append(("axis", .array(JSONArray(axis.map { .number(Double($0)) })))) }
  if keepdims { attrs.append(("keepdims", .bool(true))) }
  return .op(name, args: [x], attrs: attrs)
}

/// The sum of the elements, over `axis` (default all).
public func sum(_ x: Node, axis: [Int]? = nil, keepdims: Bool = false) -> Node {
  reduction("sum", x, axis: axis, keepdims: keepdims)
}
/// The mean of the elements, over `axis` (default all).
public func mean(_ x: Node, axis: [Int]? = nil, keepdims: Bool = false) -> Node {
  reduction("mean", x, axis: axis, keepdims: keepdims)
}
/// The product of the elements, over `axis` (default all).
public func prod(_ x: Node, axis: [Int]? = nil, keepdims: Bool = false) -> Node {
  reduction("prod", x, axis: axis, keepdims: keepdims)
}
/// The largest element, over `axis` (default all).
public func max(_ x: Node, axis: [Int]? = nil, keepdims: Bool = false) -> Node {
  reduction("max", x, axis: axis, keepdims: keepdims)
}
/// The smallest element, over `axis` (default all).
public func min(_ x: Node, axis: [Int]? = nil, keepdims: Bool = false) -> Node {
  reduction("min", x, axis: axis, keepdims: keepdims)
}
/// `log(sum(exp(x)))`, computed stably, over `axis` (default all).
public func logsumexp(_ x: Node, axis: [Int]? = nil, keepdims: Bool = false) -> Node {
  reduction("logsumexp", x, axis: axis, keepdims: keepdims)
}
/// The softmax along `axis`.
public func softmax(_ x: Node, axis: Int = -1) -> Node {
  .op("softmax", args: [x], attrs: [("axis", .number(Double(axis)))])
}
/// The log of the softmax along `axis`.
public func logSoftmax(_ x: Node, axis: Int = -1) -> Node {
  .op("log_softmax", args: [x], attrs: [("axis", .number(Double(axis)))])
}

// MARK: - Linear algebra and shapes

/// The matrix product (vector, matrix and batched, as NumPy's `matmul`).
public func matmul(_ a: Node, _ b: Node) -> Node { .op("matmul", a, b) }
/// The dot product of two vectors of equal length.
public func dot(_ a: Node, _ b: Node) -> Node { .op("dot", a, b) }
/// The outer product of two vectors.
public func outer(_ a: Node, _ b: Node) -> Node { .op("outer", a, b) }
/// The axes permuted (default: reversed).
public func transpose(_ x: Node, axes: [Int]? = nil) -> Node {
  .op("transpose", args: [x], attrs: axes.map { [("axes", .array(JSONArray($0.map { .number(Double($0)) })))] } ?? [])
}
/// The same elements under another shape; one extent may be -1.
public func reshape(_ x: Node, _ shape: [Int]) -> Node {
  .op("reshape", args: [x], attrs: [("shape", .array(JSONArray(shape.map { .number(Double($0)) })))])
}

// MARK: - Functions

/// The function a request computes: a builder graph, an `expr` string, or a registered graph.
///
/// `Node`, ``Graph``, ``RegisteredGraph`` and `String` (an `expr`) are all functions, so each method of
/// ``AdjointClient`` takes any of them: `client.gradient(of: "sin(x*y) + x^2", at: …)`.
public protocol FunctionRepresentable: Sendable {
  /// The function as a request names it.
  var function: Function { get }
}

/// How a request names its function: `expr`, `graph` (JSON bytes) or `graph_id`.
public struct Function: Sendable, FunctionRepresentable {
  indirect enum Source: Sendable {
    case expr(String)
    case graph([UInt8])
    /// A registered function: its id, and the function itself for when the id is unknown where the request goes.
    case registered(id: String, inline: Source)
  }

  let source: Source

  /// An `expr` in the contract's expression language (`"h = tanh(x @ W); loss = sum(h)"`).
  public static func expr(_ text: String) -> Function { Function(source: .expr(text)) }

  /// A JSON `graph` given as its bytes (`{"nodes": [...], "outputs": [...]}`).
  public static func graph(json: [UInt8]) -> Function { Function(source: .graph(json)) }

  /// Itself.
  public var function: Function { self }

  /// The function without its registration: what `POST /graphs` registers, or a request sends inline.
  var inline: Function {
    if case .registered(_, let inline) = source { return Function(source: inline) }
    return self
  }

  /// The id when the function is registered.
  var registeredID: String? {
    if case .registered(let id, _) = source { return id }
    return nil
  }

  /// What `POST /graphs` registers: the `expr` or the `graph`.
  var registrationBody: [UInt8] {
    var writer = JSONWriter(capacity: 256)
    writer.beginObject()
    inline.writeFunction(to: &writer)
    writer.endObject()
    return writer.bytes
  }

  /// Writes the member naming the function (`"expr": …`, `"graph": …` or `"graph_id": …`).
  func writeFunction(to writer: inout JSONWriter) {
    switch source {
    case .expr(let text):
      writer.writeKey("expr")
      writer.write(text)
    case .graph(let bytes):
      writer.writeKey("graph")
      writer.writeRawValue(bytes)
    case .registered(let id, _):
      writer.writeKey("graph_id")
      writer.write(id)
    }
  }
}

extension String: FunctionRepresentable {
  /// The string as an `expr`.
  public var function: Function { .expr(self) }
}

extension Node: FunctionRepresentable {
  /// The node as the single output of a graph, named `out`.
  public var function: Function { Graph(self).function }
}

/// A function with one or more named outputs, built from nodes.
///
/// ```swift
/// let x = Input("x")
/// let g = Graph(outputs: ["y": sin(x), "z": x * x])
/// let values = try await client.evaluate(g, at: ["x": 0.5])   // values["y"], values["z"]
/// ```
public struct Graph: Sendable, FunctionRepresentable {
  /// The JSON `graph` of the contract: `{"nodes": [...], "outputs": [...]}`.
  public let json: [UInt8]

  /// A graph whose single output is `output`, named `name` (default `out`).
  public init(_ output: Node, name: String = "out") { self.init(outputs: [(name, output)]) }

  /// A graph with the given outputs, in order.
  public init(outputs: KeyValuePairs<String, Node>) { self.init(outputs: outputs.map { ($0.key, $0.value) }) }

  /// A graph with the given outputs, in order.
  ///
  /// - Precondition: the names are unique.
  public init(outputs: [(String, Node)]) {
    precondition(Set(outputs.map(\.0)).count == outputs.count, "output names must be unique")
    json = GraphEncoder(outputs: outputs).json
  }

  /// A graph from its JSON text (as `GET /graphs/{id}` answers it); the service checks it when it is used.
  public init(json: [UInt8]) { self.json = json }

  /// The graph as a request sends it.
  public var function: Function { .graph(json: json) }

  /// The JSON text of the graph.
  public var text: String { String(decoding: json, as: UTF8.self) }
}

/// Turns nodes into the JSON `graph`: each node once (by identity), in the order written, with ids `%0`, `%1`, …
/// (an output node takes its output's name); scalar constants become numeric arguments.
private struct GraphEncoder {
  var ids: [ObjectIdentifier: String] = [:]
  var nodes: [(id: String, op: String, args: [Argument], attrs: [(String, JSONValue)])] = []
  var outputNames: [ObjectIdentifier: String] = [:]
  var counter = 0

  enum Argument {
    case name(String)
    case number(Double)
  }

  init(outputs: [(String, Node)]) {
    for (name, node) in outputs where outputNames[ObjectIdentifier(node)] == nil {
      if case .op = node.kind { outputNames[ObjectIdentifier(node)] = name }
    }
    var names: [String] = []
    for (name, node) in outputs {
      let argument = visit(node)
      if case .name(let id) = argument, id == name {
        names.append(name)
        continue
      }
      // An input, a constant or a node already named by another output: an identity node gives it this name.
      nodes.append((name, "add", [argument, .number(0)], []))
      names.append(name)
    }
    self.names = names
  }

  var names: [String] = []

  /// The argument that refers to `root`, emitting it and every node it depends on first (without recursion).
  mutating func visit(_ root: Node) -> Argument {
    if let argument = reference(root) { return argument }
    var stack: [(node: Node, next: Int)] = [(root, 0)]
    while let (node, next) = stack.last {
      guard case .op(let name, let args, let attrs) = node.kind else { fatalError("unreachable") }
      if next < args.count {
        stack[stack.count - 1].next += 1
        if reference(args[next]) == nil { stack.append((args[next], 0)) }
        continue
      }
      stack.removeLast()
      let id = outputNames[ObjectIdentifier(node)] ?? "%\(counter)"
      if outputNames[ObjectIdentifier(node)] == nil { counter += 1 }
      nodes.append((id, name, args.map { reference($0)! }, attrs))
      ids[ObjectIdentifier(node)] = id
    }
    return reference(root)!
  }

  /// How an argument names `node` when it needs no node of its own (or has one already); `nil` otherwise.
  mutating func reference(_ node: Node) -> Argument? {
    switch node.kind {
    case .input(let name): return .name(name)
    case .constant(let value) where value.rank == 0 && value.scalars[0].isFinite: return .number(value.scalars[0])
    case .constant(let value):
      if let id = ids[ObjectIdentifier(node)] { return .name(id) }
      let id = "%\(counter)"
      counter += 1
      nodes.append((id, "const", [], [("value", value.json(layout: .flat))]))
      ids[ObjectIdentifier(node)] = id
      return .name(id)
    case .op: return ids[ObjectIdentifier(node)].map { .name($0) }
    }
  }

  var json: [UInt8] {
    var writer = JSONWriter(capacity: 64 * nodes.count + 64)
    writer.beginObject()
    writer.writeKey("nodes")
    writer.beginArray()
    for node in nodes {
      writer.beginObject()
      writer.writeKey("id")
      writer.write(node.id)
      writer.writeKey("op")
      writer.write(node.op)
      writer.writeKey("args")
      writer.beginArray()
      for argument in node.args {
        switch argument {
        case .name(let name): writer.write(name)
        case .number(let value): writer.write(JSONValue.number(value))
        }
      }
      writer.endArray()
      if !node.attrs.isEmpty {
        writer.writeKey("attrs")
        writer.write(JSONValue.object(JSONObject(uniqueKeysWithValues: node.attrs)))
      }
      writer.endObject()
    }
    writer.endArray()
    writer.writeKey("outputs")
    writer.beginArray()
    for name in names { writer.write(name) }
    writer.endArray()
    writer.endObject()
    return writer.bytes
  }
}
