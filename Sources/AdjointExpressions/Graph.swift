import AdjointEngine

/// A function as a flat list of nodes in topological order: what the `expr` parser produces and what the JSON
/// `graph` decoder will produce, before either is compiled to a ``Program``.
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
  }

  /// What a node is.
  public enum Kind: Sendable, Equatable {
    /// An input of the function, named by the request.
    case input(String)
    /// A rank-0 literal.
    case constant(Double)
    /// An operation applied to earlier nodes.
    case operation(name: String, arguments: [Int], attributes: [(name: String, value: Attribute, position: Int)])

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

  /// One node. `position` locates it in the source: a character offset in `expr`.
  public struct Node: Sendable, Equatable {
    /// What the node computes.
    public var kind: Kind
    /// Where the node comes from in the source, for errors.
    public var position: Int
  }

  /// The nodes; a node's arguments are indices of earlier nodes.
  public var nodes: [Node] = []
  /// The named outputs.
  public var outputs: [(name: String, node: Int)] = []

  /// The names of the inputs, in order of first use.
  public var inputNames: [String] {
    nodes.compactMap { if case .input(let name) = $0.kind { name } else { nil } }
  }

  public static func == (lhs: Graph, rhs: Graph) -> Bool {
    lhs.nodes == rhs.nodes && lhs.outputs.elementsEqual(rhs.outputs) { $0.name == $1.name && $0.node == $1.node }
  }
}

/// A mistake in a function, located in its source.
public struct Diagnostic: Error, Sendable, Equatable {
  /// How the service should answer it.
  public enum Kind: Sendable, Equatable {
    /// The text cannot be read: HTTP 400.
    case syntax
    /// Well-formed but meaningless (unknown op, shape mismatch): HTTP 422.
    case semantic
    /// Over a configured limit: HTTP 413.
    case limit
  }

  /// How the service should answer it.
  public let kind: Kind
  /// What is wrong, for a person.
  public let message: String
  /// The 0-based offset of the offending character in `expr`, counted in Unicode scalars.
  public let position: Int

  /// Creates a diagnostic.
  public init(_ kind: Kind, _ message: String, at position: Int) {
    self.kind = kind
    self.message = message
    self.position = position
  }
}
