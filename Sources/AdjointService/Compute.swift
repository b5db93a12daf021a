import AdjointEngine
import AdjointExpressions
import AdjointJSON

/// The compute endpoints: decode the request, compile the function, run the tape, encode the answer.
///
/// Everything here runs on a worker thread. Each step either produces the next value or throws a ``Problem`` that
/// points at the offending part of the request.
struct Compute: Sendable {
  /// What a compute endpoint returns.
  enum Product: Sendable {
    case evaluate
    case gradient
  }

  let limits: ServiceLimits

  private static let knownFields: [Product: Set<String>] = [
    .evaluate: ["expr", "graph", "graph_id", "at"],
    .gradient: ["expr", "graph", "graph_id", "at", "wrt"],
  ]

  /// Answers a request body for `product`, returning the JSON response body.
  func run(_ product: Product, body: [UInt8]) throws(Problem) -> [UInt8] {
    let request = try decodeObject(body)
    for key in request.keys where !(Self.knownFields[product]?.contains(key) ?? false) {
      throw .badRequest("unknown field '\(key)'", pointer: JSONPointer().appending(key).description)
    }
    let graph = try function(of: request)
    let point = try inputs(of: request, graph: graph)
    let program: Program
    do {
      program = try GraphCompiler.compile(graph, inputShapes: point.mapValues(\.shape))
    } catch {
      throw .expression(error, pointer: "/expr")
    }
    let functionPointer: String
    switch graph.source {
    case .expr: functionPointer = "/expr"
    case .json(let pointer): functionPointer = pointer.description
    }
    let workspace = Workspace(program)
    workspace.setInputs(point)

    var writer = JSONWriter(capacity: 256)
    writer.beginObject()
    switch product {
    case .evaluate:
      let values = workspace.evaluate()
      writer.writeKey("values")
      writer.beginObject()
      for (output, value) in zip(program.outputs, values) {
        try checkWritable(value.shape, pointer: functionPointer)
        writer.writeKey(output.name)
        writer.writeTensor(shape: value.shape, data: value.scalars)
      }
      writer.endObject()
    case .gradient:
      let wrt = try self.wrt(of: request, program: program)
      guard program.outputs.count == 1 else {
        throw .unprocessable(
          "the function has \(program.outputs.count) outputs; a gradient needs exactly one (name it with 'output')",
          pointer: functionPointer)
      }
      let outputShape = program.slots[program.outputs[0].slot].shape
      guard Tensor.elementCount(outputShape) == 1 else {
        // Located at the output's node: its position in an expr, its pointer in a graph.
        let message = "the output has shape \(outputShape); a gradient needs an output with exactly one element"
        let node = graph.outputs[0].node
        throw .expression(
          Diagnostic(.semantic, message, at: graph.location(ofNodeAt: graph.nodes[node].position)), pointer: "/expr")
      }
      let (value, adjoints) = workspace.valueWithPullback()
      writer.writeKey("value")
      writer.writeTensor(shape: value.shape, data: value.scalars)
      writer.writeKey("gradient")
      writer.beginObject()
      for index in wrt {
        let name = program.inputs[index].name
        try checkWritable(adjoints[index].shape, pointer: JSONPointer().appending("at").appending(name).description)
        writer.writeKey(name)
        writer.writeTensor(shape: adjoints[index].shape, data: adjoints[index].scalars)
      }
      writer.endObject()
    }
    writer.endObject()
    return writer.bytes
  }

  /// Throws 413 when the nested form of a result of `shape` would hold more arrays than a tensor may hold elements:
  /// an empty tensor such as `[4294967296, 0]` has no elements, but its nested form is 2^32 arrays (`[[],[],...]`).
  private func checkWritable(_ shape: [Int], pointer: String) throws(Problem) {
    var arrays = 0
    var product = 1
    for extent in shape.dropLast() {
      product = product.multipliedReportingOverflow(by: extent).partialValue
      arrays = arrays.addingReportingOverflow(product).partialValue
      if product == 0 { break }
      guard product > 0, arrays <= limits.maxTensorElements else {
        throw .tooLarge(
          "the result of shape \(shape) has more than \(limits.maxTensorElements) nested arrays", pointer: pointer)
      }
    }
  }

  // MARK: Decoding

  private func decodeObject(_ body: [UInt8]) throws(Problem) -> JSONObject {
    let document: JSONValue
    do {
      document = try JSONParser.parse(body, limits: JSONLimits(maxDepth: limits.maxJSONDepth))
    } catch {
      throw .badRequest("the body is not valid JSON: \(error.description)", pointer: error.pointer.description)
    }
    guard case .object(let object) = document else {
      throw .badRequest("the body must be a JSON object, not \(document.kindDescription)", pointer: "")
    }
    return object
  }

  private func function(of request: JSONObject) throws(Problem) -> Graph {
    let given = ["expr", "graph", "graph_id"].filter { request[$0] != nil }
    guard given.count == 1 else {
      let detail =
        given.isEmpty
        ? "the request must give the function as exactly one of 'expr', 'graph' or 'graph_id'"
        : "the request gives the function more than once (\(given.joined(separator: ", "))); give exactly one"
      throw .badRequest(detail, pointer: given.count > 1 ? "/\(given[1])" : "")
    }
    if let graph = request["graph"] {
      do {
        return try GraphDecoder.decode(
          graph, at: "/graph",
          limits: GraphDecoder.Limits(maxNodes: limits.maxGraphNodes, maxTensorElements: limits.maxTensorElements))
      } catch {
        throw .diagnostics(error, exprPointer: "/expr")
      }
    }
    guard case .string(let source)? = request["expr"] else {
      if request["expr"] != nil { throw .badRequest("'expr' must be a string", pointer: "/expr") }
      throw .unprocessable(
        "'\(given[0])' is not supported yet; send the function as 'expr' or 'graph'", pointer: "/\(given[0])")
    }
    if source.unicodeScalars.count > limits.maxExprLength {
      // The position is that of the first character past the limit.
      let message = "'expr' is longer than the limit of \(limits.maxExprLength) characters"
      throw .expression(Diagnostic(.limit, message, at: limits.maxExprLength), pointer: "/expr")
    }
    do {
      return try ExprParser.parse(source, maxNodes: limits.maxGraphNodes)
    } catch {
      throw .expression(error, pointer: "/expr")
    }
  }

  private func inputs(of request: JSONObject, graph: Graph) throws(Problem) -> [String: Tensor] {
    guard let at = request["at"] else {
      throw .badRequest("the request must give the point as 'at'", pointer: "")
    }
    guard case .object(let values) = at else {
      throw .badRequest("'at' must be an object mapping input names to tensors", pointer: "/at")
    }
    let names = graph.inputNames
    let known = Set(names)
    var point: [String: Tensor] = [:]
    for (name, value) in zip(values.keys, values.values) {
      let pointer = JSONPointer().appending("at").appending(name)
      guard known.contains(name) else {
        throw .unprocessable("'\(name)' is not an input of the function", pointer: pointer.description)
      }
      let tensor: (shape: [Int], data: [Double])
      do {
        tensor = try JSONTensorDecoding.decode(value, maxElements: limits.maxTensorElements, at: pointer)
      } catch {
        if error.kind == .overLimit { throw .tooLarge(error.message, pointer: error.pointer.description) }
        throw .badRequest(error.message, pointer: error.pointer.description)
      }
      guard ShapeRules.isAddressable(tensor.shape) else {
        // E.g. {"shape": [0, 2^52, 2^52], "data": []}: no elements, but extents no index arithmetic can hold.
        throw .tooLarge("the shape \(tensor.shape) is too large", pointer: pointer.description)
      }
      if let declared = graph.declaredShapes[name], declared != tensor.shape {
        throw .unprocessable(
          "the value of '\(name)' has shape \(tensor.shape), but the graph declares \(declared)",
          pointer: pointer.description)
      }
      point[name] = Tensor(shape: tensor.shape, scalars: tensor.data)
    }
    for name in names where point[name] == nil {
      throw .unprocessable("no value is given for the input '\(name)'", pointer: "/at")
    }
    return point
  }

  /// The indices (in `program.inputs`) of the inputs to differentiate with respect to.
  private func wrt(of request: JSONObject, program: Program) throws(Problem) -> [Int] {
    guard let wrt = request["wrt"] else { return Array(program.inputs.indices) }
    guard case .array(let names) = wrt else {
      throw .badRequest("'wrt' must be an array of input names", pointer: "/wrt")
    }
    var indices: [Int] = []
    for (position, element) in names.enumerated() {
      guard case .string(let name) = element else {
        throw .badRequest("'wrt' must be an array of input names", pointer: "/wrt/\(position)")
      }
      guard let index = program.inputs.firstIndex(where: { $0.name == name }) else {
        throw .unprocessable("'\(name)' is not an input of the function", pointer: "/wrt/\(position)")
      }
      if !indices.contains(index) { indices.append(index) }
    }
    return indices
  }
}
