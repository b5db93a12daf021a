import AdjointEngine

/// Compiles a ``Graph`` to an engine ``Program`` for given input shapes, checking ops, arities, attributes and shapes.
///
/// One loop over the nodes, which are already in topological order; no recursion. Wire ops that are not engine
/// primitives are lowered here: `mean` to `sum` and `div`, `dot` to `matmul`, `outer` to `reshape` and `mul`,
/// `stack` to `reshape` and `concat`, `squeeze` and `expand_dims` to `reshape`, `const` to a constant.
public enum GraphCompiler {
  /// Compiles `graph` for inputs of the given shapes.
  ///
  /// - Parameters:
  ///   - graph: the function.
  ///   - inputShapes: the shape of every input of `graph`, by name.
  /// - Returns: a verified program whose inputs are the graph's, in the order of their nodes, and whose outputs are
  ///   the graph's. Each instruction's origin is the ``Graph/Node/position`` of the node that produced it (an
  ///   `expr` offset, or the index of the node in a JSON graph's `nodes`).
  /// - Throws: a semantic ``Diagnostic`` at the node (or attribute) that cannot be compiled: an `expr` offset, or
  ///   for a JSON graph the pointer of the node (`/graph/nodes/3`) or attribute (`/graph/nodes/3/attrs/axis`).
  ///   A result over `limits` is a ``Diagnostic/Kind/limit`` diagnostic (HTTP 413).
  public static func compile(
    _ graph: Graph, inputShapes: [String: [Int]], limits: ProgramLimits = ProgramLimits()
  ) throws(Diagnostic) -> Program {
    var builder = ProgramBuilder(limits: limits)
    var values: [ProgramBuilder.Value] = []
    values.reserveCapacity(graph.nodes.count)
    for node in graph.nodes {
      switch node.kind {
      case .input(let name):
        guard let shape = inputShapes[name] else {
          throw Diagnostic(
            .semantic, "no value is given for the input '\(name)'",
            at: graph.location(ofNodeAt: node.position, input: name))
        }
        guard ShapeRules.isAddressable(shape) else {
          throw Diagnostic(
            .limit, "the input '\(name)' has shape \(shape), too large to address",
            at: graph.location(ofNodeAt: node.position, input: name))
        }
        values.append(builder.input(name, shape: shape))
      case .constant(let value):
        values.append(builder.constant(value))
      case .operation(let name, let arguments, let attributes):
        var lowering = Lowering(
          builder: ProgramBuilder(limits: limits), name: name, position: node.position, source: graph,
          operands: arguments.map { values[$0] }, attributes: attributes)
        // Move the builder in and out, so that it is never copied (its arrays stay uniquely referenced).
        swap(&lowering.builder, &builder)
        let value = try lowering.lower()
        swap(&lowering.builder, &builder)
        values.append(value)
      }
    }
    do {
      return try builder.build(outputs: graph.outputs.map { ($0.name, values[$0.node]) })
    } catch {
      preconditionFailure("the graph compiler built an invalid program: \(error)")
    }
  }
}

/// Lowers one wire op onto engine instructions.
private struct Lowering {
  var builder: ProgramBuilder
  let name: String
  let position: Int
  /// The graph being compiled, to locate errors (a copy-on-write reference, never mutated).
  let source: Graph
  let operands: [ProgramBuilder.Value]
  let attributes: [(name: String, value: Graph.Attribute, position: Int)]

  private var origin: Int32 { Int32(clamping: position) }

  mutating func lower() throws(Diagnostic) -> ProgramBuilder.Value {
    guard let spec = OpCatalog.byName[name] else { throw semantic("unknown op '\(name)'") }
    try checkArity(spec)
    for attribute in attributes where !spec.attributes.contains(attribute.name) {
      let allowed = spec.attributes.isEmpty ? "no attributes" : "only \(spec.attributes.joined(separator: ", "))"
      throw Diagnostic(
        .semantic, "\(name) has no attribute '\(attribute.name)' (it takes \(allowed))",
        at: source.location(ofAttribute: attribute.name, at: attribute.position))
    }
    switch name {
    case "mean":
      let attrs = OpAttributes(axes: try axes("axis"), keepdims: try bool("keepdims") ?? false)
      let total = try apply(.sum, operands, attrs)
      let input = builder.shape(of: operands[0])
      let reduced = (attrs.axes ?? Array(input.indices)).map { input[$0 < 0 ? $0 + input.count : $0] }
      let count = builder.constant(Double(reduced.reduce(1, *)))
      return try apply(.div, [total, count])
    case "dot":
      let (a, b) = (builder.shape(of: operands[0]), builder.shape(of: operands[1]))
      guard a.count == 1, b.count == 1, a == b else {
        throw semantic("dot takes two vectors of equal length, not shapes \(a) and \(b)")
      }
      return try apply(.matmul, operands)
    case "outer":
      let column = try apply(.reshape, [operands[0]], OpAttributes(shape: [-1, 1]))
      let row = try apply(.reshape, [operands[1]], OpAttributes(shape: [1, -1]))
      return try apply(.mul, [column, row])
    case "stack":
      let rank = builder.shape(of: operands[0]).count
      let axis = try int("axis") ?? 0
      guard axis >= -(rank + 1) && axis <= rank else {
        throw semantic("stack: axis \(axis) is out of range for tensors of rank \(rank)")
      }
      let at = axis < 0 ? axis + rank + 1 : axis
      var expanded: [ProgramBuilder.Value] = []
      for operand in operands {
        var shape = builder.shape(of: operand)
        shape.insert(1, at: Swift.min(at, shape.count))
        expanded.append(try apply(.reshape, [operand], OpAttributes(shape: shape)))
      }
      return try apply(.concat, expanded, OpAttributes(axes: [at]))
    case "squeeze":
      let shape = builder.shape(of: operands[0])
      let axes = try self.axes("axis") ?? shape.indices.filter { shape[$0] == 1 }
      var drop: Set<Int> = []
      for axis in axes {
        let a = axis < 0 ? axis + shape.count : axis
        guard a >= 0 && a < shape.count else {
          throw semantic("squeeze: axis \(axis) is out of range for a tensor of rank \(shape.count)")
        }
        guard shape[a] == 1 else { throw semantic("squeeze: axis \(axis) has extent \(shape[a]), not 1") }
        drop.insert(a)
      }
      let kept = shape.indices.filter { !drop.contains($0) }.map { shape[$0] }
      return try apply(.reshape, operands, OpAttributes(shape: kept))
    case "expand_dims":
      var shape = builder.shape(of: operands[0])
      guard let axis = try int("axis") else { throw semantic("expand_dims needs an axis") }
      guard axis >= -(shape.count + 1) && axis <= shape.count else {
        throw semantic("expand_dims: axis \(axis) is out of range for a tensor of rank \(shape.count)")
      }
      shape.insert(1, at: axis < 0 ? axis + shape.count + 1 : axis)
      return try apply(.reshape, operands, OpAttributes(shape: shape))
    case "const":
      guard let attribute = attributes.first(where: { $0.name == "value" }) else {
        throw semantic("const needs a value")
      }
      switch attribute.value {
      case .number(let value): return builder.constant(value)
      case .numbers(let values): return builder.constant(Tensor(shape: [values.count], scalars: values))
      case .tensor(let shape, let scalars): return builder.constant(Tensor(shape: shape, scalars: scalars))
      case .bool:
        throw Diagnostic(
          .semantic, "const: value must be a number or a (nested) list of numbers",
          at: source.location(ofAttribute: attribute.name, at: attribute.position))
      }
    default:
      guard let op = spec.op else { preconditionFailure("no lowering for \(name)") }
      var attrs = OpAttributes()
      attrs.axes = try axes("axis")
      attrs.keepdims = try bool("keepdims") ?? false
      attrs.shape = try ints("shape")
      attrs.permutation = try ints("axes")
      attrs.start = try int("start")
      attrs.stop = try int("stop")
      attrs.step = try int("step")
      attrs.indices = try ints("indices")
      if op == .take && attrs.indices == nil { throw semantic("index needs indices") }
      return try apply(op, operands, attrs)
    }
  }

  private mutating func apply(
    _ op: OpCode, _ operands: [ProgramBuilder.Value], _ attributes: OpAttributes = OpAttributes()
  ) throws(Diagnostic) -> ProgramBuilder.Value {
    do {
      return try builder.apply(op, operands, attributes, origin: origin)
    } catch {
      let message = error.message.replacingPrefix(op.name + ":", with: name + ":")
      throw Diagnostic(error.isLimit ? .limit : .semantic, message, at: source.location(ofNodeAt: position))
    }
  }

  private func checkArity(_ spec: OpCatalog.Spec) throws(Diagnostic) {
    if let arity = spec.arity {
      guard operands.count == arity else {
        throw semantic("\(name) takes \(arity) argument\(arity == 1 ? "" : "s"), not \(operands.count)")
      }
    } else if operands.isEmpty {
      throw semantic("\(name) takes one or more arguments, not 0")
    }
  }

  private func semantic(_ message: String) -> Diagnostic {
    Diagnostic(.semantic, message, at: source.location(ofNodeAt: position))
  }

  private func attribute(_ key: String) -> (value: Graph.Attribute, location: Diagnostic.Location)? {
    attributes.first { $0.name == key }.map { ($0.value, source.location(ofAttribute: key, at: $0.position)) }
  }

  private func integer(_ value: Double, _ key: String, _ position: Diagnostic.Location) throws(Diagnostic) -> Int {
    guard let integer = Int(exactly: value) else {
      throw Diagnostic(.semantic, "\(name): \(key) must be an integer, not \(value)", at: position)
    }
    return integer
  }

  private func int(_ key: String) throws(Diagnostic) -> Int? {
    guard let (value, position) = attribute(key) else { return nil }
    guard case .number(let number) = value else {
      throw Diagnostic(.semantic, "\(name): \(key) must be an integer", at: position)
    }
    return try integer(number, key, position)
  }

  private func ints(_ key: String) throws(Diagnostic) -> [Int]? {
    guard let (value, position) = attribute(key) else { return nil }
    guard case .numbers(let numbers) = value else {
      throw Diagnostic(.semantic, "\(name): \(key) must be a list of integers", at: position)
    }
    var result: [Int] = []
    for number in numbers { result.append(try integer(number, key, position)) }
    return result
  }

  /// An axis attribute: an integer or a list of integers.
  private func axes(_ key: String) throws(Diagnostic) -> [Int]? {
    guard let (value, position) = attribute(key) else { return nil }
    switch value {
    case .number(let number): return [try integer(number, key, position)]
    case .numbers: return try ints(key)
    case .bool, .tensor:
      throw Diagnostic(.semantic, "\(name): \(key) must be an integer or a list of integers", at: position)
    }
  }

  private func bool(_ key: String) throws(Diagnostic) -> Bool? {
    guard let (value, position) = attribute(key) else { return nil }
    guard case .bool(let flag) = value else {
      throw Diagnostic(.semantic, "\(name): \(key) must be true or false", at: position)
    }
    return flag
  }
}

extension String {
  fileprivate func replacingPrefix(_ prefix: String, with replacement: String) -> String {
    hasPrefix(prefix) ? replacement + dropFirst(prefix.count) : self
  }
}
