import AdjointEngine
import AdjointExpressions
import AdjointJSON

/// Batches of scalar points through an elementwise function, run as one vectorised program (as `jax.vmap` would).
///
/// When every input of every point is a scalar and every operation of the function is elementwise, the points are
/// independent lanes of one program over vectors of length N: the forward pass gives every point's value at once,
/// a reverse pass seeded with ones gives every point's gradient (no lane reaches another), a forward-mode pass gives
/// every JVP, and forward-over-reverse along one unit input direction gives one column of every point's Hessian.
/// This replaces N small replays, each paying the interpreter's dispatch per instruction, with blocked loops over
/// vectors. Values agree with the point-by-point path to rounding (the vector kernels may round the last bit
/// differently).
extension Compute {
  /// Operations that act on each element alone (with NumPy broadcasting of scalars).
  private static let elementwise: Set<String> = [
    "add", "sub", "mul", "div", "pow", "maximum", "minimum", "atan2", "neg", "abs", "sign", "exp", "log", "log1p",
    "expm1", "sqrt", "square", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "sigmoid", "relu",
    "softplus", "erf", "where", "lt", "le", "gt", "ge", "eq", "ne", "stop_gradient",
  ]

  /// Points per vectorised program; larger batches run as several programs of this length, spread over the workers.
  static let vectorLength = 4096

  /// Whether `graph` computes each element from the same element of its inputs alone.
  static func isElementwise(_ graph: Graph) -> Bool {
    graph.nodes.allSatisfy { node in
      switch node.kind {
      case .input, .constant: true
      case .operation(let name, _, let attributes): attributes.isEmpty && elementwise.contains(name)
      }
    }
  }

  /// The batch answered by vectorised programs, or `nil` when the function or the product does not allow it (the
  /// caller then answers point by point). `columns` holds, per input, its value at each of the `count` points.
  func vectorizedBatch(
    _ product: Product, _ settings: Settings, function: Function, columns: [[Double]], count: Int,
    deadline: Deadline
  ) throws(Problem) -> [UInt8]? {
    guard product != .gradcheck, !settings.checkNumerics, count >= 2, Self.isElementwise(function.graph),
      settings.tangents.allSatisfy({ $0.1?.shape.isEmpty ?? true }), settings.cotangent?.shape.isEmpty ?? true
    else { return nil }
    let inputs = function.names.count
    let length = Self.vectorLength
    let parts = (count + length - 1) / length
    let total = count
    let lanes = { @Sendable (part: Int) in (part * length)..<min(total, (part + 1) * length) }
    // Compile (or find) the programs first: at most two lengths.
    var compiled: [Int: CompiledProgram] = [:]
    for part in 0..<parts {
      let count = lanes(part).count
      if compiled[count] == nil {
        guard let program = try vectorProgram(function, length: count) else { return nil }
        guard try checkVectorOutputs(product, program.program, length: count, function: function) else { return nil }
        compiled[count] = program
      }
    }
    let outcome = BatchOutcome(parts: parts)
    let programs = compiled
    let allColumns = columns
    pool.fanOut(parts) { part in
      let range = lanes(part)
      guard let compiled = programs[range.count] else { return }
      do throws(Problem) {
        try deadline.check()
        let bytes = try compiled.withWorkspace { workspace throws(Problem) in
          for k in 0..<inputs {
            if let index = compiled.inputIndex[k] { workspace.setInput(index, Array(allColumns[k][range])) }
          }
          return answerLanes(
            product, settings, function: function, compiled: compiled, workspace: workspace, whole: parts == 1)
        }
        outcome.finish(part, bytes)
      } catch {
        outcome.fail(at: range.lowerBound, error)
      }
    }
    if let problem = outcome.firstProblem { throw problem }
    // One part wrote the whole response; several wrote arrays that are joined.
    return parts == 1 ? outcome.fragments[0] : joinResults(outcome)
  }

  /// The program over vectors of `length` lanes, or `nil` when the function does not compile that way.
  private func vectorProgram(_ function: Function, length: Int) throws(Problem) -> CompiledProgram? {
    let shapes = [[Int]](repeating: [length], count: function.names.count)
    let key = ProgramKey(function: function.key, shapes: shapes)
    do {
      return try cache.program(for: key, names: function.names) { () throws(Problem) -> Program in
        var inputShapes: [String: [Int]] = [:]
        for name in function.names { inputShapes[name] = [length] }
        do throws(Diagnostic) {
          return try GraphCompiler.compile(function.graph, inputShapes: inputShapes)
        } catch {
          throw function.problem(error)
        }
      }
    } catch {
      // The point-by-point path reports the function's mistakes with the right locations.
      return nil
    }
  }

  /// Whether every output has one lane per point (a function whose output does not depend on its inputs is
  /// answered point by point), and the product's output rules hold.
  private func checkVectorOutputs(_ product: Product, _ program: Program, length: Int, function: Function)
    throws(Problem) -> Bool
  {
    guard program.outputs.allSatisfy({ program.slots[$0.slot].shape == [length] }) else { return false }
    guard !product.needsOneOutput || program.outputs.count == 1 else { return false }
    return true
  }

  /// The pieces of one lane's `{"value": v, "<key>": {"<name>": g, ...}}`: the opening with its leading comma
  /// (`,{"value":`), the piece before each name's number (`,"gradient":{"x":`, then `,"y":`) end to end in `members`,
  /// piece i ending at `memberEnds[i]`, and the closing.
  private static func lanePieces(key: String, names: [String]) -> (
    opening: [UInt8], members: [UInt8], memberEnds: [Int], closing: [UInt8]
  ) {
    func rendered(_ key: String) -> [UInt8] {
      var writer = JSONWriter(capacity: 32)
      writer.writeKey(key)
      return writer.bytes
    }
    let opening = Array(",{".utf8) + rendered("value")
    var members: [UInt8] = []
    var memberEnds: [Int] = []
    for (index, name) in names.enumerated() {
      members += index == 0 ? [UInt8(ascii: ",")] + rendered(key) + [UInt8(ascii: "{")] : [UInt8(ascii: ",")]
      members += rendered(name)
      memberEnds.append(members.count)
    }
    // No names: the member object is empty.
    let closing = names.isEmpty ? [UInt8(ascii: ",")] + rendered(key) + Array("{}}".utf8) : Array("}}".utf8)
    return (opening, members, memberEnds, closing)
  }

  /// Runs `product` over every lane and writes the lanes' results, as the elements of a JSON array, or with `whole`
  /// as the whole response (`{"results": [...]}`), which saves copying it.
  private func answerLanes(
    _ product: Product, _ settings: Settings, function: Function, compiled: CompiledProgram, workspace: Workspace,
    whole: Bool
  ) -> [UInt8] {
    let program = compiled.program
    let lanes = program.slots[program.outputs[0].slot].count
    let wrt =
      settings.wrt.map { positions in positions.compactMap { compiled.inputIndex[$0] } }
      ?? Array(program.inputs.indices)
    let names = wrt.map { program.inputs[$0].name }
    let layout = settings.layout
    var writer = JSONWriter(capacity: 48 * lanes * (1 + names.count * names.count))
    func scalar(_ value: Double, _ writer: inout JSONWriter) {
      if layout == .nested { writer.write(value) } else { writer.writeTensor(shape: [], data: [value], layout: layout) }
    }
    if whole {
      writer.beginObject()
      writer.writeKey("results")
    }
    writer.beginArray()
    switch product {
    case .evaluate:
      let values = workspace.evaluate()
      for lane in 0..<lanes {
        writer.beginObject()
        writer.writeKey("values")
        writer.beginObject()
        for (output, value) in zip(program.outputs, values) {
          writer.writeKey(output.name)
          scalar(value.scalars[lane], &writer)
        }
        writer.endObject()
        writer.endObject()
      }

    case .gradient, .vjp, .jacobian:
      let key = product == .gradient ? "gradient" : product == .vjp ? "vjp" : "jacobian"
      let value: Tensor
      var columns: [[Double]]
      if product == .jacobian && settings.mode.runsForward(columns: wrt.count, rows: 1) {
        // One JVP per input, along a unit tangent in every lane.
        value = workspace.evaluate()[0]
        columns = wrt.map { index in
          workspace.valueWithDifferential(tangents: [index: [Double](repeating: 1, count: lanes)]).tangent.scalars
        }
      } else {
        let seed = settings.cotangent.map { [Double](repeating: $0.scalars[0], count: lanes) }
        let (pulled, adjoints) = workspace.valueWithPullback(seed: seed, wrt: wrt)
        value = pulled
        columns = wrt.map { adjoints[$0].scalars }
      }
      if layout == .nested {
        // `{"value":` v `,"gradient":{"x":` x `,"y":` y `}}`, the pieces rendered once.
        let pieces = Self.lanePieces(key: key, names: names)
        // The pieces and the columns (lane by lane) are read through buffers in the lane loop, which then retains no
        // array per lane (iterating arrays of arrays did, twice per member: 4% of S2's time).
        let memberEnds = pieces.memberEnds
        let width = columns.count
        var byLane = [Double](repeating: 0, count: lanes * width)
        for (c, column) in columns.enumerated() {
          for lane in 0..<lanes { byLane[lane * width + c] = column[lane] }
        }
        pieces.members.withUnsafeBytes { memberBytes in
          pieces.opening.withUnsafeBytes { opening in
            pieces.closing.withUnsafeBytes { closing in
              for lane in 0..<lanes {
                writer.writeFragment(lane == 0 ? UnsafeRawBufferPointer(rebasing: opening.dropFirst()) : opening)
                writer.write(value.scalars[lane])
                var start = 0
                for c in 0..<width {
                  writer.writeFragment(UnsafeRawBufferPointer(rebasing: memberBytes[start..<memberEnds[c]]))
                  start = memberEnds[c]
                  writer.write(byLane[lane * width + c])
                }
                writer.writeFragment(closing)
              }
            }
          }
        }
      } else {
        for lane in 0..<lanes {
          writer.beginObject()
          writer.writeKey("value")
          scalar(value.scalars[lane], &writer)
          writer.writeKey(key)
          writer.beginObject()
          for (column, name) in zip(columns, names) {
            writer.writeKey(name)
            scalar(column[lane], &writer)
          }
          writer.endObject()
          writer.endObject()
        }
      }

    case .jvp:
      var tangents: [Int: [Double]] = [:]
      for (k, tangent) in settings.tangents {
        guard let tangent, let index = compiled.inputIndex[k] else { continue }
        tangents[index] = [Double](repeating: tangent.scalars[0], count: lanes)
      }
      let (value, tangent) = workspace.valueWithDifferential(tangents: tangents)
      for lane in 0..<lanes {
        writer.beginObject()
        writer.writeKey("value")
        scalar(value.scalars[lane], &writer)
        writer.writeKey("jvp")
        scalar(tangent.scalars[lane], &writer)
        writer.endObject()
      }

    case .hessian:
      // Column c of every lane's Hessian: forward-over-reverse along the unit direction of input wrt[c].
      var value = [Double](repeating: 0, count: lanes)
      var gradient: [[Double]] = []
      var hessian: [[[Double]]] = []  // [column][row][lane]
      for index in wrt {
        let result = workspace.hessianVectorProduct(
          wrt: wrt, direction: [index: [Double](repeating: 1, count: lanes)])
        hessian.append(result.product.map(\.scalars))
        if gradient.isEmpty { gradient = result.gradient.map(\.scalars) }
      }
      value = workspace.evaluate()[0].scalars
      for lane in 0..<lanes {
        writer.beginObject()
        writer.writeKey("value")
        scalar(value[lane], &writer)
        writer.writeKey("gradient")
        writer.beginObject()
        for (column, name) in zip(gradient, names) {
          writer.writeKey(name)
          scalar(column[lane], &writer)
        }
        writer.endObject()
        writer.writeKey("hessian")
        writer.beginObject()
        for (row, rowName) in names.enumerated() {
          writer.writeKey(rowName)
          writer.beginObject()
          for (column, columnName) in names.enumerated() {
            writer.writeKey(columnName)
            scalar(hessian[column][row][lane], &writer)
          }
          writer.endObject()
        }
        writer.endObject()
        writer.endObject()
      }

    case .gradcheck:
      break
    }
    writer.endArray()
    if whole { writer.endObject() }
    return writer.bytes
  }
}
