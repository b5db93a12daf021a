// The canonical form is what a graph id hashes, so it must depend only on the function, never on how the request
// happened to spell it: the order nodes are listed in, the ids of nodes that are not outputs, whitespace, key order
// or number spelling. Everything here is iterative (an explicit stack), like the decoder.

/// The canonical JSON form of a ``Graph``, and its content id.
///
/// The canonical form is a valid `graph` request member, written compactly (no whitespace) in UTF-8:
///
/// - Members in this order (sorted keys): `inputs` (only when the graph declares shapes; names sorted), `nodes`,
///   `outputs`. A node has `args` (omitted when empty), `attrs` (omitted when empty; keys sorted), `id`, `op`.
/// - Nodes are in a deterministic topological order: a depth-first post-order from the outputs, in order, that
///   visits arguments left to right; nodes no output depends on follow, in the graph's order.
/// - A node that is an output has the output's name as its id; the other nodes get `%0`, `%1`, … in order (a name
///   already taken by an input or output gets `_` appended until it is free). Ids of other nodes are not part of the
///   function, so renaming them does not change the id; input and output names are.
/// - An argument that is an input is its name; a finite rank-0 literal is written inline as a number. A literal that
///   is an output becomes a `const` node. An output that is an input under another name (`expr` `x`, named `out`)
///   becomes `mul(x, 1)`.
/// - Numbers: an integer of magnitude below 2^53 is written without a fraction (`2`, `-3`, `0`); `-0.0` is
///   `-0.0`; other finite numbers in Swift's shortest round-trip form (`0.1`, `1e-05`); non-finite ones as the
///   strings `"NaN"`, `"Infinity"`, `"-Infinity"`. Strings escape `"`, `\` and control characters (`\n`, `\t`, … or
///   `\u00XX`), nothing else.
///
/// An `expr` is parsed to its graph first, so the same text always gets the same id, and a JSON graph listing the
/// same nodes in another order (or with other ids for non-output nodes) gets the same id too.
///
/// ```swift
/// let id = CanonicalGraph.id(of: try ExprParser.parse("y = sin(x) * 2"))  // "sha256:…"
/// ```
public enum CanonicalGraph {
  /// The canonical JSON bytes of `graph`.
  public static func encode(_ graph: Graph) -> [UInt8] {
    var writer = CanonicalWriter()
    writer.write(graph)
    return writer.bytes
  }

  /// The canonical JSON text of `graph`.
  public static func string(_ graph: Graph) -> String {
    String(decoding: encode(graph), as: UTF8.self)
  }

  /// The content id of `graph`: `sha256:` and the hexadecimal SHA-256 of its canonical bytes.
  public static func id(of graph: Graph) -> String {
    "sha256:" + SHA256.hash(encode(graph)).hexString
  }
}

private struct CanonicalWriter {
  var bytes: [UInt8] = []

  /// Whether a node is written as a node (rather than inline, as a name or a number).
  private static func isWrittenAsNode(_ kind: Graph.Kind) -> Bool {
    switch kind {
    case .input: return false
    case .constant(let value): return !value.isFinite
    case .operation: return true
    }
  }

  mutating func write(_ graph: Graph) {
    let nodes = graph.nodes
    let order = Self.order(graph)
    // Outputs name their node when it is written as a node, is not named yet, and the name is not an input's.
    // Other outputs get a node of their own (`const`, or `mul(x, 1)`), named by the output when possible.
    let inputNames = Set(graph.inputNames)
    var name = [String?](repeating: nil, count: nodes.count)
    var taken = inputNames
    for output in graph.outputs { taken.insert(output.name) }
    var extra: [(id: String?, node: Int)] = []
    enum OutputName {
      case given(String)
      case node(Int)
      case extra(Int)
    }
    var outputNames: [OutputName] = []
    for output in graph.outputs {
      let kind = nodes[output.node].kind
      let desired = inputNames.contains(output.name) ? nil : output.name
      if case .input(let input) = kind, input == output.name {
        outputNames.append(.given(input))
      } else if Self.isWrittenAsNode(kind), name[output.node] == nil || desired == nil {
        if let desired { name[output.node] = desired }
        outputNames.append(.node(output.node))
      } else {
        extra.append((desired, output.node))
        outputNames.append(.extra(extra.count - 1))
      }
    }
    var counter = 0
    func generated() -> String {
      var id = "%\(counter)"
      while taken.contains(id) { id += "_" }
      counter += 1
      return id
    }
    for node in order where name[node] == nil { name[node] = generated() }
    for index in extra.indices where extra[index].id == nil { extra[index].id = generated() }

    beginObject()
    if !graph.declaredShapes.isEmpty {
      key("inputs")
      beginObject()
      for (i, input) in graph.declaredShapes.keys.sorted(by: Self.utf8Less).enumerated() {
        if i > 0 { comma() }
        key(input)
        bytes.append(UInt8(ascii: "["))
        for (i, extent) in graph.declaredShapes[input]!.enumerated() {
          if i > 0 { comma() }
          append(String(extent))
        }
        bytes.append(UInt8(ascii: "]"))
      }
      endObject()
      comma()
    }
    key("nodes")
    bytes.append(UInt8(ascii: "["))
    var first = true
    for node in order {
      if !first { comma() }
      first = false
      switch nodes[node].kind {
      case .operation(let op, let arguments, let attributes):
        writeNode(
          id: name[node]!, op: op, arguments: arguments.map { reference(nodes, name, $0) }, attributes: attributes)
      case .constant(let value):
        writeNode(id: name[node]!, op: "const", arguments: [], attributes: [("value", .number(value), 0)])
      case .input:
        preconditionFailure("inputs are not written as nodes")
      }
    }
    for (id, node) in extra {
      if !first { comma() }
      first = false
      if case .constant(let value) = nodes[node].kind {
        writeNode(id: id!, op: "const", arguments: [], attributes: [("value", .number(value), 0)])
      } else {
        writeNode(id: id!, op: "mul", arguments: [reference(nodes, name, node), "1"], attributes: [])
      }
    }
    bytes.append(UInt8(ascii: "]"))
    comma()
    key("outputs")
    bytes.append(UInt8(ascii: "["))
    for (i, output) in outputNames.enumerated() {
      if i > 0 { comma() }
      switch output {
      case .given(let text): string(text)
      case .node(let node): string(name[node]!)
      case .extra(let index): string(extra[index].id!)
      }
    }
    bytes.append(UInt8(ascii: "]"))
    endObject()
  }

  /// How an argument is written: an input's name or a node's id as a JSON string, a literal as a JSON number.
  private func reference(_ nodes: [Graph.Node], _ name: [String?], _ node: Int) -> String {
    switch nodes[node].kind {
    case .input(let input): return Self.quoted(input)
    case .constant(let value) where value.isFinite: return Self.number(value)
    default: return Self.quoted(name[node]!)
    }
  }

  private mutating func writeNode(
    id: String, op: String, arguments: [String], attributes: [(name: String, value: Graph.Attribute, position: Int)]
  ) {
    beginObject()
    if !arguments.isEmpty {
      key("args")
      bytes.append(UInt8(ascii: "["))
      for (i, argument) in arguments.enumerated() {
        if i > 0 { comma() }
        append(argument)
      }
      bytes.append(UInt8(ascii: "]"))
      comma()
    }
    if !attributes.isEmpty {
      key("attrs")
      beginObject()
      for (i, attribute) in attributes.sorted(by: { Self.utf8Less($0.name, $1.name) }).enumerated() {
        if i > 0 { comma() }
        key(attribute.name)
        write(attribute.value)
      }
      endObject()
      comma()
    }
    key("id")
    string(id)
    comma()
    key("op")
    string(op)
    endObject()
  }

  private mutating func write(_ attribute: Graph.Attribute) {
    switch attribute {
    case .number(let value): append(Self.number(value))
    case .bool(let flag): append(flag ? "true" : "false")
    case .numbers(let values): writeNested(shape: [values.count], values)
    case .tensor(let shape, let values): writeNested(shape: shape, values)
    }
  }

  /// Writes row-major `values` as nested lists, iteratively.
  private mutating func writeNested(shape: [Int], _ values: [Double]) {
    let rank = shape.count
    if shape.contains(0) {
      // Empty: open lists down to the first zero extent, then close them.
      let depth = shape.firstIndex(of: 0)! + 1
      for _ in 0..<depth { bytes.append(UInt8(ascii: "[")) }
      for _ in 0..<depth { bytes.append(UInt8(ascii: "]")) }
      return
    }
    var index = [Int](repeating: 0, count: rank)
    for _ in 0..<rank { bytes.append(UInt8(ascii: "[")) }
    for (flat, value) in values.enumerated() {
      if flat > 0 {
        // Close the lists whose index wrapped, separate, and reopen them.
        var axis = rank - 1
        var closed = 0
        while axis >= 0 {
          index[axis] += 1
          if index[axis] < shape[axis] { break }
          index[axis] = 0
          closed += 1
          axis -= 1
        }
        for _ in 0..<closed { bytes.append(UInt8(ascii: "]")) }
        comma()
        for _ in 0..<closed { bytes.append(UInt8(ascii: "[")) }
      }
      append(Self.number(value))
    }
    for _ in 0..<rank { bytes.append(UInt8(ascii: "]")) }
  }

  // MARK: Order

  /// Depth-first post-order from the outputs, arguments left to right, then from every node not yet reached, in
  /// graph order; only nodes written as nodes are listed. Iterative.
  private static func order(_ graph: Graph) -> [Int] {
    let nodes = graph.nodes
    var visited = [Bool](repeating: false, count: nodes.count)
    var order: [Int] = []
    var stack: [(node: Int, next: Int)] = []
    func visit(_ root: Int) {
      guard !visited[root], isWrittenAsNode(nodes[root].kind) else { return }
      visited[root] = true
      stack.append((root, 0))
      while let (node, next) = stack.last {
        let arguments: [Int]
        if case .operation(_, let args, _) = nodes[node].kind { arguments = args } else { arguments = [] }
        if next < arguments.count {
          stack[stack.count - 1].next += 1
          let argument = arguments[next]
          if !visited[argument] && isWrittenAsNode(nodes[argument].kind) {
            visited[argument] = true
            stack.append((argument, 0))
          }
        } else {
          stack.removeLast()
          order.append(node)
        }
      }
    }
    for output in graph.outputs { visit(output.node) }
    for node in nodes.indices { visit(node) }
    return order
  }

  // MARK: Text

  static func utf8Less(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

  static func number(_ value: Double) -> String {
    if value.isNaN { return "\"NaN\"" }
    if value.isInfinite { return value < 0 ? "\"-Infinity\"" : "\"Infinity\"" }
    if value == 0 { return value.sign == .minus ? "-0.0" : "0" }
    if value == value.rounded(), value.magnitude < 9_007_199_254_740_992 { return String(Int(value)) }
    return value.description
  }

  static func quoted(_ text: String) -> String {
    var bytes: [UInt8] = []
    appendQuoted(text, to: &bytes)
    return String(decoding: bytes, as: UTF8.self)
  }

  static func appendQuoted(_ text: String, to bytes: inout [UInt8]) {
    let hex = Array("0123456789abcdef".utf8)
    bytes.append(UInt8(ascii: "\""))
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "\""): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
      case UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
      case 0x08: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
      case 0x0C: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
      case 0x0A: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
      case 0x0D: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
      case 0x09: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
      case 0..<0x20:
        bytes += Array("\\u00".utf8)
        bytes += [hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
      default: bytes.append(byte)
      }
    }
    bytes.append(UInt8(ascii: "\""))
  }

  private mutating func append(_ text: String) { bytes.append(contentsOf: text.utf8) }
  private mutating func string(_ text: String) { Self.appendQuoted(text, to: &bytes) }
  private mutating func key(_ text: String) {
    string(text)
    bytes.append(UInt8(ascii: ":"))
  }
  private mutating func comma() { bytes.append(UInt8(ascii: ",")) }
  private mutating func beginObject() { bytes.append(UInt8(ascii: "{")) }
  private mutating func endObject() { bytes.append(UInt8(ascii: "}")) }
}
