// Decoding a JSON graph is the one place where untrusted input decides the shape of a data structure, so it is
// written defensively: one pass collects every type error (400), a second every meaningless reference (422), and
// only then are the nodes ordered, by Kahn's algorithm over explicit in-degrees and a heap. Nothing recurses on
// the request, so a chain of 100,000 nodes costs a few arrays, not a deep stack.
import AdjointJSON

/// Decodes the JSON `graph` form of the wire contract into the same flat ``Graph`` the `expr` parser produces.
///
/// ```swift
/// let json = try JSONParser.parse(#"{"nodes": [{"id": "y", "op": "sin", "args": ["x"]}]}"#)
/// let graph = try GraphDecoder.decode(json, at: "/graph")
/// let program = try GraphCompiler.compile(graph, inputShapes: ["x": []])
/// ```
///
/// - `inputs` (optional) maps each input name to its declared shape; when it is given, every name an `args` entry
///   or an output uses must be a node id or a declared input. When it is omitted, any other name is an input.
/// - `nodes` may be listed in any order; ids are unique and must not be input names; the graph must be acyclic.
/// - An `args` entry is a node id, an input name, or a number (a rank-0 constant).
/// - `attrs`: `axis` (integer or list of integers), `keepdims` (Boolean), `shape`, `axes`, `indices` (lists of
///   integers), `start`, `stop`, `step` (integers), `value` (a tensor: a number, nested lists, or the
///   `{"shape", "data"}` form). Other attribute names may hold a number, a list of numbers or a Boolean; the
///   compiler rejects the ones the op does not take.
/// - `outputs` (a list of names) or `output` (one name); by default the last node listed. An output is named by
///   its id.
///
/// The decoded graph's ``Graph/source`` is `.json(at: pointer)`, and each node's position is its index in
/// `nodes`, so that the compiler's errors, and the origins of the program's instructions, lead back to the node.
public enum GraphDecoder {
  /// The caps the decoder enforces. Each is inclusive: a value equal to it is accepted.
  public struct Limits: Sendable, Equatable {
    /// The most nodes a graph may list (100,000).
    public var maxNodes: Int
    /// The most elements in a `const` value (2^24).
    public var maxTensorElements: Int
    /// The most errors reported together (100); the rest are dropped.
    public var maxErrors: Int

    /// Creates limits; the defaults are the wire contract's.
    public init(maxNodes: Int = 100_000, maxTensorElements: Int = 1 << 24, maxErrors: Int = 100) {
      self.maxNodes = maxNodes
      self.maxTensorElements = maxTensorElements
      self.maxErrors = maxErrors
    }
  }

  /// Decodes a JSON graph.
  ///
  /// - Parameters:
  ///   - value: the `graph` member of a request.
  ///   - pointer: where `value` is in the request (`/graph`); every error pointer starts with it.
  ///   - limits: the caps to enforce.
  /// - Returns: the graph, nodes in topological order (the listed order when that is already topological).
  /// - Throws: ``Diagnostics`` located by JSON Pointers, all of one kind: ``Diagnostic/Kind/limit`` (413) for too
  ///   many nodes or too large a constant, else ``Diagnostic/Kind/syntax`` (400) for wrong JSON types, else
  ///   ``Diagnostic/Kind/semantic`` (422) for unknown ops and names, duplicate ids, wrong arities and cycles.
  public static func decode(
    _ value: JSONValue, at pointer: JSONPointer = JSONPointer(), limits: Limits = Limits()
  ) throws(Diagnostics) -> Graph {
    var decoder = Decoder(base: pointer, limits: limits)
    let raw = try decoder.read(value)
    try decoder.resolve(raw)
    let order = try decoder.sort(raw)
    return decoder.build(raw, order: order)
  }
}

// MARK: - The decoder

/// A node as read from JSON, before names are resolved.
private struct RawNode {
  enum Argument {
    case name(String)
    case literal(Double)
  }

  var id: String
  var op: String
  var arguments: [Argument]
  var attributes: [(name: String, value: Graph.Attribute)]
}

/// A graph as read from JSON.
private struct RawGraph {
  var inputs: [(name: String, shape: [Int])]?
  var nodes: [RawNode] = []
  var outputs: [(name: String, pointer: JSONPointer)]?
}

/// What a name in `args` or `outputs` refers to.
private enum Reference {
  case node(Int)
  case input(String)
  case literal(Double)
}

private struct Decoder {
  let base: JSONPointer
  let limits: Limits
  typealias Limits = GraphDecoder.Limits

  private var errors: [Diagnostic] = []
  /// Node index by id, for the first node with each id.
  private var ids: [String: Int] = [:]
  /// Declared input names.
  private var declared: Set<String> = []
  /// The resolved arguments of every node.
  private var references: [[Reference]] = []
  /// The resolved outputs (name, reference), deduplicated.
  private var outputs: [(name: String, reference: Reference)] = []

  init(base: JSONPointer, limits: Limits) {
    self.base = base
    self.limits = limits
  }

  private var nodesPointer: JSONPointer { base.appending("nodes") }

  private mutating func report(_ kind: Diagnostic.Kind, _ message: String, at pointer: JSONPointer) {
    if errors.count < limits.maxErrors { errors.append(Diagnostic(kind, message, at: pointer)) }
  }

  private mutating func throwIfErrors() throws(Diagnostics) {
    if !errors.isEmpty {
      defer { errors = [] }
      throw Diagnostics(errors)
    }
  }

  // MARK: Pass 1: JSON types (400), and the limits (413)

  mutating func read(_ value: JSONValue) throws(Diagnostics) -> RawGraph {
    guard case .object(let object) = value else {
      throw Diagnostics(Diagnostic(.syntax, "a graph must be an object, not \(value.kindDescription)", at: base))
    }
    var graph = RawGraph()
    for key in object.keys where !["inputs", "nodes", "outputs", "output"].contains(key) {
      report(
        .syntax, "unknown member '\(key)' (a graph has inputs, nodes, and outputs or output)", at: base.appending(key))
    }
    if let inputs = object["inputs"] { graph.inputs = readInputs(inputs) }
    guard let nodes = object["nodes"] else {
      report(.syntax, "a graph needs 'nodes', a list of nodes", at: base)
      try throwIfErrors()
      return graph
    }
    guard case .array(let list) = nodes else {
      report(.syntax, "'nodes' must be a list of nodes, not \(nodes.kindDescription)", at: nodesPointer)
      try throwIfErrors()
      return graph
    }
    if list.count > limits.maxNodes {
      throw Diagnostics(
        Diagnostic(
          .limit, "the graph has \(list.count) nodes, more than the limit of \(limits.maxNodes)", at: nodesPointer))
    }
    graph.nodes.reserveCapacity(list.count)
    for (index, node) in list.enumerated() {
      graph.nodes.append(try readNode(node, at: nodesPointer.appending(index)))
    }
    if object["outputs"] != nil && object["output"] != nil {
      report(.syntax, "give either 'outputs' or 'output', not both", at: base.appending("output"))
    } else if let outputs = object["outputs"] {
      let pointer = base.appending("outputs")
      if case .array(let names) = outputs {
        var list: [(String, JSONPointer)] = []
        for (index, name) in names.enumerated() {
          if case .string(let text) = name {
            list.append((text, pointer.appending(index)))
          } else {
            report(.syntax, "an output must be a name, not \(name.kindDescription)", at: pointer.appending(index))
          }
        }
        graph.outputs = list
      } else {
        report(.syntax, "'outputs' must be a list of names, not \(outputs.kindDescription)", at: pointer)
      }
    } else if let output = object["output"] {
      if case .string(let name) = output {
        graph.outputs = [(name, base.appending("output"))]
      } else {
        report(.syntax, "'output' must be a name, not \(output.kindDescription)", at: base.appending("output"))
      }
    }
    try throwIfErrors()
    return graph
  }

  private mutating func readInputs(_ value: JSONValue) -> [(name: String, shape: [Int])] {
    let pointer = base.appending("inputs")
    guard case .object(let object) = value else {
      report(.syntax, "'inputs' must be an object mapping names to shapes, not \(value.kindDescription)", at: pointer)
      return []
    }
    var inputs: [(name: String, shape: [Int])] = []
    for (name, shape) in zip(object.keys, object.values) {
      guard let extents = Self.integers(shape), extents.allSatisfy({ $0 >= 0 }) else {
        report(.syntax, "a shape must be a list of non-negative integers", at: pointer.appending(name))
        continue
      }
      inputs.append((name, extents))
    }
    return inputs
  }

  private mutating func readNode(_ value: JSONValue, at pointer: JSONPointer) throws(Diagnostics) -> RawNode {
    var node = RawNode(id: "", op: "", arguments: [], attributes: [])
    guard case .object(let object) = value else {
      report(.syntax, "a node must be an object, not \(value.kindDescription)", at: pointer)
      return node
    }
    for key in object.keys where !["id", "op", "args", "attrs"].contains(key) {
      report(.syntax, "unknown member '\(key)' (a node has id, op, args and attrs)", at: pointer.appending(key))
    }
    for key in ["id", "op"] {
      switch object[key] {
      case nil: report(.syntax, "a node needs '\(key)', a string", at: pointer)
      case .string(let text)?: if key == "id" { node.id = text } else { node.op = text }
      case let other?:
        report(.syntax, "'\(key)' must be a string, not \(other.kindDescription)", at: pointer.appending(key))
      }
    }
    if let args = object["args"] {
      let argsPointer = pointer.appending("args")
      if case .array(let list) = args {
        node.arguments.reserveCapacity(list.count)
        for (index, argument) in list.enumerated() {
          switch argument {
          case .string(let name): node.arguments.append(.name(name))
          case .number(let number): node.arguments.append(.literal(number))
          default:
            report(
              .syntax, "an argument must be a node id, an input name or a number, not \(argument.kindDescription)",
              at: argsPointer.appending(index))
          }
        }
      } else {
        report(.syntax, "'args' must be a list, not \(args.kindDescription)", at: argsPointer)
      }
    }
    if let attrs = object["attrs"] {
      let attrsPointer = pointer.appending("attrs")
      if case .object(let members) = attrs {
        for (name, value) in zip(members.keys, members.values) {
          if let attribute = try readAttribute(name, value, at: attrsPointer.appending(name)) {
            node.attributes.append((name, attribute))
          }
        }
      } else {
        report(.syntax, "'attrs' must be an object, not \(attrs.kindDescription)", at: attrsPointer)
      }
    }
    return node
  }

  private mutating func readAttribute(_ name: String, _ value: JSONValue, at pointer: JSONPointer)
    throws(Diagnostics) -> Graph.Attribute?
  {
    switch name {
    case "value":
      let tensor: (shape: [Int], data: [Double])
      do {
        tensor = try JSONTensorDecoding.decode(value, maxElements: limits.maxTensorElements, at: pointer)
      } catch {
        if error.kind == .overLimit { throw Diagnostics(Diagnostic(.limit, error.message, at: error.pointer)) }
        report(.syntax, error.message, at: error.pointer)
        return nil
      }
      switch tensor.shape.count {
      case 0: return .number(tensor.data[0])
      case 1: return .numbers(tensor.data)
      default: return .tensor(shape: tensor.shape, scalars: tensor.data)
      }
    case "axis":
      if let number = value.intValue { return .number(Double(number)) }
      if let list = Self.integers(value) { return .numbers(list.map(Double.init)) }
      report(.syntax, "'axis' must be an integer or a list of integers, not \(Self.describe(value))", at: pointer)
    case "keepdims":
      if case .bool(let flag) = value { return .bool(flag) }
      report(.syntax, "'keepdims' must be true or false, not \(Self.describe(value))", at: pointer)
    case "shape", "axes", "indices":
      if let list = Self.integers(value) { return .numbers(list.map(Double.init)) }
      report(.syntax, "'\(name)' must be a list of integers, not \(Self.describe(value))", at: pointer)
    case "start", "stop", "step":
      if let number = value.intValue { return .number(Double(number)) }
      report(.syntax, "'\(name)' must be an integer, not \(Self.describe(value))", at: pointer)
    default:
      switch value {
      case .number(let number): return .number(number)
      case .bool(let flag): return .bool(flag)
      case .array(let list) where list.allSatisfy({ $0.doubleValue != nil }):
        return .numbers(list.map { $0.doubleValue! })
      default:
        report(
          .syntax, "an attribute must be a number, a list of numbers or a Boolean, not \(Self.describe(value))",
          at: pointer)
      }
    }
    return nil
  }

  /// The integers of a JSON list of integers, else nil.
  private static func integers(_ value: JSONValue) -> [Int]? {
    guard case .array(let list) = value else { return nil }
    var result: [Int] = []
    result.reserveCapacity(list.count)
    for element in list {
      guard let integer = element.intValue else { return nil }
      result.append(integer)
    }
    return result
  }

  /// "a number (1.5)" for a non-integral number, else the kind of value.
  private static func describe(_ value: JSONValue) -> String {
    if case .number(let number) = value { return "the number \(number)" }
    if case .array(let list) = value, list.allSatisfy({ $0.doubleValue != nil }) { return "a list with non-integers" }
    return value.kindDescription
  }

  // MARK: Pass 2: names, ops and arities (422)

  mutating func resolve(_ graph: RawGraph) throws(Diagnostics) {
    if let inputs = graph.inputs { declared = Set(inputs.map(\.name)) }
    ids.reserveCapacity(graph.nodes.count)
    for (index, node) in graph.nodes.enumerated() {
      let pointer = nodesPointer.appending(index)
      if ids[node.id] != nil {
        report(.semantic, "duplicate id '\(node.id)'", at: pointer.appending("id"))
      } else {
        ids[node.id] = index
        if declared.contains(node.id) {
          report(.semantic, "id '\(node.id)' is also the name of an input", at: pointer.appending("id"))
        }
      }
    }
    var implicit: Set<String> = []
    references.reserveCapacity(graph.nodes.count)
    for (index, node) in graph.nodes.enumerated() {
      let pointer = nodesPointer.appending(index)
      if let spec = OpCatalog.byName[node.op] {
        if let arity = spec.arity, node.arguments.count != arity {
          report(
            .semantic, "\(node.op) takes \(arity) argument\(arity == 1 ? "" : "s"), not \(node.arguments.count)",
            at: pointer.appending("args"))
        } else if spec.arity == nil && node.arguments.isEmpty {
          report(.semantic, "\(node.op) takes one or more arguments, not 0", at: pointer.appending("args"))
        }
      } else {
        report(.semantic, "unknown op '\(node.op)'", at: pointer.appending("op"))
      }
      var resolved: [Reference] = []
      resolved.reserveCapacity(node.arguments.count)
      for (position, argument) in node.arguments.enumerated() {
        switch argument {
        case .literal(let number):
          resolved.append(.literal(number))
        case .name(let name):
          if let target = ids[name] {
            resolved.append(.node(target))
          } else if declared.contains(name) || graph.inputs == nil {
            if graph.inputs == nil { implicit.insert(name) }
            resolved.append(.input(name))
          } else {
            report(.semantic, "unknown name '\(name)'", at: pointer.appending("args").appending(position))
            resolved.append(.literal(0))
          }
        }
      }
      references.append(resolved)
    }
    if let named = graph.outputs {
      var seen: Set<String> = []
      for (name, pointer) in named where seen.insert(name).inserted {
        if let target = ids[name] {
          outputs.append((name, .node(target)))
        } else if declared.contains(name) || implicit.contains(name) {
          outputs.append((name, .input(name)))
        } else {
          report(.semantic, "unknown name '\(name)'", at: pointer)
        }
      }
    } else if let last = graph.nodes.indices.last {
      outputs.append((graph.nodes[last].id, .node(last)))
    }
    if outputs.isEmpty && errors.isEmpty {
      report(.semantic, "the graph has no output: it lists no nodes and names no outputs", at: base)
    }
    try throwIfErrors()
  }

  // MARK: Pass 3: order (Kahn's algorithm) and cycles (422)

  /// The node indices in a topological order: Kahn's algorithm, always taking the ready node listed first, so a
  /// listing that is already topological is kept as it is.
  mutating func sort(_ graph: RawGraph) throws(Diagnostics) -> [Int] {
    let count = graph.nodes.count
    var inDegree = [Int](repeating: 0, count: count)
    // Dependents in compressed rows: the dependents of node j are dependents[start[j]..<start[j + 1]].
    var start = [Int](repeating: 0, count: count + 1)
    for (node, arguments) in references.enumerated() {
      for case .node(let target) in arguments {
        inDegree[node] += 1
        start[target + 1] += 1
      }
    }
    for index in 0..<count { start[index + 1] += start[index] }
    var dependents = [Int](repeating: 0, count: start[count])
    var fill = start
    for (node, arguments) in references.enumerated() {
      for case .node(let target) in arguments {
        dependents[fill[target]] = node
        fill[target] += 1
      }
    }
    var ready = MinHeap()
    for node in 0..<count where inDegree[node] == 0 { ready.push(node) }
    var order: [Int] = []
    order.reserveCapacity(count)
    while let node = ready.pop() {
      order.append(node)
      for dependent in dependents[start[node]..<start[node + 1]] {
        inDegree[dependent] -= 1
        if inDegree[dependent] == 0 { ready.push(dependent) }
      }
    }
    if order.count < count { reportCycles(graph, unsorted: inDegree.map { $0 > 0 }) }
    try throwIfErrors()
    return order
  }

  /// Finds cycles among the nodes Kahn's algorithm could not order. Each such node has an argument that is also
  /// unordered, so walking from argument to argument must come back to a node already on the walk: that loop is a
  /// cycle. Every node is walked at most once.
  private mutating func reportCycles(_ graph: RawGraph, unsorted: [Bool]) {
    var state = [UInt8](repeating: 0, count: unsorted.count)  // 0 new, 1 on the current walk, 2 done
    var step = [Int](repeating: 0, count: unsorted.count)
    for root in unsorted.indices where unsorted[root] && state[root] == 0 {
      var walk: [Int] = []
      var node = root
      while true {
        state[node] = 1
        step[node] = walk.count
        walk.append(node)
        var next = -1
        for case .node(let target) in references[node] where unsorted[target] {
          next = target
          break
        }
        precondition(next >= 0, "an unordered node has no unordered argument")
        if state[next] == 1 {
          // The walk goes from a node to its argument, against the flow of data; reverse it for the message.
          let cycle = Array(walk[step[next]...].reversed())
          let first = cycle.indices.min { cycle[$0] < cycle[$1] }!
          let rotated = Array(cycle[first...] + cycle[..<first])
          let shown = rotated.prefix(20).map { "'\(graph.nodes[$0].id)'" }
          let path =
            (shown + (rotated.count > 20 ? ["…"] : [])).joined(separator: " -> ")
            + " -> '\(graph.nodes[rotated[0]].id)'"
          report(
            .semantic, "the graph has a cycle of \(rotated.count) node\(rotated.count == 1 ? "" : "s"): \(path)",
            at: nodesPointer.appending(rotated[0]))
          break
        }
        if state[next] == 2 { break }
        node = next
      }
      for visited in walk { state[visited] = 2 }
    }
  }

  // MARK: Building the graph

  func build(_ raw: RawGraph, order: [Int]) -> Graph {
    var graph = Graph()
    graph.source = .json(at: base)
    graph.nodes.reserveCapacity(order.count + (raw.inputs?.count ?? 0))
    var inputs: [String: Int] = [:]
    var constants: [UInt64: Int] = [:]
    if let declaredInputs = raw.inputs {
      for (name, shape) in declaredInputs {
        graph.declaredShapes[name] = shape
        inputs[name] = graph.nodes.count
        graph.nodes.append(Graph.Node(kind: .input(name), position: -1))
      }
    }
    var index = [Int](repeating: -1, count: raw.nodes.count)
    func node(for reference: Reference, position: Int) -> Int {
      switch reference {
      case .node(let target):
        return index[target]
      case .input(let name):
        if let existing = inputs[name] { return existing }
        inputs[name] = graph.nodes.count
        graph.nodes.append(Graph.Node(kind: .input(name), position: position))
        return graph.nodes.count - 1
      case .literal(let value):
        if let existing = constants[value.bitPattern] { return existing }
        constants[value.bitPattern] = graph.nodes.count
        graph.nodes.append(Graph.Node(kind: .constant(value), position: position))
        return graph.nodes.count - 1
      }
    }
    for position in order {
      let rawNode = raw.nodes[position]
      let arguments = references[position].map { node(for: $0, position: position) }
      let attributes = rawNode.attributes.map { (name: $0.name, value: $0.value, position: position) }
      index[position] = graph.nodes.count
      graph.nodes.append(
        Graph.Node(kind: .operation(name: rawNode.op, arguments: arguments, attributes: attributes), position: position)
      )
    }
    graph.outputs = outputs.map { (name: $0.name, node: node(for: $0.reference, position: -1)) }
    return graph
  }
}

/// A binary min-heap of node indices.
private struct MinHeap {
  private var items: [Int] = []

  mutating func push(_ item: Int) {
    items.append(item)
    var child = items.count - 1
    while child > 0 {
      let parent = (child - 1) / 2
      guard items[child] < items[parent] else { break }
      items.swapAt(child, parent)
      child = parent
    }
  }

  mutating func pop() -> Int? {
    guard let top = items.first else { return nil }
    let last = items.removeLast()
    if items.isEmpty { return top }
    items[0] = last
    var parent = 0
    while true {
      let left = 2 * parent + 1
      guard left < items.count else { break }
      let right = left + 1
      let child = right < items.count && items[right] < items[left] ? right : left
      guard items[child] < items[parent] else { break }
      items.swapAt(child, parent)
      parent = child
    }
    return top
  }
}
