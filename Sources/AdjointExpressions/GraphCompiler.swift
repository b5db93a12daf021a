import AdjointEngine

/// Compiles a ``Graph`` to an engine ``Program`` for given input shapes, checking ops, arities, attributes and shapes.
///
/// One loop over the nodes, which are already in topological order; no recursion.
public enum GraphCompiler {
  /// Compiles `graph` for inputs of the given shapes.
  ///
  /// - Parameters:
  ///   - graph: the function.
  ///   - inputShapes: the shape of every input of `graph`, by name.
  /// - Returns: a verified program whose inputs are the graph's, in order of first use, and whose outputs are the
  ///   graph's. Each instruction's origin is the source position of the node that produced it.
  /// - Throws: a semantic ``Diagnostic`` at the node that cannot be compiled.
  public static func compile(_ graph: Graph, inputShapes: [String: [Int]]) throws(Diagnostic) -> Program {
    var builder = ProgramBuilder()
    var values: [ProgramBuilder.Value] = []
    values.reserveCapacity(graph.nodes.count)
    for node in graph.nodes {
      switch node.kind {
      case .input(let name):
        guard let shape = inputShapes[name] else {
          throw Diagnostic(.semantic, "no value is given for the input '\(name)'", at: node.position)
        }
        values.append(builder.input(name, shape: shape))
      case .constant(let value):
        values.append(builder.constant(value))
      case .operation(let name, let arguments, let attributes):
        guard let op = OpCode(name: name) else {
          throw Diagnostic(.semantic, "unknown op '\(name)'", at: node.position)
        }
        guard arguments.count == op.arity else {
          let plural = op.arity == 1 ? "" : "s"
          throw Diagnostic(
            .semantic, "\(name) takes \(op.arity) argument\(plural), not \(arguments.count)", at: node.position)
        }
        if let attribute = attributes.first {
          throw Diagnostic(.semantic, "\(name) has no attribute '\(attribute.name)'", at: attribute.position)
        }
        do {
          let operands = arguments.map { values[$0] }
          let value =
            operands.count == 2
            ? try builder.apply(op, operands[0], operands[1], origin: Int32(clamping: node.position))
            : try builder.apply(op, operands[0], origin: Int32(clamping: node.position))
          values.append(value)
        } catch {
          throw Diagnostic(.semantic, error.message, at: node.position)
        }
      }
    }
    do {
      return try builder.build(outputs: graph.outputs.map { ($0.name, values[$0.node]) })
    } catch {
      preconditionFailure("the graph compiler built an invalid program: \(error)")
    }
  }
}
