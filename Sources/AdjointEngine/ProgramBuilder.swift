/// Builds a ``Program`` one operation at a time, checking shapes as it goes.
///
/// ```swift
/// var builder = ProgramBuilder()
/// let x = builder.input("x", shape: [3])
/// let y = try builder.apply(.sum, [try builder.apply(.sin, x)], OpAttributes(axes: [0]))
/// let program = try builder.build(outputs: [("out", y)])
/// ```
public struct ProgramBuilder {
  /// A handle to a slot of the program under construction.
  public struct Value: Hashable, Sendable {
    /// The slot index.
    public let slot: Int
  }

  private(set) var slots: [Program.Slot] = []
  private var inputs: [Program.Binding] = []
  private(set) var code: [Program.Instruction] = []
  private(set) var plans: [Plan] = [.none]
  private var origins: [Int32] = []
  private(set) var constants: [(slot: Int, scalars: [Double])] = []
  private var scalarConstants: [UInt64: Value] = [:]
  private var offset = 0
  private var scratchCount = 0
  /// How large tensors may grow; checked at every ``apply(_:_:_:origin:)``.
  public var limits = ProgramLimits()

  /// Creates an empty builder.
  public init(limits: ProgramLimits = ProgramLimits()) {
    self.limits = limits
  }

  /// The shape of a value.
  public func shape(of value: Value) -> [Int] { slots[value.slot].shape }

  /// The number of instructions so far.
  public var instructionCount: Int { code.count }

  private mutating func newSlot(_ shape: [Int]) -> Value {
    let count = Tensor.elementCount(shape)
    slots.append(Program.Slot(shape: shape, offset: offset, count: count))
    offset += count
    return Value(slot: slots.count - 1)
  }

  /// Declares an input of the given shape.
  ///
  /// - Precondition: `ShapeRules.isAddressable(shape)`; front ends check shapes from requests first.
  public mutating func input(_ name: String, shape: [Int]) -> Value {
    precondition(ShapeRules.isAddressable(shape), "input \(name) has a shape too large to address: \(shape)")
    let value = newSlot(shape)
    inputs.append(Program.Binding(name: name, slot: value.slot))
    return value
  }

  /// A constant tensor; equal scalar constants share one slot.
  public mutating func constant(_ tensor: Tensor) -> Value {
    if tensor.rank == 0, let existing = scalarConstants[tensor.scalars[0].bitPattern] { return existing }
    let value = newSlot(tensor.shape)
    constants.append((value.slot, tensor.scalars))
    if tensor.rank == 0 { scalarConstants[tensor.scalars[0].bitPattern] = value }
    return value
  }

  /// A rank-0 constant.
  public mutating func constant(_ scalar: Double) -> Value { constant(Tensor(scalar)) }

  /// Appends `op` applied to `operands`.
  ///
  /// - Parameters:
  ///   - op: the operation.
  ///   - operands: as many values as `op.arity` says (any number, at least one, for `concat`).
  ///   - attributes: axes, shapes, bounds, as the op needs.
  ///   - origin: the front end's tag for this operation (an offset into `expr`, a node index), kept for errors.
  /// - Throws: ``ShapeError`` when the operands' shapes or the attributes do not fit `op`.
  public mutating func apply(
    _ op: OpCode, _ operands: [Value], _ attributes: OpAttributes = OpAttributes(), origin: Int32 = -1
  ) throws(ShapeError) -> Value {
    // x^2 with a constant 2 is x·x (exactly, as C's pow rounds correctly), without a call to pow.
    if op == .pow, operands.count == 2, scalarConstants[Double(2).bitPattern] == operands[1],
      shape(of: operands[1]) == []
    {
      return try apply(.square, [operands[0]], attributes, origin: origin)
    }
    var (shape, plan, scratch) = try ShapeRules.infer(op, operands.map { slots[$0.slot].shape }, attributes)
    let count = Tensor.elementCount(shape)
    guard ShapeRules.isAddressable(shape), count <= limits.maxSlotElements else {
      throw ShapeError(
        "\(op.name): the result of shape \(shape) would have more than \(limits.maxSlotElements) elements",
        isLimit: true)
    }
    guard offset + count <= limits.maxArenaElements else {
      throw ShapeError(
        "\(op.name): the program would hold more than \(limits.maxArenaElements) elements in all", isLimit: true)
    }
    if case .concat(var parts) = plan {
      for index in parts.indices { parts[index].slot = operands[index].slot }
      plan = .concat(parts)
    }
    let out = newSlot(shape)
    var planIndex: Int32 = 0
    if plan != .none {
      plans.append(plan)
      planIndex = Int32(plans.count - 1)
    }
    scratchCount = max(scratchCount, scratch)
    func slot(_ i: Int) -> Int32 { i < operands.count && op != .concat ? Int32(operands[i].slot) : -1 }
    code.append(Program.Instruction(op: op, out: Int32(out.slot), a: slot(0), b: slot(1), c: slot(2), plan: planIndex))
    origins.append(origin)
    return out
  }

  /// Appends `op` applied to the operands, with default attributes.
  public mutating func apply(_ op: OpCode, _ operands: Value..., origin: Int32 = -1) throws(ShapeError) -> Value {
    try apply(op, operands, OpAttributes(), origin: origin)
  }

  /// Finishes the program with the given named outputs and verifies it.
  ///
  /// - Throws: ``ProgramError`` if the program breaks an invariant (a bug, not a user error).
  public func build(outputs: [(name: String, value: Value)]) throws(ProgramError) -> Program {
    let program = Program(
      slots: slots, inputs: inputs, outputs: outputs.map { Program.Binding(name: $0.name, slot: $0.value.slot) },
      code: code, plans: plans, origins: origins, constants: constants, scratchCount: scratchCount)
    try program.verify()
    return program
  }
}

// MARK: - Recording for the eager tape

extension ProgramBuilder {
  /// The number of scratch elements the largest instruction so far needs.
  var scratchElements: Int { scratchCount }

  /// The number of arena elements the slots so far take.
  var arenaElements: Int { offset }

  /// Appends an elementwise op on rank-0 operands (`b` and `c` are -1 when absent) without running the shape rule,
  /// whose answer is known: a rank-0 output and no plan. This is the ``Tape``'s per-op path for scalars.
  ///
  /// - Returns: the output slot; its arena offset is ``arenaElements`` before the call.
  @inline(__always)
  mutating func appendScalar(_ op: OpCode, _ a: Int32, _ b: Int32, _ c: Int32 = -1) -> Int32 {
    let out = Int32(truncatingIfNeeded: slots.count)
    slots.append(Program.Slot(shape: [], offset: offset, count: 1))
    offset += 1
    code.append(Program.Instruction(op: op, out: out, a: a, b: b, c: c, plan: 0))
    origins.append(-1)
    return out
  }

  /// Reserves room for `count` slots and instructions.
  mutating func reserveCapacity(_ count: Int) {
    slots.reserveCapacity(count)
    code.reserveCapacity(count)
    origins.reserveCapacity(count)
  }

  /// Forgets every slot and instruction: an empty builder that keeps the memory of the large arrays for the next
  /// recording.
  mutating func removeAll() {
    var fresh = ProgramBuilder()
    slots.removeAll(keepingCapacity: true)
    swap(&fresh.slots, &slots)
    code.removeAll(keepingCapacity: true)
    swap(&fresh.code, &code)
    origins.removeAll(keepingCapacity: true)
    swap(&fresh.origins, &origins)
    self = fresh
  }

  /// The program recorded so far, without verifying it: the first `instructionCount` instructions over every slot.
  /// The ``Tape``'s reverse sweep runs on it.
  func snapshot(instructionCount: Int, outputs: [Program.Binding]) -> Program {
    let whole = instructionCount == code.count
    return Program(
      slots: slots, inputs: inputs, outputs: outputs, code: whole ? code : Array(code[..<instructionCount]),
      plans: plans, origins: whole ? origins : Array(origins[..<instructionCount]), constants: constants,
      scratchCount: scratchCount)
  }
}
