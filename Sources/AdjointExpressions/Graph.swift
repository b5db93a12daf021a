import AdjointEngine
import AdjointJSON

/// A function as a flat list of nodes in topological order: what the `expr` parser and the JSON `graph` decoder
/// produce, before either is compiled to a ``Program``.
///
/// Being flat, a graph is compiled by one loop over its nodes, never by recursion, however deep the expression.
public struct Graph: Sendable, Equatable {
  /// The value of a keyword argument or attribute.
  public enum Attribute: Sendable, Equatable {
    /// A number, e.g. `axis=1`.
    case number(Double)
    /// A list of numbers, e.g. `axis=[0, 1]`.
    case numbers([Double])
    /// `true` or `false`.
    case bool(Bool)
    /// A nested list of numbers of rank 2 or more (row-major), e.g. the `value` of a `const` node in a JSON graph.
    case tensor(shape: [Int], scalars: [Double])
  }

  /// What a node is.
  public enum Kind: Sendable, Equatable {
    /// An input of the function, named by the request.
    case input(String)
    /// A rank-0 literal.
    case constant(Double)
    /// An operation applied to earlier nodes.
    case operation(name: String, arguments: [Int], attributes: [(name: String, value: Attribute, position: Int)])

    /// Inputs by name, constants by bit pattern, operations by name, arguments and attributes (not their positions).
    public static func == (lhs: Kind, rhs: Kind) -> Bool {
      switch (lhs, rhs) {
      case (.input(let a), .input(let b)): return a == b
      case (.constant(let a), .constant(let b)): return a.bitPattern == b.bitPattern
      case (.operation(let n1, let a1, let t1), .operation(let n2, let a2, let t2)):
        return n1 == n2 && a1 == a2 && t1.count == t2.count
          && zip(t1, t2).allSatisfy { $0.name == $1.name && $0.value == $1.value }
      default: return false
      }
    }
  }

  /// One node. `position` locates it in the source: a character offset in `expr`, or the index of the node in the
  /// `nodes` array of a JSON graph (-1 for an input of a JSON graph). It becomes the origin of the node's
  /// instructions in the compiled program.
  public struct Node: Sendable, Equatable {
    /// What the node computes.
    public var kind: Kind
    /// Where the node comes from in the source, for errors.
    public var position: Int

    /// Creates a node.
    public init(kind: Kind, position: Int) {
      self.kind = kind
      self.position = position
    }
  }

  /// What the node positions of a graph refer to.
  public enum Source: Sendable, Equatable {
    /// Offsets into an `expr` text.
    case expr
    /// Indices into the `nodes` array of the JSON graph at `pointer` in the request (e.g. `/graph`).
    case json(at: JSONPointer)
  }

  /// The nodes; a node's arguments are indices of earlier nodes.
  public var nodes: [Node] = []
  /// The named outputs.
  public var outputs: [(name: String, node: Int)] = []
  /// What the node positions refer to; ``GraphCompiler`` locates its errors with it.
  public var source: Source = .expr
  /// The shapes a JSON graph declares for its inputs (`inputs`), by name; empty when none are declared.
  public var declaredShapes: [String: [Int]] = [:]

  /// Creates an empty graph.
  public init() {}

  /// The names of the inputs, in the order of their nodes (first use in `expr`; declaration order in a JSON graph
  /// that declares its inputs).
  public var inputNames: [String] {
    nodes.compactMap { if case .input(let name) = $0.kind { name } else { nil } }
  }

  /// Equal nodes (kinds and positions) and equal outputs; the source and declared shapes are not compared.
  public static func == (lhs: Graph, rhs: Graph) -> Bool {
    lhs.nodes == rhs.nodes && lhs.outputs.elementsEqual(rhs.outputs) { $0.name == $1.name && $0.node == $1.node }
  }

  /// Where a node of this graph is in the request: its `expr` offset, or the JSON Pointer of the node.
  public func location(ofNodeAt position: Int, input: String? = nil) -> Diagnostic.Location {
    switch source {
    case .expr: return .position(position)
    case .json(let base):
      if position < 0 {
        return .pointer(input.map { base.appending("inputs").appending($0) } ?? base)
      }
      return .pointer(base.appending("nodes").appending(position))
    }
  }

  /// Where an attribute of a node is in the request: the `expr` offset of the keyword, or the JSON Pointer of the
  /// attribute (`/graph/nodes/3/attrs/axis`).
  public func location(ofAttribute name: String, at position: Int) -> Diagnostic.Location {
    switch source {
    case .expr: return .position(position)
    case .json(let base):
      return .pointer(base.appending("nodes").appending(position).appending("attrs").appending(name))
    }
  }
}

/// A mistake in a function, located in its source.
public struct Diagnostic: Error, Sendable, Equatable, CustomStringConvertible {
  /// How the service should answer it.
  public enum Kind: Sendable, Equatable {
    /// The text cannot be read, or a JSON graph has the wrong types: HTTP 400.
    case syntax
    /// Well-formed but meaningless (unknown op, shape mismatch): HTTP 422.
    case semantic
    /// Over a configured limit: HTTP 413.
    case limit
  }

  /// Where a diagnostic points.
  public enum Location: Sendable, Equatable, CustomStringConvertible {
    /// The 0-based offset of the offending character in `expr`, counted in Unicode scalars.
    case position(Int)
    /// A JSON Pointer into the request, e.g. `/graph/nodes/2/args/0`.
    case pointer(JSONPointer)

    /// `offset 12` or the pointer text.
    public var description: String {
      switch self {
      case .position(let offset): return "offset \(offset)"
      case .pointer(let pointer): return pointer.description
      }
    }
  }

  /// How the service should answer it.
  public let kind: Kind
  /// What is wrong, for a person.
  public let message: String
  /// Where it is wrong.
  public let location: Location

  /// The 0-based offset of the offending character in `expr`, counted in Unicode scalars; nil for a JSON graph.
  public var position: Int? {
    if case .position(let offset) = location { return offset }
    return nil
  }

  /// The JSON Pointer into the request, for a JSON graph; nil for `expr`.
  public var pointer: JSONPointer? {
    if case .pointer(let pointer) = location { return pointer }
    return nil
  }

  /// Creates a diagnostic at an offset in `expr`.
  public init(_ kind: Kind, _ message: String, at position: Int) {
    self.init(kind, message, at: .position(position))
  }

  /// Creates a diagnostic at a JSON Pointer into the request.
  public init(_ kind: Kind, _ message: String, at pointer: JSONPointer) {
    self.init(kind, message, at: .pointer(pointer))
  }

  /// Creates a diagnostic at a location.
  public init(_ kind: Kind, _ message: String, at location: Location) {
    self.kind = kind
    self.message = message
    self.location = location
  }

  /// "message (at location)".
  public var description: String { "\(message) (at \(location))" }
}

/// Several independent mistakes in a function, reported together (e.g. every unknown name in a JSON graph).
///
/// All entries have the same ``Diagnostic/Kind``: a decoder reports its type errors (400) before it looks for
/// meaning (422).
public struct Diagnostics: Error, Sendable, Equatable {
  /// The mistakes, in the order of the request; never empty.
  public var entries: [Diagnostic]

  /// The kind of the entries (that of the first).
  public var kind: Diagnostic.Kind { entries[0].kind }

  /// Wraps one or more diagnostics.
  ///
  /// - Precondition: `entries` is not empty.
  public init(_ entries: [Diagnostic]) {
    precondition(!entries.isEmpty, "Diagnostics needs at least one entry")
    self.entries = entries
  }

  /// Wraps one diagnostic.
  public init(_ diagnostic: Diagnostic) { entries = [diagnostic] }
}
