import AdjointEngine
import AdjointExpressions
import AdjointJSON
import Dispatch
import Locking
import Synchronization

/// When a request must have been answered by, on the monotonic clock.
package struct Deadline: Sendable {
  /// The request's time limit, in seconds.
  package let seconds: Double
  private let due: UInt64

  /// A deadline `seconds` after `start` (nanoseconds of `DispatchTime.now().uptimeNanoseconds`).
  package init(seconds: Double, from start: UInt64 = DispatchTime.now().uptimeNanoseconds) {
    self.seconds = seconds
    let span = seconds >= 1e9 ? UInt64.max / 2 : UInt64(max(0, seconds) * 1e9)
    due = start &+ span
  }

  /// Whether the deadline has passed.
  package var hasPassed: Bool { DispatchTime.now().uptimeNanoseconds > due }

  /// Throws 503 when the deadline has passed.
  package func check() throws(Problem) {
    if hasPassed { throw .deadlinePassed(after: seconds, retryAfter: 1) }
  }
}

/// The compute endpoints: decode the request, find or compile the program, run it, encode the answer.
///
/// Everything here runs on a worker thread. Each step either produces the next value or throws a ``Problem`` that
/// points at the offending part of the request. Batch points, and the rows of large Jacobians and Hessians, are
/// spread over idle workers with ``WorkerPool/fanOut(_:_:)``, each part in a workspace of its own.
package struct Compute: Sendable {
  /// What a compute endpoint returns.
  package enum Product: String, Sendable, CaseIterable {
    case evaluate, gradient, vjp, jvp, jacobian, hessian, gradcheck

    /// The request fields this endpoint reads besides the function, the point(s), `layout` and `check_numerics`.
    var fields: Set<String> {
      switch self {
      case .evaluate: []
      case .gradient, .hessian: ["wrt"]
      case .vjp: ["wrt", "cotangent"]
      case .jvp: ["tangent"]
      case .jacobian: ["wrt", "mode"]
      case .gradcheck: ["wrt", "eps"]
      }
    }

    /// Whether the product needs a function with exactly one output.
    var needsOneOutput: Bool { self != .evaluate }
    /// Whether the product needs that output to hold exactly one element.
    var needsScalarOutput: Bool { self == .gradient || self == .hessian || self == .gradcheck }
    /// The product's name in messages ("a gradient needs ...").
    var noun: String {
      switch self {
      case .evaluate: "an evaluation"
      case .gradient: "a gradient"
      case .vjp: "a VJP"
      case .jvp: "a JVP"
      case .jacobian: "a Jacobian"
      case .hessian: "a Hessian"
      case .gradcheck: "a gradient check"
      }
    }

    /// Whether the product runs a reverse sweep (for `check_numerics`).
    var runsBackward: Bool { self != .evaluate && self != .jvp }
  }

  package let limits: ServiceLimits
  package let cache: ProgramCache
  package let registry: GraphRegistry
  package let pool: WorkerPool
  /// Runs the slices of a large matrix's parse, and the halves of a large matrix product, on the request's worker and
  /// the idle ones (`nil` with one worker).
  private let parallelFor: JSONParallelFor?
  /// Runs the halves of a large matrix product one after the other: for a batch's points (the points are spread
  /// over the workers) and with one worker, so that every answer splits its products as a single request does.
  private static let oneThread: ParallelFor = { count, body in
    for part in 0..<count { body(part) }
  }

  package init(limits: ServiceLimits, cache: ProgramCache, registry: GraphRegistry, pool: WorkerPool) {
    self.limits = limits
    self.cache = cache
    self.registry = registry
    self.pool = pool
    if pool.workers > 1 {
      parallelFor = { count, body in pool.fanOut(count, body) }
    } else {
      parallelFor = nil
    }
  }

  private static let commonFields: Set<String> = [
    "expr", "graph", "graph_id", "at", "batch", "layout", "check_numerics",
  ]

  /// Answers a request body for `product`, returning the JSON response body.
  package func run(_ product: Product, body: [UInt8], deadline: Deadline) throws(Problem) -> [UInt8] {
    try run(product, body: body, deadline: deadline, onlyIfCheap: false)!
  }

  /// Answers a request when it is cheap: one point through a small program (a few microseconds of work), so that
  /// it can be answered on the connection's thread without the two thread switches of a trip to a worker. Returns
  /// `nil`, having computed nothing, when it is not; mistakes found on the way are thrown as usual.
  package func runIfCheap(_ product: Product, body: [UInt8], deadline: Deadline) throws(Problem) -> [UInt8]? {
    try run(product, body: body, deadline: deadline, onlyIfCheap: true)
  }

  /// The body of `GET /ops`: every op of the catalogue with its arity, attributes and documentation, made once.
  package static let opsBody: [UInt8] = {
    var writer = JSONWriter(capacity: 8192)
    writer.beginObject()
    writer.writeKey("ops")
    writer.beginArray()
    for spec in OpCatalog.all {
      writer.beginObject()
      writer.writeKey("name")
      writer.write(spec.name)
      writer.writeKey("arity")
      if let arity = spec.arity { writer.write(arity) } else { writer.writeNull() }
      writer.writeKey("attrs")
      writer.beginArray()
      for attribute in spec.attributes { writer.write(attribute) }
      writer.endArray()
      writer.writeKey("doc")
      writer.write(spec.doc)
      writer.endObject()
    }
    writer.endArray()
    writer.endObject()
    return writer.bytes
  }()

  /// The work, in element-operations, below which a request counts as cheap.
  package static let cheapWork = 8192

  private func run(_ product: Product, body: [UInt8], deadline: Deadline, onlyIfCheap: Bool) throws(Problem)
    -> [UInt8]?
  {
    try deadline.check()
    let request = try decodeObject(body)
    for (key, _) in request where !Self.commonFields.contains(key) && !product.fields.contains(key) {
      throw .badRequest("unknown field '\(key)'", pointer: JSONPointer().appending(key).description)
    }
    if onlyIfCheap && request["batch"] != nil { return nil }
    let options = try Options(request, product: product, limits: limits)
    let function = try self.function(of: request)
    let (batchPoints, single) = try self.points(of: request, function: function)
    let settings = try Settings(options, function: function)

    if let point = single {
      let compiled = try program(function, point: point, pointer: "/at")
      if onlyIfCheap && !Self.isCheap(product, compiled.program) { return nil }
      var writer = JSONWriter(capacity: 256)
      try compiled.withWorkspace { workspace throws(Problem) in
        try answer(
          product, settings, function: function, compiled: compiled, workspace: workspace, point: point,
          pointIndex: nil, fanOut: !onlyIfCheap, deadline: deadline, into: &writer)
      }
      return writer.bytes
    }
    return try batch(product, settings, function: function, points: batchPoints, deadline: deadline)
  }

  /// Whether `product` over `program` at one point is a few microseconds of work: passes over a small arena, one
  /// per Jacobian or Hessian line or finite difference.
  private static func isCheap(_ product: Product, _ program: Program) -> Bool {
    let pass = program.arenaCount + 4 * program.instructionCount
    let inputs = program.inputs.reduce(0) { $0 + program.slots[$1.slot].count }
    let lines: Int
    switch product {
    case .evaluate, .gradient, .vjp, .jvp: lines = 2
    case .jacobian: lines = inputs + 2
    case .hessian, .gradcheck: lines = 2 * inputs + 2
    }
    let (work, overflow) = pass.multipliedReportingOverflow(by: lines)
    return !overflow && work <= cheapWork
  }

  // MARK: Batches

  private func batch(
    _ product: Product, _ settings: Settings, function: Function, points batch: Points, deadline: Deadline
  ) throws(Problem) -> [UInt8] {
    if case .scalars(let columns, let count) = batch,
      let answered = try vectorizedBatch(
        product, settings, function: function, columns: columns, count: count, deadline: deadline)
    {
      return answered
    }
    let points = batch.tensors
    // Compile (or find) every distinct program first, in point order, so that errors come in point order.
    var programs: [CompiledProgram] = []
    var byShapes: [[[Int]]: CompiledProgram] = [:]
    programs.reserveCapacity(points.count)
    for (index, point) in points.enumerated() {
      let shapes = point.map(\.shape)
      if let known = byShapes[shapes] {
        programs.append(known)
        continue
      }
      let compiled = try program(function, point: point, pointer: "/batch/\(index)")
      byShapes[shapes] = compiled
      programs.append(compiled)
    }
    let work = programs.reduce(0) { $0 + $1.program.arenaCount + $1.program.instructionCount }
    let parts = pool.workers > 1 && points.count > 1 && work >= 4096 ? min(points.count, pool.workers * 4) : 1
    let outcome = BatchOutcome(parts: parts)
    let programList = programs
    let pointList = points
    pool.fanOut(parts) { part in
      let range = (part * pointList.count / parts)..<((part + 1) * pointList.count / parts)
      var writer = JSONWriter(capacity: 64 * range.count)
      writer.beginArray()
      for index in range {
        if outcome.failedBefore(index) { return }
        do throws(Problem) {
          try deadline.check()
          let compiled = programList[index]
          try compiled.withWorkspace { workspace throws(Problem) in
            try answer(
              product, settings, function: function, compiled: compiled, workspace: workspace,
              point: pointList[index], pointIndex: index, fanOut: false, deadline: deadline, into: &writer)
          }
        } catch {
          outcome.fail(at: index, error)
          return
        }
      }
      writer.endArray()
      outcome.finish(part, writer.bytes)
    }
    if let problem = outcome.firstProblem { throw problem }
    return joinResults(outcome)
  }

  /// `{"results": [...]}` from the parts' arrays, in order.
  func joinResults(_ outcome: BatchOutcome) -> [UInt8] {
    let fragments = outcome.fragments
    var joined: [UInt8] = Array(#"{"results":["#.utf8)
    joined.reserveCapacity(fragments.reduce(0) { $0 + $1.count } + 16)
    var first = true
    for fragment in fragments where fragment.count > 2 {
      if !first { joined.append(UInt8(ascii: ",")) }
      first = false
      joined.append(contentsOf: fragment[1..<(fragment.count - 1)])
    }
    joined.append(contentsOf: "]}".utf8)
    return joined
  }

  // MARK: One point

  /// Writes the answer for one point: a JSON object.
  private func answer(
    _ product: Product, _ settings: Settings, function: Function, compiled: CompiledProgram, workspace: Workspace,
    point: [Tensor], pointIndex: Int?, fanOut: Bool, deadline: Deadline, into writer: inout JSONWriter
  ) throws(Problem) {
    let program = compiled.program
    let pointPointer = pointIndex.map { "/batch/\($0)" } ?? "/at"
    try checkOutputs(product, program: program, function: function)
    // Without `wrt`: every input, with the names and (below) the adjoints in the program's own order, as they are.
    let everyInput = settings.wrt == nil
    let wrt = settings.wrt.map { names in names.compactMap { compiled.inputIndex[$0] } } ?? compiled.allInputs
    let wrtNames = everyInput ? compiled.allInputNames : wrt.map { program.inputs[$0].name }
    let outShape = program.outputs.first.map { program.slots[$0.slot].shape } ?? []
    var seed: [Double]?
    if product == .vjp, let cotangent = settings.cotangent {
      guard cotangent.shape == outShape else {
        throw .unprocessable(
          "the cotangent has shape \(cotangent.shape), but the output has shape \(outShape)", pointer: "/cotangent")
      }
      seed = cotangent.scalars
    }
    var tangents: [Int: [Double]] = [:]
    for (k, tangent) in settings.tangents {
      guard let tensor = tangent else { continue }
      guard tensor.shape == point[k].shape else {
        let name = function.names[k]
        throw .unprocessable(
          "the tangent of '\(name)' has shape \(tensor.shape), but '\(name)' has shape \(point[k].shape)",
          pointer: JSONPointer().appending("tangent").appending(name).description)
      }
      if let index = compiled.inputIndex[k] { tangents[index] = tensor.scalars }
    }
    compiled.load(point, into: workspace)
    // One request's products in halves over idle workers; a batch's points' in the same halves on their own worker.
    workspace.parallelFor = fanOut ? parallelFor ?? Self.oneThread : Self.oneThread
    if settings.checkNumerics {
      try checkNumerics(
        product, function: function, compiled: compiled, workspace: workspace, point: point,
        pointPointer: pointPointer, pointIndex: pointIndex, seed: seed, wrt: wrt)
    }
    try checkResultSize(product, program: program, wrt: wrt, pointer: pointPointer)
    let layout = settings.layout
    // Every product writes the outputs' values (and a JVP a tangent of the same shape): each must be writable.
    for output in program.outputs {
      try checkWritable(program.slots[output.slot].shape, pointer: function.pointer)
    }
    writer.beginObject()
    switch product {
    case .evaluate:
      let values = workspace.evaluate()
      writer.writeKey("values")
      writer.beginObject()
      for (output, value) in zip(program.outputs, values) {
        writer.writeKey(output.name)
        writer.writeTensor(shape: value.shape, data: value.scalars, layout: layout)
      }
      writer.endObject()

    case .gradient, .vjp:
      let (value, adjoints) = workspace.valueWithPullback(seed: seed, wrt: wrt)
      writer.writeKey("value")
      writer.writeTensor(shape: value.shape, data: value.scalars, layout: layout)
      try writeTensors(
        product == .gradient ? "gradient" : "vjp", everyInput ? adjoints : wrt.map { adjoints[$0] },
        names: wrtNames, layout: layout,
        pointer: { "\(pointPointer)/\($0)" }, into: &writer)

    case .jvp:
      let (value, tangent) = workspace.valueWithDifferential(tangents: tangents)
      writer.writeKey("value")
      writer.writeTensor(shape: value.shape, data: value.scalars, layout: layout)
      writer.writeKey("jvp")
      writer.writeTensor(shape: tangent.shape, data: tangent.scalars, layout: layout)

    case .jacobian:
      let (value, blocks) = try jacobian(
        compiled: compiled, workspace: workspace, point: point, wrt: wrt, mode: settings.mode, fanOut: fanOut,
        deadline: deadline)
      writer.writeKey("value")
      writer.writeTensor(shape: value.shape, data: value.scalars, layout: layout)
      try writeTensors(
        "jacobian", blocks, names: wrtNames, layout: layout, pointer: { _ in function.pointer }, into: &writer)

    case .hessian:
      let (value, gradient, blocks) = try hessian(
        compiled: compiled, workspace: workspace, point: point, wrt: wrt, fanOut: fanOut, deadline: deadline)
      writer.writeKey("value")
      writer.writeTensor(shape: outShape, data: [value], layout: layout)
      try writeTensors(
        "gradient", gradient, names: wrtNames, layout: layout, pointer: { "\(pointPointer)/\($0)" }, into: &writer)
      writer.writeKey("hessian")
      writer.beginObject()
      for (row, rowName) in zip(blocks, wrtNames) {
        try writeTensors(
          rowName, row, names: wrtNames, layout: layout, pointer: { _ in function.pointer }, into: &writer)
      }
      writer.endObject()

    case .gradcheck:
      let checks = workspace.gradientCheck(wrt: wrt, eps: settings.eps) { !deadline.hasPassed }
      try deadline.check()
      let value = workspace.value(ofSlot: program.outputs[0].slot)
      writer.writeKey("value")
      writer.writeTensor(shape: value.shape, data: value.scalars, layout: layout)
      let inputPointer = { (name: String) in "\(pointPointer)/\(name)" }
      try writeTensors(
        "gradient", checks.map(\.analytic), names: wrtNames, layout: layout, pointer: inputPointer, into: &writer)
      try writeTensors(
        "numeric_gradient", checks.map(\.numeric), names: wrtNames, layout: layout, pointer: inputPointer,
        into: &writer)
      writer.writeKey("max_relative_error")
      writer.beginObject()
      for (check, name) in zip(checks, wrtNames) {
        writer.writeKey(name)
        writer.write(check.maxRelativeError)
      }
      writer.endObject()
    }
    writer.endObject()
  }

  /// Throws 422 unless the program has the outputs `product` needs.
  private func checkOutputs(_ product: Product, program: Program, function: Function) throws(Problem) {
    guard product.needsOneOutput else { return }
    guard program.outputs.count == 1 else {
      throw .unprocessable(
        "the function has \(program.outputs.count) outputs; \(product.noun) needs exactly one (name it with 'output')",
        pointer: function.pointer)
    }
    let outputShape = program.slots[program.outputs[0].slot].shape
    guard !product.needsScalarOutput || Tensor.elementCount(outputShape) == 1 else {
      // Located at the output's node: its position in an expr, its pointer in a graph.
      let message =
        "the output has shape \(outputShape); \(product.noun) needs an output with exactly one element"
      let node = function.graph.outputs[0].node
      throw function.problem(
        Diagnostic(.semantic, message, at: function.graph.location(ofNodeAt: function.graph.nodes[node].position)))
    }
  }

  /// With `check_numerics`: throws 422 naming the input or the node where the first NaN or infinity appears.
  private func checkNumerics(
    _ product: Product, function: Function, compiled: CompiledProgram, workspace: Workspace, point: [Tensor],
    pointPointer: String, pointIndex: Int?, seed: [Double]?, wrt: [Int]
  ) throws(Problem) {
    let prefix = pointIndex.map { "at point \($0): " } ?? ""
    for (k, tensor) in point.enumerated() where !tensor.scalars.allSatisfy(\.isFinite) {
      let name = function.names[k]
      throw .unprocessable(
        "\(prefix)the input '\(name)' holds a NaN or an infinity",
        pointer: JSONPointer(parsing: pointPointer)!.appending(name).description)
    }
    guard
      let found = workspace.firstNonFinite(
        backward: product.runsBackward && compiled.program.outputs.count == 1, seed: seed, wrt: wrt)
    else { return }
    let origin = Int(compiled.program.origins[found.instruction])
    let pass = found.inBackward ? "backward" : "forward"
    let op = compiled.program.op(at: found.instruction)
    throw function.problem(
      Diagnostic(
        .semantic, "\(prefix)\(op) produced a NaN or an infinity in the \(pass) pass",
        at: function.graph.location(ofNodeAt: origin)))
  }

  // MARK: Jacobians and Hessians over several workers

  /// The work of one line (a row or a column) of a product, in rough element-operations.
  private static func lineWork(_ program: Program) -> Int { program.arenaCount + 4 * program.instructionCount }

  /// The Jacobian, its rows (reverse) or columns (forward) spread over idle workers when there is enough work.
  private func jacobian(
    compiled: CompiledProgram, workspace: Workspace, point: [Tensor], wrt: [Int], mode: Workspace.JacobianMode,
    fanOut: Bool, deadline: Deadline
  ) throws(Problem) -> (value: Tensor, blocks: [Tensor]) {
    let program = compiled.program
    let outSlot = program.slots[program.outputs[0].slot]
    let counts = wrt.map { program.slots[program.inputs[$0].slot].count }
    let columns = counts.reduce(0, +)
    let forward = mode.runsForward(columns: columns, rows: outSlot.count)
    let lines = forward ? columns : outSlot.count
    let parts = min(lines, pool.workers * 2)
    guard fanOut, pool.workers > 1, lines >= 4, lines * Self.lineWork(program) >= 1 << 16 else {
      let result = workspace.jacobian(wrt: wrt, mode: mode) { !deadline.hasPassed }
      try deadline.check()
      return result
    }
    let value = workspace.evaluate()[0]
    // Part p computes lines lo..<hi: as a (hi - lo) x (other extent) block of rows, or of columns.
    let starts = counts.reduce(into: [0]) { $0.append($0.last! + $1) }
    let results = try fanOutParts(parts, compiled: compiled, point: point, deadline: deadline) {
      part, ws, results throws(Problem) -> [Double] in
      let lo = part * lines / parts
      let hi = (part + 1) * lines / parts
      var block = [Double](repeating: 0, count: (hi - lo) * (forward ? outSlot.count : columns))
      if forward {
        for line in lo..<hi {
          if deadline.hasPassed { throw .deadlinePassed(after: deadline.seconds, retryAfter: 1) }
          let k = starts.lastIndex { $0 <= line && $0 < starts.last! } ?? 0
          var direction = [Double](repeating: 0, count: counts[k])
          direction[line - starts[k]] = 1
          let tangent = ws.valueWithDifferential(tangents: [wrt[k]: direction]).tangent.scalars
          let base = (line - lo) * outSlot.count
          for i in 0..<outSlot.count { block[base + i] = tangent[i] }
        }
      } else {
        var passed = false
        ws.jacobianRows(wrt: wrt, rows: lo..<hi) { row, adjoints in
          if passed || deadline.hasPassed {
            passed = true
            return
          }
          var base = (row - lo) * columns
          for adjoint in adjoints {
            for j in adjoint.indices { block[base + j] = adjoint[j] }
            base += adjoint.count
          }
        }
        if passed { throw .deadlinePassed(after: deadline.seconds, retryAfter: 1) }
      }
      return block
    }
    let parted = results.blocks
    var blocks = counts.map { [Double](repeating: 0, count: outSlot.count * $0) }
    for part in 0..<parts {
      let lo = part * lines / parts
      let hi = (part + 1) * lines / parts
      let block = parted[part]!
      for line in lo..<hi {
        if forward {
          let k = starts.lastIndex { $0 <= line && $0 < starts.last! } ?? 0
          let j = line - starts[k]
          let base = (line - lo) * outSlot.count
          for i in 0..<outSlot.count { blocks[k][i * counts[k] + j] = block[base + i] }
        } else {
          var base = (line - lo) * columns
          for k in counts.indices {
            for j in 0..<counts[k] { blocks[k][line * counts[k] + j] = block[base + j] }
            base += counts[k]
          }
        }
      }
    }
    let tensors = zip(wrt, blocks).map { index, block in
      Tensor(shape: outSlot.shape + program.slots[program.inputs[index].slot].shape, scalars: block)
    }
    return (value, tensors)
  }

  /// The Hessian: by the engine (which colours sparse Hessians) in one workspace, or, when it is dense and large,
  /// one Hessian-vector product per column spread over idle workers.
  private func hessian(
    compiled: CompiledProgram, workspace: Workspace, point: [Tensor], wrt: [Int], fanOut: Bool, deadline: Deadline
  ) throws(Problem) -> (value: Double, gradient: [Tensor], blocks: [[Tensor]]) {
    let program = compiled.program
    let counts = wrt.map { program.slots[program.inputs[$0].slot].count }
    let columns = counts.reduce(0, +)
    guard fanOut, pool.workers > 1, columns >= 8, columns * Self.lineWork(program) >= 1 << 16,
      workspace.hessianProductCount(wrt: wrt) * 2 >= columns
    else {
      let result = workspace.hessian(wrt: wrt) { !deadline.hasPassed }
      try deadline.check()
      return result
    }
    let value = workspace.evaluate()[0].scalars[0]
    let parts = min(columns, pool.workers * 2)
    let starts = counts.reduce(into: [0]) { $0.append($0.last! + $1) }
    // Part p computes the columns lo..<hi of the whole Hessian (rows: every element of every input).
    let results = try fanOutParts(parts, compiled: compiled, point: point, deadline: deadline) {
      part, ws, results throws(Problem) -> [Double] in
      let lo = part * columns / parts
      let hi = (part + 1) * columns / parts
      var block = [Double](repeating: 0, count: (hi - lo) * columns)
      for k in counts.indices {
        let range = max(lo, starts[k])..<min(hi, starts[k + 1])
        guard !range.isEmpty else { continue }
        var passed = false
        ws.hessianColumns(
          wrt: wrt, input: k, columns: (range.lowerBound - starts[k])..<(range.upperBound - starts[k])
        ) {
          j, gradient, product in
          if passed || deadline.hasPassed {
            passed = true
            return
          }
          var base = (starts[k] + j - lo) * columns
          for tensor in product {
            for i in tensor.scalars.indices { block[base + i] = tensor.scalars[i] }
            base += tensor.scalars.count
          }
          if j == range.lowerBound - starts[k] { results.offer(gradient) }
        }
        if passed { throw .deadlinePassed(after: deadline.seconds, retryAfter: 1) }
      }
      return block
    }
    let parted = results.blocks
    // column c's values, row r: parted[part][(c - lo) * columns + r]; block [r-input][c-input][i * count_c + j].
    var blocks = counts.map { rows in counts.map { [Double](repeating: 0, count: rows * $0) } }
    for part in 0..<parts {
      let lo = part * columns / parts
      let hi = (part + 1) * columns / parts
      let block = parted[part]!
      for c in lo..<hi {
        let kc = starts.lastIndex { $0 <= c && $0 < starts.last! } ?? 0
        let j = c - starts[kc]
        for kr in counts.indices {
          for i in 0..<counts[kr] {
            blocks[kr][kc][i * counts[kc] + j] = block[(c - lo) * columns + starts[kr] + i]
          }
        }
      }
    }
    let shapes = wrt.map { program.slots[program.inputs[$0].slot].shape }
    let tensors = blocks.enumerated().map { r, row in
      row.enumerated().map { c, block in Tensor(shape: shapes[r] + shapes[c], scalars: block) }
    }
    let gradient = results.gradient ?? shapes.map { Tensor(repeating: 0, shape: $0) }
    return (value, gradient, tensors)
  }

  /// Runs `parts` parts of one product over idle workers, each in a workspace of its own loaded with `point`, and
  /// collects the blocks they return; 503 when the deadline passed in any of them.
  private func fanOutParts(
    _ parts: Int, compiled: CompiledProgram, point: [Tensor], deadline: Deadline,
    _ body:
      @escaping @Sendable (_ part: Int, _ workspace: Workspace, _ results: PartResults) throws(Problem) -> [Double]
  ) throws(Problem) -> PartResults {
    let results = PartResults(parts: parts)
    pool.fanOut(parts) { part in
      do throws(Problem) {
        let block = try compiled.withWorkspace { workspace throws(Problem) in
          workspace.parallelFor = Self.oneThread  // the parts are the parallelism
          compiled.load(point, into: workspace)
          return try body(part, workspace, results)
        }
        results.finish(part, block)
      } catch {
        results.fail()
      }
    }
    if results.failed { throw .deadlinePassed(after: deadline.seconds, retryAfter: 1) }
    return results
  }

  /// Writes `key: {name: tensor, ...}`, each tensor first checked to be writable (413 at `pointer(name)`).
  private func writeTensors(
    _ key: String, _ tensors: [Tensor], names: [String], layout: JSONTensorLayout, pointer: (String) -> String,
    into writer: inout JSONWriter
  ) throws(Problem) {
    writer.writeKey(key)
    writer.beginObject()
    for (tensor, name) in zip(tensors, names) {
      try checkWritable(tensor.shape, pointer: pointer(name))
      writer.writeKey(name)
      writer.writeTensor(shape: tensor.shape, data: tensor.scalars, layout: layout)
    }
    writer.endObject()
  }

  /// Throws 413 when a Jacobian or Hessian would hold more elements than a tensor may (`out × in` or `in × in`
  /// numbers), before any of it is allocated.
  private func checkResultSize(_ product: Product, program: Program, wrt: [Int], pointer: String) throws(Problem) {
    guard product == .jacobian || product == .hessian else { return }
    let inputs = wrt.reduce(0) { $0 + program.slots[program.inputs[$1].slot].count }
    let rows = product == .jacobian ? program.slots[program.outputs[0].slot].count : inputs
    let (elements, overflow) = rows.multipliedReportingOverflow(by: inputs)
    guard overflow || elements > limits.maxTensorElements else { return }
    let what = product == .jacobian ? "Jacobian" : "Hessian"
    throw .tooLarge(
      "the \(what) would have \(rows) x \(inputs) elements, over the limit of \(limits.maxTensorElements) per tensor",
      pointer: pointer)
  }

  /// Throws 413 when the nested form of a result of `shape` would hold more arrays than a tensor may hold elements:
  /// an empty tensor such as `[4294967296, 0]` has no elements, but its nested form is 2^32 arrays (`[[],[],...]`).
  private func checkWritable(_ shape: [Int], pointer: @autoclosure () -> String) throws(Problem) {
    guard shape.count > 1 else { return }
    var arrays = 0
    var product = 1
    for extent in shape.dropLast() {
      product = product.multipliedReportingOverflow(by: extent).partialValue
      arrays = arrays.addingReportingOverflow(product).partialValue
      if product == 0 { break }
      guard product > 0, arrays <= limits.maxTensorElements else {
        throw .tooLarge(
          "the result of shape \(shape) has more than \(limits.maxTensorElements) nested arrays", pointer: pointer())
      }
    }
  }

  // MARK: Registering graphs

  /// `POST /graphs`: registers the function of the body; returns its id, whether it is new, and the answer's body.
  package func register(body: [UInt8]) throws(Problem) -> (id: String, created: Bool, answer: [UInt8]) {
    let request = try decodeObject(body)
    for (key, _) in request where key != "expr" && key != "graph" {
      throw .badRequest(
        key == "graph_id" || key == "at" || key == "batch"
          ? "'\(key)' cannot be registered; send only the function, as 'expr' or 'graph'"
          : "unknown field '\(key)'",
        pointer: JSONPointer().appending(key).description)
    }
    let function = try self.function(of: request)
    let (id, created) = registry.register(function.graph)
    // The answer's body: `{"id": "sha256:..."}`.
    var writer = JSONWriter(capacity: 96)
    writer.beginObject()
    writer.writeKey("id")
    writer.write(id)
    writer.endObject()
    return (id, created, writer.bytes)
  }

  // MARK: Decoding

  private func decodeObject(_ body: [UInt8]) throws(Problem) -> JSONObject {
    let document: JSONValue
    do {
      // A large matrix's rows are parsed by the idle workers too.
      document = try JSONParser.parse(body, limits: JSONLimits(maxDepth: limits.maxJSONDepth), parallelFor: parallelFor)
    } catch {
      throw .badRequest("the body is not valid JSON: \(error.description)", pointer: error.pointer.description)
    }
    guard case .object(let object) = document else {
      throw .badRequest("the body must be a JSON object, not \(document.kindDescription)", pointer: "")
    }
    return object
  }

  /// The function of a request, from `expr`, `graph` or `graph_id`.
  private func function(of request: JSONObject) throws(Problem) -> Function {
    let expr = request["expr"]
    let graph = request["graph"]
    let graphID = request["graph_id"]
    let count = (expr == nil ? 0 : 1) + (graph == nil ? 0 : 1) + (graphID == nil ? 0 : 1)
    guard count == 1 else {
      let given = ["expr", "graph", "graph_id"].filter { request[$0] != nil }
      let detail =
        given.isEmpty
        ? "the request must give the function as exactly one of 'expr', 'graph' or 'graph_id'"
        : "the request gives the function more than once (\(given.joined(separator: ", "))); give exactly one"
      throw .badRequest(detail, pointer: given.count > 1 ? "/\(given[1])" : "")
    }
    if let graph {
      let decoded: Graph
      do {
        decoded = try GraphDecoder.decode(
          graph, at: "/graph",
          limits: GraphDecoder.Limits(maxNodes: limits.maxGraphNodes, maxTensorElements: limits.maxTensorElements))
      } catch {
        throw .diagnostics(error, exprPointer: "/expr")
      }
      return Function(
        key: "g" + SHA256.hash(Function.structure(of: decoded)).hexString, graph: decoded, pointer: "/graph",
        isRegistered: false)
    }
    if let id = graphID {
      guard case .string(let id) = id else { throw .badRequest("'graph_id' must be a string", pointer: "/graph_id") }
      guard let entry = registry.entry(id) else { throw .unknownGraph(id, pointer: "/graph_id") }
      return Function(key: "i" + id, graph: entry.graph, pointer: "/graph_id", isRegistered: true)
    }
    guard case .string(let source)? = expr else {
      throw .badRequest("'expr' must be a string", pointer: "/expr")
    }
    let limits = self.limits
    return try cache.function(forExpr: source) { source throws(Problem) in
      if source.unicodeScalars.count > limits.maxExprLength {
        // The position is that of the first character past the limit.
        let message = "'expr' is longer than the limit of \(limits.maxExprLength) characters"
        throw .expression(Diagnostic(.limit, message, at: limits.maxExprLength), pointer: "/expr")
      }
      let graph: Graph
      do throws(Diagnostic) {
        graph = try ExprParser.parse(source, maxNodes: limits.maxGraphNodes)
      } catch {
        throw .expression(error, pointer: "/expr")
      }
      return Function(key: "e" + source, graph: graph, pointer: "/expr", isRegistered: false)
    }
  }

  /// The point (`at`) or points (`batch`) of a request, each as one tensor per input in graph input order: the
  /// point, or `nil` and the batch.
  private func points(of request: JSONObject, function: Function) throws(Problem) -> (Points, [Tensor]?) {
    switch (request["at"], request["batch"]) {
    case (.some, .some):
      throw .badRequest("give either one point as 'at' or several as 'batch', not both", pointer: "/batch")
    case (nil, nil):
      throw .badRequest("the request must give the point as 'at' (or the points as 'batch')", pointer: "")
    case (let at?, nil):
      return (.tensors([]), try point(at, function: function, pointer: JSONPointer().appending("at"), inAt: true))
    case (nil, let batch?):
      guard case .array(let list) = batch else {
        throw .badRequest("'batch' must be an array of points", pointer: "/batch")
      }
      guard !list.isEmpty else {
        throw .badRequest("'batch' must hold at least one point", pointer: "/batch")
      }
      guard list.count <= limits.maxBatchPoints else {
        throw .tooLarge(
          "the batch has \(list.count) points, over the limit of \(limits.maxBatchPoints)", pointer: "/batch")
      }
      if let columns = Self.scalarColumns(list, function: function) {
        return (.scalars(columns, count: list.count), nil)
      }
      var points: [[Tensor]] = []
      points.reserveCapacity(list.count)
      let base = JSONPointer().appending("batch")
      for (index, value) in list.enumerated() {
        points.append(try point(value, function: function, pointer: base.appending(index), inAt: false))
      }
      return (.tensors(points), nil)
    }
  }

  /// The batch as one column of numbers per input, when every point gives every input as a plain JSON number (the
  /// common case of many scalar points); `nil` otherwise, and the points are decoded one by one (which also finds
  /// the mistakes, with their pointers).
  private static func scalarColumns(_ list: JSONArray, function: Function) -> [[Double]]? {
    let inputs = function.names.count
    // A graph that declares an input non-scalar takes the general path, which reports the mismatch.
    guard function.graph.declaredShapes.values.allSatisfy(\.isEmpty) else { return nil }
    if let (keys, parsed) = list.numericRecords {
      // The parser read the points straight into columns: put them in input order.
      guard keys.count == inputs else { return nil }
      var columns = [[Double]](repeating: [], count: inputs)
      for (key, column) in zip(keys, parsed) {
        guard let k = function.position(of: key) else { return nil }
        columns[k] = column
      }
      return columns
    }
    var columns = [[Double]](repeating: [], count: inputs)
    for k in 0..<inputs { columns[k].reserveCapacity(list.count) }
    for value in list {
      guard case .object(let point) = value, point.count == inputs else { return nil }
      for (name, element) in point {
        guard case .number(let number) = element, let k = function.position(of: name) else { return nil }
        columns[k].append(number)
      }
    }
    // Keys are unique within an object, so every column is full exactly when every name was given once.
    return columns.allSatisfy({ $0.count == list.count }) ? columns : nil
  }

  /// One point: an object mapping each input name to a tensor. `pointer` (`/at`, or `/batch/i`) is made only for a
  /// mistake.
  private func point(
    _ value: JSONValue, function: Function, pointer makePointer: @autoclosure () -> JSONPointer, inAt: Bool
  ) throws(Problem) -> [Tensor] {
    guard case .object(let values) = value else {
      let what = inAt ? "'at'" : "a batch point"
      throw .badRequest("\(what) must be an object mapping input names to tensors", pointer: makePointer().description)
    }
    // The inputs usually come in the graph's order: they are appended as they come, into `ordered`, until one does
    // not; from then on (`point` not empty) each goes to its place in `point`.
    var ordered: [Tensor] = []
    ordered.reserveCapacity(function.names.count)
    var point: [Tensor?] = []
    func spill() { point = ordered.map { $0 } + Array(repeating: nil, count: function.names.count - ordered.count) }
    let hasDeclaredShapes = !function.graph.declaredShapes.isEmpty
    for (name, value) in values {
      guard let k = function.position(of: name) else {
        throw .unprocessable(
          "'\(name)' is not an input of the function", pointer: makePointer().appending(name).description)
      }
      let tensor: Tensor
      if case .number(let number) = value {
        tensor = Tensor(shape: [], scalars: [number])
      } else {
        tensor = try decodeTensor(value, pointer: makePointer().appending(name))
      }
      if hasDeclaredShapes, let declared = function.graph.declaredShapes[name], declared != tensor.shape {
        throw .unprocessable(
          "the value of '\(name)' has shape \(tensor.shape), but the graph declares \(declared)",
          pointer: makePointer().appending(name).description)
      }
      if point.isEmpty && k == ordered.count {
        ordered.append(tensor)
        continue
      }
      if point.isEmpty { spill() }
      point[k] = tensor
    }
    if point.isEmpty {
      if ordered.count == function.names.count { return ordered }
      spill()
    }
    if let missing = point.firstIndex(where: { $0 == nil }) {
      throw .unprocessable(
        "no value is given for the input '\(function.names[missing])'", pointer: makePointer().description)
    }
    return point.map { $0! }
  }

  /// The program for one point's input shapes, from the cache or compiled.
  private func program(_ function: Function, point: [Tensor], pointer: String) throws(Problem) -> CompiledProgram {
    let key = ProgramKey(function: function.key, shapes: point.map(\.shape))
    return try cache.program(for: key, names: function.names) { () throws(Problem) -> Program in
      var shapes: [String: [Int]] = [:]
      for (name, tensor) in zip(function.names, point) { shapes[name] = tensor.shape }
      do throws(Diagnostic) {
        return try GraphCompiler.compile(function.graph, inputShapes: shapes)
      } catch {
        throw function.problem(error)
      }
    }
  }
}

/// A tensor from a request, or the problem it has.
func decodeTensor(_ value: JSONValue, pointer: JSONPointer, maxElements: Int) throws(Problem) -> Tensor {
  let tensor: (shape: [Int], data: [Double])
  do {
    tensor = try JSONTensorDecoding.decode(value, maxElements: maxElements, at: pointer)
  } catch {
    if error.kind == .overLimit { throw .tooLarge(error.message, pointer: error.pointer.description) }
    throw .badRequest(error.message, pointer: error.pointer.description)
  }
  guard ShapeRules.isAddressable(tensor.shape) else {
    // E.g. {"shape": [0, 2^52, 2^52], "data": []}: no elements, but extents no index arithmetic can hold.
    throw .tooLarge("the shape \(tensor.shape) is too large", pointer: pointer.description)
  }
  return Tensor(shape: tensor.shape, scalars: tensor.data)
}

extension Compute {
  fileprivate func decodeTensor(_ value: JSONValue, pointer: JSONPointer) throws(Problem) -> Tensor {
    try AdjointCompute.decodeTensor(value, pointer: pointer, maxElements: limits.maxTensorElements)
  }
}

/// The points of a batch.
enum Points {
  /// One tensor per input, per point.
  case tensors([[Tensor]])
  /// Every input scalar at every point: one column of `count` numbers per input.
  case scalars([[Double]], count: Int)

  /// One tensor per input, per point.
  var tensors: [[Tensor]] {
    switch self {
    case .tensors(let points): return points
    case .scalars(let columns, let count):
      return (0..<count).map { i in columns.map { Tensor(shape: [], scalars: [$0[i]]) } }
    }
  }
}

/// A request's function, resolved.
struct Function: Sendable {
  /// What identifies the function in the program cache.
  let key: String
  let graph: Graph
  /// The request field that holds the function.
  let pointer: String
  /// Whether the function came from the registry (`graph_id`): its own locations then mean nothing to the client.
  let isRegistered: Bool
  /// The graph's input names.
  let names: [String]
  private let positions: [String: Int]

  init(key: String, graph: Graph, pointer: String, isRegistered: Bool) {
    self.key = key
    self.graph = graph
    self.pointer = pointer
    self.isRegistered = isRegistered
    names = graph.inputNames
    var positions: [String: Int] = [:]
    for (k, name) in names.enumerated() { positions[name] = k }
    self.positions = positions
  }

  /// The bytes that tell two decoded graphs apart for the program cache: every node's kind, arguments, attributes
  /// and position (positions locate errors and `check_numerics` findings), and the outputs. Cheaper than the
  /// canonical form, which also renames and reorders.
  static func structure(of graph: Graph) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(24 * graph.nodes.count + 16)
    func int(_ value: Int) { withUnsafeBytes(of: Int64(value).littleEndian) { bytes.append(contentsOf: $0) } }
    func double(_ value: Double) { int(Int(Int64(bitPattern: value.bitPattern))) }
    func string(_ text: String) {
      int(text.utf8.count)
      bytes.append(contentsOf: text.utf8)
    }
    for node in graph.nodes {
      int(node.position)
      switch node.kind {
      case .input(let name):
        bytes.append(1)
        string(name)
      case .constant(let value):
        bytes.append(2)
        double(value)
      case .operation(let name, let arguments, let attributes):
        bytes.append(3)
        string(name)
        int(arguments.count)
        for argument in arguments { int(argument) }
        int(attributes.count)
        for attribute in attributes {
          string(attribute.name)
          int(attribute.position)
          switch attribute.value {
          case .number(let value):
            bytes.append(1)
            double(value)
          case .numbers(let values):
            bytes.append(2)
            int(values.count)
            for value in values { double(value) }
          case .bool(let flag):
            bytes.append(flag ? 3 : 4)
          case .tensor(let shape, let scalars):
            bytes.append(5)
            int(shape.count)
            for extent in shape { int(extent) }
            for value in scalars { double(value) }
          }
        }
      }
    }
    int(graph.outputs.count)
    for output in graph.outputs {
      string(output.name)
      int(output.node)
    }
    return bytes
  }

  /// The index of input `name` in ``names``.
  func position(of name: String) -> Int? {
    guard names.count > 8 else { return names.firstIndex(of: name) }
    return positions[name]
  }

  /// The problem for a located mistake in this function; a registered graph's mistakes point at `/graph_id`.
  func problem(_ diagnostic: Diagnostic) -> Problem {
    guard isRegistered else { return .expression(diagnostic, pointer: "/expr") }
    return .expression(
      Diagnostic(diagnostic.kind, diagnostic.message, at: JSONPointer().appending("graph_id")), pointer: "/graph_id")
  }
}

/// The request fields besides the function and the points, checked for type and range.
private struct Options {
  var layout: JSONTensorLayout = .nested
  var checkNumerics = false
  var wrt: [(name: String, pointer: String)]?
  var mode: Workspace.JacobianMode = .auto
  var eps = 1e-6
  var tangent: [(name: String, value: Tensor)] = []
  var cotangent: Tensor?

  init(_ request: JSONObject, product: Compute.Product, limits: ServiceLimits) throws(Problem) {
    if let layout = request["layout"] {
      guard case .string(let name) = layout, let known = JSONTensorLayout(rawValue: name) else {
        throw .badRequest("'layout' must be \"nested\", \"flat\" or \"base64\"", pointer: "/layout")
      }
      self.layout = known
    }
    if let check = request["check_numerics"] {
      guard case .bool(let flag) = check else {
        throw .badRequest("'check_numerics' must be true or false", pointer: "/check_numerics")
      }
      checkNumerics = flag
    }
    if let wrt = request["wrt"] {
      guard case .array(let names) = wrt else {
        throw .badRequest("'wrt' must be an array of input names", pointer: "/wrt")
      }
      var list: [(String, String)] = []
      for (position, element) in names.enumerated() {
        guard case .string(let name) = element else {
          throw .badRequest("'wrt' must be an array of input names", pointer: "/wrt/\(position)")
        }
        list.append((name, "/wrt/\(position)"))
      }
      self.wrt = list
    }
    if let mode = request["mode"] {
      switch mode {
      case .string("auto"): self.mode = .auto
      case .string("forward"): self.mode = .forward
      case .string("reverse"): self.mode = .reverse
      default: throw .badRequest("'mode' must be \"auto\", \"forward\" or \"reverse\"", pointer: "/mode")
      }
    }
    if let eps = request["eps"] {
      guard case .number(let value) = eps, value > 0, value.isFinite else {
        throw .badRequest("'eps' must be a positive number", pointer: "/eps")
      }
      self.eps = value
    }
    if let tangent = request["tangent"] {
      guard case .object(let values) = tangent else {
        throw .badRequest("'tangent' must be an object mapping input names to tensors", pointer: "/tangent")
      }
      for (name, value) in values {
        let pointer = JSONPointer().appending("tangent").appending(name)
        self.tangent.append(
          (name, try decodeTensor(value, pointer: pointer, maxElements: limits.maxTensorElements)))
      }
    }
    if product == .vjp {
      guard let cotangent = request["cotangent"] else {
        throw .badRequest("/vjp needs 'cotangent', a tensor of the output's shape", pointer: "")
      }
      self.cotangent = try decodeTensor(
        cotangent, pointer: JSONPointer().appending("cotangent"), maxElements: limits.maxTensorElements)
    }
  }
}

/// The options of a request resolved against its function.
struct Settings: Sendable {
  let layout: JSONTensorLayout
  let checkNumerics: Bool
  /// The positions (in the graph's input names) to differentiate with respect to; `nil`: all inputs.
  let wrt: [Int]?
  let mode: Workspace.JacobianMode
  let eps: Double
  /// Per graph input, its tangent (`nil`: zero).
  let tangents: [(Int, Tensor?)]
  let cotangent: Tensor?

  fileprivate init(_ options: Options, function: Function) throws(Problem) {
    layout = options.layout
    checkNumerics = options.checkNumerics
    mode = options.mode
    eps = options.eps
    cotangent = options.cotangent
    if let names = options.wrt {
      var positions: [Int] = []
      for (name, pointer) in names {
        guard let k = function.position(of: name) else {
          throw .unprocessable("'\(name)' is not an input of the function", pointer: pointer)
        }
        if !positions.contains(k) { positions.append(k) }
      }
      wrt = positions
    } else {
      wrt = nil
    }
    var tangents: [(Int, Tensor?)] = []
    for (name, value) in options.tangent {
      guard let k = function.position(of: name) else {
        throw .unprocessable(
          "'\(name)' is not an input of the function",
          pointer: JSONPointer().appending("tangent").appending(name).description)
      }
      tangents.append((k, value))
    }
    self.tangents = tangents
  }
}

/// What the parts of a fanned-out batch produced.
final class BatchOutcome: Sendable {
  private struct State {
    var fragments: [[UInt8]]
    var problem: (index: Int, problem: Problem)?
  }

  private let state: Locked<State>
  /// The lowest failing point so far (Int.max: none); parts skip the points after it.
  private let failedIndex = Atomic<Int>(.max)

  init(parts: Int) { state = Locked(State(fragments: Array(repeating: [], count: parts))) }

  func failedBefore(_ index: Int) -> Bool { failedIndex.load(ordering: .relaxed) < index }

  func fail(at index: Int, _ problem: Problem) {
    failedIndex.min(index, ordering: .relaxed)
    state.withLock { state in
      if state.problem == nil || index < state.problem!.index { state.problem = (index, problem) }
    }
  }

  func finish(_ part: Int, _ bytes: [UInt8]) { state.withLock { $0.fragments[part] = bytes } }

  var firstProblem: Problem? { state.withLock { $0.problem?.problem } }
  var fragments: [[UInt8]] { state.withLock { $0.fragments } }
}

/// What the parts of a fanned-out Jacobian or Hessian produced.
private final class PartResults: Sendable {
  private struct State {
    var blocks: [[Double]?]
    var gradient: [Tensor]?
    var failed = false
  }

  private let state: Locked<State>

  init(parts: Int) { state = Locked(State(blocks: Array(repeating: nil, count: parts))) }

  func finish(_ part: Int, _ block: [Double]) { state.withLock { $0.blocks[part] = block } }
  func offer(_ gradient: [Tensor]) { state.withLock { $0.gradient = $0.gradient ?? gradient } }
  func fail() { state.withLock { $0.failed = true } }

  var blocks: [[Double]?] { state.withLock { $0.blocks } }
  var gradient: [Tensor]? { state.withLock { $0.gradient } }
  var failed: Bool { state.withLock { $0.failed } }
}
