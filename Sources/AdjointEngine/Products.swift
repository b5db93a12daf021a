/// The derivative products of a program, computed in a workspace over the inputs last written.
extension Workspace {
  /// Runs forward and returns the value of every output, in `program.outputs` order.
  public func evaluate() -> [Tensor] {
    forward()
    return program.outputs.map { value(ofSlot: $0.slot) }
  }

  /// Runs forward and reverse for one output: its value and the adjoint of every input (zero for inputs not in
  /// `wrt`).
  ///
  /// - Parameters:
  ///   - output: the index of the output in `program.outputs`.
  ///   - seed: the output's cotangent (a VJP); `nil` means ones (for a scalar output, the gradient).
  ///   - wrt: the input indices to differentiate with respect to; `nil` means all.
  /// - Returns: the output's value and one adjoint per input, in `program.inputs` order.
  public func valueWithPullback(output: Int = 0, seed: [Double]? = nil, wrt: [Int]? = nil) -> (
    value: Tensor, adjoints: [Tensor]
  ) {
    forward()
    backward(output: output, seed: seed, wrt: wrt)
    var wanted: [Bool] = []
    if let wrt {
      wanted = Array(repeating: false, count: program.inputs.count)
      for index in wrt where wanted.indices.contains(index) { wanted[index] = true }
    }
    let adjoints = program.inputs.indices.map { index in
      let slot = program.inputs[index].slot
      return wanted.isEmpty || wanted[index]
        ? adjoint(ofSlot: slot) : Tensor(repeating: 0, shape: program.slots[slot].shape)
    }
    return (value(ofSlot: program.outputs[output].slot), adjoints)
  }

  /// Forward mode: the output's value and its directional derivative (JVP) along the given input tangents.
  ///
  /// - Parameter tangents: one tangent per input index; missing inputs have tangent zero.
  public func valueWithDifferential(output: Int = 0, tangents: [Int: [Double]]) -> (value: Tensor, tangent: Tensor) {
    loadDual(tangents: tangents)
    dual.forward()
    let slot = program.outputs[output].slot
    let elements = dual.read(dual.values, slot: slot)
    let shape = program.slots[slot].shape
    return (
      Tensor(shape: shape, scalars: elements.map(\.value)), Tensor(shape: shape, scalars: elements.map(\.tangent))
    )
  }

  /// How a Jacobian is computed.
  public enum JacobianMode: Sendable {
    /// Forward mode when the inputs have fewer elements than the output, else reverse (as jacfwd/jacrev would be
    /// chosen).
    case auto
    /// One JVP per input element.
    case forward
    /// One VJP per output element.
    case reverse

    /// Whether this mode computes a Jacobian with `columns` input elements and `rows` output elements by JVPs.
    public func runsForward(columns: Int, rows: Int) -> Bool {
      switch self {
      case .auto: columns < rows
      case .forward: true
      case .reverse: false
      }
    }
  }

  /// The Jacobian of one output with respect to the given inputs: for each input, a tensor of shape
  /// `output.shape + input.shape`.
  ///
  /// - Parameter proceed: asked before each row (or column); once it answers false the rest stay zero (for a caller
  ///   with a deadline, which then discards the result).
  public func jacobian(
    output: Int = 0, wrt: [Int]? = nil, mode: JacobianMode = .auto, proceed: () -> Bool = { true }
  ) -> (
    value: Tensor, blocks: [Tensor]
  ) {
    let inputs = wrt ?? Array(program.inputs.indices)
    let outSlot = program.slots[program.outputs[output].slot]
    let counts = inputs.map { program.slots[program.inputs[$0].slot].count }
    let columns = counts.reduce(0, +)
    let useForward = mode.runsForward(columns: columns, rows: outSlot.count)
    var blocks = zip(inputs, counts).map { index, count in
      [Double](repeating: 0, count: outSlot.count * count)
    }
    forward()
    let value = value(ofSlot: program.outputs[output].slot)
    if useForward {
      for (k, index) in inputs.enumerated() {
        for j in 0..<counts[k] where proceed() {
          var direction = [Double](repeating: 0, count: counts[k])
          direction[j] = 1
          let tangent = valueWithDifferential(output: output, tangents: [index: direction]).tangent.scalars
          for i in 0..<outSlot.count { blocks[k][i * counts[k] + j] = tangent[i] }
        }
      }
    } else {
      for i in 0..<outSlot.count where proceed() {
        var seed = [Double](repeating: 0, count: outSlot.count)
        seed[i] = 1
        backward(output: output, seed: seed, wrt: inputs)
        for (k, index) in inputs.enumerated() {
          let row = arena.read(arena.adjoints, slot: program.inputs[index].slot)
          for j in 0..<counts[k] { blocks[k][i * counts[k] + j] = row[j] }
        }
      }
    }
    let tensors = zip(inputs, blocks).map { index, block in
      Tensor(shape: outSlot.shape + program.slots[program.inputs[index].slot].shape, scalars: block)
    }
    return (value, tensors)
  }

  /// Hessian-vector product by forward-over-reverse: the gradient of a scalar output and `H·v` for the direction
  /// `v` given per input (missing inputs: zero).
  ///
  /// - Returns: the value, the gradient and the Hessian-vector product, per input of `wrt` (in that order).
  public func hessianVectorProduct(output: Int = 0, wrt: [Int]? = nil, direction: [Int: [Double]]) -> (
    value: Double, gradient: [Tensor], product: [Tensor]
  ) {
    let inputs = wrt ?? Array(program.inputs.indices)
    let active = activeMask(inputs)
    loadDual(tangents: direction)
    let dual = self.dual
    dual.forward()
    dual.reverse(output: output, active: active) { _ in Dual(1) }
    var gradient: [Tensor] = []
    var product: [Tensor] = []
    for index in inputs {
      let slot = program.inputs[index].slot
      let elements = dual.read(dual.adjoints, slot: slot)
      gradient.append(Tensor(shape: program.slots[slot].shape, scalars: elements.map(\.value)))
      product.append(Tensor(shape: program.slots[slot].shape, scalars: elements.map(\.tangent)))
    }
    let value = dual.values[program.slots[program.outputs[output].slot].offset].value
    return (value, gradient, product)
  }

  /// The Hessian of a scalar output by forward-over-reverse, one Hessian-vector product per input element.
  ///
  /// - Parameter proceed: asked before each Hessian-vector product; once it answers false the rest are skipped (for
  ///   a caller with a deadline, which then discards the result).
  /// - Returns: the value, the gradient per input of `wrt`, and the blocks `H[x][y]` of shape `x.shape + y.shape`.
  public func hessian(output: Int = 0, wrt: [Int]? = nil, proceed: () -> Bool = { true }) -> (
    value: Double, gradient: [Tensor], blocks: [[Tensor]]
  ) {
    let inputs = wrt ?? Array(program.inputs.indices)
    if coloring?.inputs != inputs { coloring = (inputs, HessianColoring.analyze(program, wrt: inputs)) }
    if let sparse = coloring?.coloring {
      return sparseHessian(output: output, inputs: inputs, sparse, proceed: proceed)
    }
    let counts = inputs.map { program.slots[program.inputs[$0].slot].count }
    var blocks = counts.map { rows in counts.map { columns in [Double](repeating: 0, count: rows * columns) } }
    var value = 0.0
    var gradient: [Tensor] = inputs.map { Tensor(repeating: 0, shape: program.slots[program.inputs[$0].slot].shape) }
    for (column, index) in inputs.enumerated() {
      for j in 0..<counts[column] where proceed() {
        var direction = [Double](repeating: 0, count: counts[column])
        direction[j] = 1
        let result = hessianVectorProduct(output: output, wrt: inputs, direction: [index: direction])
        value = result.value
        gradient = result.gradient
        for row in inputs.indices {
          for i in 0..<counts[row] { blocks[row][column][i * counts[column] + j] = result.product[row].scalars[i] }
        }
      }
    }
    if counts.allSatisfy({ $0 == 0 }) {
      forward()
      value = scalarValue(ofSlot: program.outputs[output].slot)
    }
    let shapes = inputs.map { program.slots[program.inputs[$0].slot].shape }
    let tensors = blocks.enumerated().map { row, line in
      line.enumerated().map { column, block in Tensor(shape: shapes[row] + shapes[column], scalars: block) }
    }
    return (value, gradient, tensors)
  }

  /// The Hessian from one Hessian-vector product per colour of its sparsity pattern.
  private func sparseHessian(output: Int, inputs: [Int], _ sparse: HessianColoring, proceed: () -> Bool) -> (
    value: Double, gradient: [Tensor], blocks: [[Tensor]]
  ) {
    let slots = inputs.map { program.slots[program.inputs[$0].slot] }
    let starts = slots.reduce(into: [0]) { $0.append($0.last! + $1.count) }
    let columns = starts.last!
    var full = [Double](repeating: 0, count: columns * columns)
    var gradient = [Double](repeating: 0, count: columns)
    let active = activeMask(inputs)
    let dual = self.dual
    loadDual(tangents: [:])
    for color in 0..<sparse.colors where proceed() {
      for (k, slot) in slots.enumerated() {
        for i in 0..<slot.count {
          dual.values[slot.offset + i].tangent = sparse.colorOf[starts[k] + i] == color ? 1 : 0
        }
      }
      dual.forward()
      dual.reverse(output: output, active: active) { _ in Dual(1) }
      for (k, slot) in slots.enumerated() {
        for i in 0..<slot.count {
          let row = starts[k] + i
          let adjoint = dual.adjoints[slot.offset + i]
          gradient[row] = adjoint.value
          for column in sparse.pattern[row] where sparse.colorOf[column] == color {
            full[row * columns + column] = adjoint.tangent
          }
        }
      }
    }
    let value = dual.values[program.slots[program.outputs[output].slot].offset].value
    if slots.count == 1 {  // the whole Hessian is the one block: no copies
      return (
        value, [Tensor(shape: slots[0].shape, scalars: gradient)],
        [[Tensor(shape: slots[0].shape + slots[0].shape, scalars: full)]]
      )
    }
    let blocks = slots.indices.map { r in
      slots.indices.map { c in
        var block = [Double](repeating: 0, count: slots[r].count * slots[c].count)
        for i in 0..<slots[r].count {
          for j in 0..<slots[c].count {
            block[i * slots[c].count + j] = full[(starts[r] + i) * columns + starts[c] + j]
          }
        }
        return Tensor(shape: slots[r].shape + slots[c].shape, scalars: block)
      }
    }
    let gradients = slots.indices.map { k in
      Tensor(shape: slots[k].shape, scalars: Array(gradient[starts[k]..<starts[k + 1]]))
    }
    return (value, gradients, blocks)
  }

  /// A central finite-difference check of the reverse gradient of a scalar output.
  ///
  /// Each element `x` is probed at `x ± h` with `h = eps · max(1, |x|)`.
  /// - Parameter proceed: asked before each element; once it answers false the remaining differences stay zero (for
  ///   a caller with a deadline, which then discards the result).
  /// - Returns: per input of `wrt`, the AD gradient, the finite-difference gradient and the largest relative error
  ///   `|ad - fd| / max(1, |fd|)`.
  public func gradientCheck(output: Int = 0, wrt: [Int]? = nil, eps: Double = 1e-6, proceed: () -> Bool = { true })
    -> [(
      analytic: Tensor, numeric: Tensor, maxRelativeError: Double
    )]
  {
    let inputs = wrt ?? Array(program.inputs.indices)
    let (_, adjoints) = valueWithPullback(output: output, wrt: inputs)
    let outSlot = program.outputs[output].slot
    var results: [(analytic: Tensor, numeric: Tensor, maxRelativeError: Double)] = []
    for index in inputs {
      let slot = program.slots[program.inputs[index].slot]
      var numeric = [Double](repeating: 0, count: slot.count)
      var worst = 0.0
      for i in 0..<slot.count where proceed() {
        let x = arena.values[slot.offset + i]
        let h = eps * Swift.max(1, Swift.abs(x))
        arena.values[slot.offset + i] = x + h
        forward()
        let up = scalarValue(ofSlot: outSlot)
        arena.values[slot.offset + i] = x - h
        forward()
        let down = scalarValue(ofSlot: outSlot)
        arena.values[slot.offset + i] = x
        numeric[i] = (up - down) / (2 * h)
        let error = Swift.abs(adjoints[index].scalars[i] - numeric[i]) / Swift.max(1, Swift.abs(numeric[i]))
        worst = error.isNaN ? .infinity : Swift.max(worst, error)
      }
      results.append((adjoints[index], Tensor(shape: slot.shape, scalars: numeric), worst))
    }
    forward()
    return results
  }

  /// Where a NaN or infinity first appeared.
  public struct NonFinite: Sendable, Equatable {
    /// The instruction that produced it.
    public let instruction: Int
    /// True when it appeared in the reverse sweep (an adjoint), false in the forward sweep (a value).
    public let inBackward: Bool
  }

  /// Runs forward (and, with `backward`, reverse for one output) one instruction at a time and reports the first
  /// instruction whose result holds a NaN or an infinity that its operands did not already hold.
  public func firstNonFinite(output: Int = 0, backward: Bool, seed: [Double]? = nil, wrt: [Int]? = nil) -> NonFinite? {
    let values = arena.values
    func finite(_ base: UnsafeMutablePointer<Double>, _ slot: Int) -> Bool {
      let info = program.slots[slot]
      for i in 0..<info.count where !base[info.offset + i].isFinite { return false }
      return true
    }
    for index in program.code.indices {
      Executor.forward(program, index, values, arena.scratch)
      let instruction = program.code[index]
      if !finite(values, Int(instruction.out))
        && program.operands(instruction).allSatisfy({ finite(values, $0) })
      {
        return NonFinite(instruction: index, inBackward: false)
      }
    }
    guard backward else { return nil }
    let active = activeMask(wrt)
    gradientAhead = false  // the adjoints are overwritten below
    let adjoints = arena.adjoints
    adjoints.update(repeating: 0, count: Swift.max(program.arenaCount, 1))
    let out = program.slots[program.outputs[output].slot]
    for i in 0..<out.count { adjoints[out.offset + i] = seed?[i] ?? 1 }
    var index = program.code.count
    while index > 0 {
      index -= 1
      let instruction = program.code[index]
      let operands = program.operands(instruction).filter { active.slots[$0] }
      let before = operands.map { finite(adjoints, $0) }
      Executor.reverse(program, index, values, adjoints, arena.scratch, active.slots)
      for (operand, wasFinite) in zip(operands, before) where wasFinite && !finite(adjoints, operand) {
        return NonFinite(instruction: index, inBackward: true)
      }
    }
    return nil
  }
}
