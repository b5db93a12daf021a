/// A compiled, immutable program: a flat list of single-assignment instructions over slots.
///
/// Every slot is an input, a constant or the output of exactly one instruction, and an instruction reads only
/// slots defined before it, so program order is a topological order. A program is verified when it is built,
/// and it is `Sendable`: many workers replay one program at once, each in its own ``Workspace``.
public struct Program: Sendable {
  /// A named slot: an input or an output of the program.
  public struct Binding: Sendable, Equatable {
    /// The name the request uses.
    public let name: String
    /// The slot that holds it.
    public let slot: Int
  }

  /// Where a slot's elements live in a workspace's arenas.
  public struct Slot: Sendable, Equatable {
    /// The tensor shape of the slot.
    public let shape: [Int]
    /// The index of the slot's first element in the arena.
    public let offset: Int
    /// The number of elements.
    public let count: Int
  }

  /// One step of the program: `out = op(a, b, c)`; unused operands are -1, and concat lists its operands in its
  /// plan.
  struct Instruction: Sendable, Equatable {
    var op: OpCode
    var out: Int32
    var a: Int32
    var b: Int32
    var c: Int32
    var plan: Int32
  }

  /// Every slot, in definition order.
  public let slots: [Slot]
  /// The program's inputs, in the order they were declared.
  public let inputs: [Binding]
  /// The program's outputs.
  public let outputs: [Binding]
  let code: [Instruction]
  let plans: [Plan]
  /// For each instruction, the front end's tag of the source that produced it (an expression offset or a node index).
  public let origins: [Int32]
  let constants: [(slot: Int, scalars: [Double])]
  /// The number of elements each arena of a workspace holds.
  public let arenaCount: Int
  /// The number of scratch elements the largest instruction needs.
  let scratchCount: Int
  /// True when every slot holds one element and every op is elementwise: the executor then runs a specialised loop.
  let allScalar: Bool
  /// The fused runs of elementwise instructions (see `Fusion`).
  let fusedGroups: [FusedGroup]
  /// Per instruction: the index of the fused run it starts, or -1.
  let groupStart: [Int32]
  /// Per instruction: the index of the fused run it ends, or -1.
  let groupEnd: [Int32]
  /// The block registers the largest fused run needs, values and adjoints together.
  let fusionScratchCount: Int
  /// Per slot: true when the reverse sweep must not zero the slot's adjoint beforehand: a fused run keeps the slot in
  /// block registers, or a fused run is its only reader and zeroes its adjoint itself.
  let fusedAway: [Bool]
  /// Per slot: true when the slot is an output.
  let outputSlots: [Bool]
  /// Per slot: the instruction whose reverse rule stores the slot's adjoint rather than adding to it, so that it
  /// needs no zeroing before a reverse sweep, or -1 (``Executor/adjointStorers(code:plans:slots:outputs:fusedAway:groups:)``).
  let adjointStorers: [Int32]
  /// The output whose value and gradient one pass can compute together: set when the whole program is one fused run
  /// that keeps every result in registers and ends in a `sum` that is this output.
  let fusedGradientOutput: Int?
  /// For scalar programs, per instruction: bit 0 (1) when its reverse rule is the first to reach operand `a`'s adjoint
  /// in a reverse sweep, bit 1 (2) the same for `b` (add, sub, mul; sin and cos for `a`); such a contribution is
  /// stored rather than added, which takes an add off the sweep's chain of dependent loads and stores. Empty for
  /// other programs.
  let scalarFirstContributions: [UInt8]
  /// For scalar programs, the instructions as the replay loops of a workspace run them (``ScalarStep``); empty for
  /// other programs.
  let scalarSteps: [ScalarStep]

  /// Whether a fused run keeps `slot` in registers only.
  func isFusedAway(_ slot: Int) -> Bool { fusedAway[slot] }
  /// Whether `slot` is an output.
  func isOutput(_ slot: Int) -> Bool { outputSlots[slot] }

  /// The number of instructions.
  public var instructionCount: Int { code.count }

  /// The input with the given name.
  public func input(named name: String) -> Binding? { inputs.first { $0.name == name } }

  /// The index of the input with the given name.
  public func inputIndex(named name: String) -> Int? { inputs.firstIndex { $0.name == name } }

  /// The op of instruction `index`.
  public func op(at index: Int) -> OpCode { code[index].op }

  /// The slots instruction `index` reads.
  func operands(_ instruction: Instruction) -> [Int] {
    if case .concat(let parts) = plans[Int(instruction.plan)] { return parts.map(\.slot) }
    return [instruction.a, instruction.b, instruction.c].filter { $0 >= 0 }.map(Int.init)
  }

  /// A readable listing of the program, one line per input, constant and instruction.
  ///
  /// ```
  /// %0 = input x []
  /// %2 = mul %0 %1 []
  /// ```
  public var listing: String {
    var lines: [String] = []
    for binding in inputs { lines.append("%\(binding.slot) = input \(binding.name) \(slots[binding.slot].shape)") }
    for constant in constants {
      let text = constant.scalars.count == 1 ? "\(constant.scalars[0])" : "<\(constant.scalars.count) values>"
      lines.append("%\(constant.slot) = const \(text) \(slots[constant.slot].shape)")
    }
    for instruction in code {
      let operands = operands(instruction).map { "%\($0)" }.joined(separator: " ")
      lines.append("%\(instruction.out) = \(instruction.op.name) \(operands) \(slots[Int(instruction.out)].shape)")
    }
    for output in outputs { lines.append("output \(output.name) = %\(output.slot)") }
    return lines.joined(separator: "\n")
  }

  init(
    slots: [Slot], inputs: [Binding], outputs: [Binding], code: [Instruction], plans: [Plan], origins: [Int32],
    constants: [(slot: Int, scalars: [Double])], scratchCount: Int
  ) {
    self.slots = slots
    self.inputs = inputs
    self.outputs = outputs
    self.code = code
    self.plans = plans
    self.origins = origins
    self.constants = constants
    self.scratchCount = scratchCount
    self.arenaCount = slots.last.map { $0.offset + $0.count } ?? 0
    self.allScalar = slots.allSatisfy { $0.count == 1 } && code.allSatisfy { $0.op.isElementwise }
    let groups = Fusion.groups(code: code, plans: plans, slots: slots, inputs: inputs, outputs: outputs)
    var groupStart = [Int32](repeating: -1, count: code.count)
    var groupEnd = [Int32](repeating: -1, count: code.count)
    for (index, group) in groups.enumerated() {
      groupStart[group.first] = Int32(index)
      groupEnd[group.last] = Int32(index)
    }
    self.fusedGroups = groups
    self.groupStart = groupStart
    self.groupEnd = groupEnd
    self.fusionScratchCount = 2 * Fusion.block * (groups.map(\.registers).max() ?? 0)
    var fusedAway = [Bool](repeating: false, count: slots.count)
    for group in groups {
      for index in group.first...group.last where code[index].op != .sum {
        // Results kept in registers, and views read in place; results the run writes to the arena are not.
        let out = Int(code[index].out)
        let step = group.steps.first { $0.index == index }
        fusedAway[out] = step?.output != .arena(slot: out, offset: 0, stride: 1)
      }
    }
    for group in groups {
      // A run that alone reads a slot zeroes its adjoint itself.
      for entry in group.owned { fusedAway[entry.slot] = true }
    }
    self.fusedAway = fusedAway
    var outputSlots = [Bool](repeating: false, count: slots.count)
    for output in outputs { outputSlots[output.slot] = true }
    self.outputSlots = outputSlots
    scalarFirstContributions = allScalar ? Self.firstContributions(code, outputs: outputSlots) : []
    scalarSteps = allScalar ? ScalarStep.steps(code, firstContributions: scalarFirstContributions) : []
    // The scalar executor's reverse sweep always accumulates.
    adjointStorers =
      allScalar
      ? [Int32](repeating: -1, count: slots.count)
      : Executor.adjointStorers(
        code: code, plans: plans, slots: slots, outputs: outputSlots, fusedAway: fusedAway, groups: groups)
    if groups.count == 1, let group = groups.first, group.first == 0, group.last == code.count - 1,
      let sum = group.sum, group.steps.allSatisfy({ $0.output.register != nil })
    {
      fusedGradientOutput = outputs.firstIndex { $0.slot == sum.slot }
    } else {
      fusedGradientOutput = nil
    }
  }

  /// The flags of ``scalarFirstContributions``: the reverse sweep reaches a slot's adjoint first from the slot's last
  /// reader, at operand `a` before `b`. Outputs are never stored to (their seed is already there), and the arena is
  /// still zeroed before a sweep, so a skipped instruction (zero adjoint) leaves correct zeros behind it.
  private static func firstContributions(_ code: [Instruction], outputs: [Bool]) -> [UInt8] {
    var flags = [UInt8](repeating: 0, count: code.count)
    var reached = outputs
    for index in code.indices.reversed() {
      let instruction = code[index]
      let a = Int(instruction.a)
      let b = Int(instruction.b)
      switch instruction.op {
      case .add, .sub, .mul:
        if !reached[a] {
          flags[index] |= 1
          reached[a] = true
        }
        if !reached[b] {
          flags[index] |= 2
          reached[b] = true
        }
      case .sin, .cos:
        if !reached[a] {
          flags[index] |= 1
          reached[a] = true
        }
      default:
        // Other rules accumulate; what they read counts as reached.
        // (No array literal here: this runs once per instruction of every program built.)
        if a >= 0 { reached[a] = true }
        if b >= 0 { reached[b] = true }
        if instruction.c >= 0 { reached[Int(instruction.c)] = true }
      }
    }
    return flags
  }

  /// Checks the program's invariants: single assignment, definition before use, operand shapes that fit each op,
  /// slots laid out contiguously, outputs defined.
  ///
  /// - Throws: ``ProgramError/invalid(_:)`` naming the first broken invariant.
  public func verify() throws(ProgramError) {
    var defined = [Bool](repeating: false, count: slots.count)
    var offset = 0
    for (index, slot) in slots.enumerated() {
      guard slot.offset == offset, slot.count == Tensor.elementCount(slot.shape) else {
        throw .invalid("slot %\(index) is not laid out contiguously")
      }
      offset += slot.count
    }
    func define(_ slot: Int, _ what: String) throws(ProgramError) {
      guard slot >= 0, slot < slots.count else { throw .invalid("\(what) names slot %\(slot), which does not exist") }
      guard !defined[slot] else { throw .invalid("slot %\(slot) is assigned twice (\(what))") }
      defined[slot] = true
    }
    for binding in inputs { try define(binding.slot, "input \(binding.name)") }
    for constant in constants {
      try define(constant.slot, "constant")
      guard constant.scalars.count == slots[constant.slot].count else {
        throw .invalid("constant %\(constant.slot) has the wrong number of elements")
      }
    }
    guard origins.count == code.count else { throw .invalid("origins and instructions differ in count") }
    for (index, instruction) in code.enumerated() {
      guard instruction.plan >= 0, Int(instruction.plan) < plans.count else {
        throw .invalid("instruction \(index) has no plan")
      }
      let operands = operands(instruction)
      for operand in operands {
        guard operand >= 0, operand < slots.count, defined[operand] else {
          throw .invalid("instruction \(index) (\(instruction.op.name)) reads %\(operand) before it is defined")
        }
      }
      if let arity = instruction.op.arity, arity != operands.count {
        throw .invalid("instruction \(index) (\(instruction.op.name)) has \(operands.count) operands, not \(arity)")
      }
      try define(Int(instruction.out), "instruction \(index)")
    }
    for output in outputs {
      guard output.slot >= 0, output.slot < slots.count, defined[output.slot] else {
        throw .invalid("output \(output.name) names an undefined slot")
      }
    }
  }
}

/// One instruction of a scalar program, encoded for the replay loops of a workspace
/// (``Executor/scalarReplayForward(_:_:_:)`` and ``Executor/scalarReplayReverse(_:_:_:_:)``).
///
/// Those loops keep the chain of dependent results in registers: the forward loop keeps the last result, and reads
/// an operand from it rather than from the arena when the operand is the previous instruction's output; the reverse
/// loop keeps the operand adjoints the last reverse rule wrote, and takes an instruction's cotangent from them when
/// that rule was the last to reach it. A value stored and at once loaded again waits for the store to forward; a
/// register does not, and these chains are what a scalar program's replay waits on.
struct ScalarStep: Sendable, Equatable {
  /// The ops the loops run inline; every other op runs as the interpreter's scalar rules run it.
  enum Kind: UInt8, Sendable {
    case other, add, sub, mul, div, sin, cos
  }

  /// The op.
  var op: OpCode
  /// The forward encoding: the kind in bits 2 and up; bit 0 when operand `a` is the previous instruction's output,
  /// bit 1 the same for `b`.
  var forward: UInt8
  /// The reverse encoding: the kind in bits 4 and up (`other` for ops whose reverse rule runs on the arena alone:
  /// div); the first-contribution flags of ``Program/scalarFirstContributions`` in bits 2 and 3; in bits 0 and 1,
  /// where the cotangent is: 0 in the arena, 1 in the adjoint of operand `a` that the next instruction's reverse rule
  /// (run just before) wrote, 2 in that of its operand `b`.
  var reverse: UInt8
  var out: Int32
  var a: Int32
  var b: Int32
  var c: Int32

  static let fromPreviousA: UInt8 = 1
  static let fromPreviousB: UInt8 = 2

  /// The steps of `code`, an all-scalar program's instructions.
  static func steps(_ code: [Program.Instruction], firstContributions: [UInt8]) -> [ScalarStep] {
    func kind(_ op: OpCode) -> Kind {
      switch op {
      case .add: .add
      case .sub: .sub
      case .mul: .mul
      case .div: .div
      case .sin: .sin
      case .cos: .cos
      default: .other
      }
    }
    var steps: [ScalarStep] = []
    steps.reserveCapacity(code.count)
    for (index, instruction) in code.enumerated() {
      let forwardKind = kind(instruction.op)
      var forward = forwardKind.rawValue << 2
      if forwardKind != .other, index > 0 {
        let previous = code[index - 1].out
        if instruction.a == previous { forward |= fromPreviousA }
        if instruction.b == previous && forwardKind.isBinary { forward |= fromPreviousB }
      }
      let reverseKind = forwardKind == .div ? Kind.other : forwardKind
      var reverse = reverseKind.rawValue << 4 | (firstContributions[index] & 3) << 2
      if index + 1 < code.count {
        let next = code[index + 1]
        let nextKind = kind(next.op)
        // The next rule writes `a`, then `b`: when both are this output, its adjoint is the one written last.
        if nextKind != .other && nextKind != .div {
          if nextKind.isBinary && next.b == instruction.out {
            reverse |= fromPreviousB
          } else if next.a == instruction.out {
            reverse |= fromPreviousA
          }
        }
      }
      steps.append(
        ScalarStep(
          op: instruction.op, forward: forward, reverse: reverse, out: instruction.out, a: instruction.a,
          b: instruction.b, c: instruction.c))
    }
    return steps
  }
}

extension ScalarStep.Kind {
  /// Whether the op reads two operands.
  var isBinary: Bool {
    switch self {
    case .add, .sub, .mul, .div: true
    case .other, .sin, .cos: false
    }
  }
}

/// An error in the structure of a program: a bug in a front end, never the user's input.
public enum ProgramError: Error, Equatable {
  /// The program breaks an invariant; the text says which.
  case invalid(String)
}

/// An operand shape or attribute that an operation cannot take.
public struct ShapeError: Error, Equatable, Sendable {
  /// What is wrong, for a person: "add: cannot broadcast shapes [2, 3] and [3, 2]".
  public let message: String
  /// True when the shapes fit the op but the result is over a limit of ``ProgramLimits``.
  public let isLimit: Bool
  /// Creates the error.
  public init(_ message: String, isLimit: Bool = false) {
    self.message = message
    self.isLimit = isLimit
  }
}

/// How large a program's tensors may grow: every shape is checked when an op is appended, so that no request can
/// make the engine overflow an index or allocate without bound.
public struct ProgramLimits: Sendable, Equatable {
  /// The most elements of one intermediate tensor (default 2^26, 512 MiB of doubles).
  public var maxSlotElements: Int
  /// The most elements of all slots together, one arena of a workspace (default 2^27).
  public var maxArenaElements: Int

  /// Creates limits; the defaults are the engine's.
  public init(maxSlotElements: Int = 1 << 26, maxArenaElements: Int = 1 << 27) {
    self.maxSlotElements = maxSlotElements
    self.maxArenaElements = maxArenaElements
  }
}
