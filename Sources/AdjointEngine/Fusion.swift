// Fusion of elementwise chains (as numexpr does). A run of consecutive elementwise instructions over tensors of one
// size N — fed by whole slots, one-element slots (broadcast) and one-dimensional views such as `slice` — and
// optionally ended by a `sum` over everything, runs block by block: each block of B elements goes through every
// instruction of the run while it sits in the L1 cache. Intermediates that nothing outside the run reads live only in
// block-sized registers; the reverse sweep recomputes them block by block (rematerialisation) instead of reading them
// from memory. Memory then streams once per run instead of once per instruction.
//
// The reverse sweep does as few passes over a block as it can. It recomputes only the registers whose values some
// reverse rule reads. A register whose adjoint is the same for every element (what a closing `sum` hands down through
// add, sub, neg and products with a broadcast scalar) is "uniform": its adjoint is one number per run, worked out
// before the first block, and never stored. The first contribution to any other register assigns instead of adding,
// so no adjoint register is zeroed; a register whose one contribution is plus or minus another adjoint block shares
// that block. Forward, a square read by one add, sub or mul alone is computed by its reader, the terms of a closing
// sum go into the total unstored, and dead registers are reused so that a block's registers stay in the L1 cache.
// A program that is one such run ending in a scalar sum can run its forward and reverse sweeps together, block by
// block (`Workspace.forward()` does when a gradient of that sum followed the last forward sweep).

/// Where a fused instruction reads or writes a block of its operand.
enum FusedRef: Sendable, Equatable {
  /// A block register of the run.
  case register(Int)
  /// A slot in the arena, at `offset + i * stride`; stride 1 is read in place.
  case arena(slot: Int, offset: Int, stride: Int)
  /// A one-element slot, broadcast through the block register given.
  case scalar(slot: Int, register: Int)

  /// The placeholder of an operand an op does not have.
  static let unused = FusedRef.register(-1)

  /// Whether the ref is a broadcast scalar.
  var isScalar: Bool {
    if case .scalar = self { return true }
    return false
  }

  /// The register, for a register or a scalar.
  var register: Int? {
    switch self {
    case .register(let r), .scalar(_, let r): return r
    case .arena: return nil
    }
  }
}

/// One fused run of instructions.
struct FusedGroup: Sendable {
  /// One instruction of the run: the op, its operand refs and its output ref, with what the reverse sweep needs to
  /// know about it. Every field is a plain value, so that walking the steps block after block costs no reference
  /// counting.
  struct Step: Sendable, Equatable {
    var index: Int
    var op: OpCode
    /// The instruction's output slot.
    var out: Int
    /// The number of operands (1 to 3).
    var arity: Int
    var a: FusedRef
    var b: FusedRef = .unused
    var c: FusedRef = .unused
    var output: FusedRef
    /// Whether the reverse sweep recomputes this step's register, because a reverse rule reads it.
    var recompute = false
    /// Whether the output's adjoint is uniform (one number for every element; register outputs only).
    var uniform = false
    /// Per operand: whether this step's contribution is the first to a register's adjoint and so assigns.
    var assignA = false
    var assignB = false
    var assignC = false
    /// Per operand and for the output: where a block's elements start, in the arena (the slot's offset plus the
    /// view's, before adding the block's start) or in the registers (the register times the block size).
    var baseA = 0
    var baseB = 0
    var baseC = 0
    var baseOut = 0
    /// Per operand: the slot it reads (for a register, the slot the register holds), or -1.
    var slotA = -1
    var slotB = -1
    var slotC = -1
    /// Per operand held in a register: the position in the run of the step that produces it, or -1.
    var producerA = -1
    var producerB = -1
    var producerC = -1
    /// Per operand: whether it is a register whose adjoint is uniform.
    var uniformA = false
    var uniformB = false
    var uniformC = false
    /// Per operand: whether the operand's adjoint is an alias of this step's (so the step writes nothing to it).
    var aliasA = false
    var aliasB = false
    var aliasC = false
    /// For a register output: where its adjoint block starts among the adjoint registers (its own, or the block it
    /// aliases), and whether the adjoint is the negation of that block.
    var adjointBase = 0
    var negated = false
    /// A square whose one reader computes it itself (from this step's operand): the forward sweeps skip it.
    var inlined = false
    /// Per operand of a binary step: whether it is read as the square of `inA` (`inB`) at `inBaseA` (`inBaseB`),
    /// the operand of an inlined square.
    var squareA = false
    var squareB = false
    var inA = FusedRef.unused
    var inB = FusedRef.unused
    var inBaseA = 0
    var inBaseB = 0
    /// Per operand: whether the contribution goes straight to the arena adjoint at `redirectBaseA` (`B`) of slot
    /// `redirectSlotA` (`B`), negated or not, because the operand is a sum, difference or negation of one arena view
    /// and the rest constants, read by this step alone; that step's own reverse rule is then skipped (`bypassed`).
    var redirectA = false
    var redirectB = false
    var redirectBaseA = 0
    var redirectBaseB = 0
    var redirectSlotA = -1
    var redirectSlotB = -1
    var redirectNegatedA = false
    var redirectNegatedB = false
    var bypassed = false

    init(index: Int, op: OpCode, out: Int, operands: [FusedRef], output: FusedRef) {
      self.index = index
      self.op = op
      self.out = out
      self.arity = operands.count
      self.a = operands[0]
      if operands.count > 1 { self.b = operands[1] }
      if operands.count > 2 { self.c = operands[2] }
      self.output = output
    }

    /// The operand refs, in order.
    var operands: [FusedRef] { Array([a, b, c].prefix(arity)) }

    /// Operand `j`.
    @inline(__always)
    func operand(_ j: Int) -> FusedRef { j == 0 ? a : j == 1 ? b : c }

    /// The base of operand `j`.
    @inline(__always)
    func base(_ j: Int) -> Int { j == 0 ? baseA : j == 1 ? baseB : baseC }

    /// The slot of operand `j`.
    @inline(__always)
    func slot(_ j: Int) -> Int { j == 0 ? slotA : j == 1 ? slotB : slotC }

    /// The producer of operand `j`.
    @inline(__always)
    func producer(_ j: Int) -> Int { j == 0 ? producerA : j == 1 ? producerB : producerC }

    /// Whether operand `j` is a register with a uniform adjoint.
    @inline(__always)
    func isUniform(_ j: Int) -> Bool { j == 0 ? uniformA : j == 1 ? uniformB : uniformC }

    /// Whether operand `j`'s adjoint aliases this step's.
    @inline(__always)
    func isAlias(_ j: Int) -> Bool { j == 0 ? aliasA : j == 1 ? aliasB : aliasC }

    /// Whether the contribution to operand `j` assigns.
    @inline(__always)
    func assigns(_ j: Int) -> Bool { j == 0 ? assignA : j == 1 ? assignB : assignC }

    /// Whether the reverse rule of `op` sends a gradient to operand `j`.
    static func contributes(_ op: OpCode, _ j: Int) -> Bool {
      switch op.family {
      case .unary: return op != .sign
      case .binary, .view: return true
      case .select: return j > 0
      default: return false
      }
    }
  }

  /// The first and last instruction indices (inclusive).
  var first: Int
  var last: Int
  /// The number of elements of every tensor in the run.
  var count: Int
  var steps: [Step]
  /// The `sum` that ends the run, if any: its operand and output slot.
  var sum: (operand: FusedRef, slot: Int)?
  /// Whether the closing sum's contribution to its operand (a register whose adjoint is not uniform) assigns.
  var sumAssigns = false
  /// Whether the last step (an add, sub or mul of two blocks) feeds the closing sum alone and nothing reads its
  /// value: on doubles its terms then go into the sum without being stored.
  var sumFused = false
  /// The number of block registers the run needs (values; the reverse sweep needs as many again for adjoints).
  var registers: Int
  /// The broadcast scalars the run reads.
  var scalars: [FusedRef]
  /// Whether the closing sum's operand is a register with a uniform adjoint, and the position of its producer.
  var sumUniform = false
  var sumProducer = -1
  /// Slots that only this run reads, with the views it reads them through (all with positive strides): their
  /// adjoints are zeroed by the run, block by block just ahead of its writes, instead of in a separate pass.
  var owned: [(slot: Int, views: [(offset: Int, stride: Int)])] = []
}

enum Fusion {
  /// The number of elements in a block.
  static let block = 512
  /// The most instructions in one run (a closing sum comes on top). Longer chains are cut into several runs, so the
  /// block registers of a run (at most about three per instruction, each a block of values and one of adjoints) stay
  /// bounded whatever the program, and building a run stays linear.
  static let maxRunLength = 32

  /// Finds the fusable runs of a program.
  static func groups(
    code: [Program.Instruction], plans: [Plan], slots: [Program.Slot], inputs: [Program.Binding],
    outputs: [Program.Binding]
  ) -> [FusedGroup] {
    // Where each slot is read, to know which results a run must write to the arena.
    var readers = [[Int]](repeating: [], count: slots.count)
    for (index, instruction) in code.enumerated() {
      for operand in operandSlots(instruction, plans) { readers[operand].append(index) }
    }
    var isOutput = [Bool](repeating: false, count: slots.count)
    for output in outputs { isOutput[output.slot] = true }
    // Which slots may ever need an adjoint: those that depend on some input (constants never do).
    var variable = [Bool](repeating: false, count: slots.count)
    for input in inputs { variable[input.slot] = true }
    for instruction in code where instruction.op != .stopGradient && instruction.op.family != .comparison {
      if operandSlots(instruction, plans).contains(where: { variable[$0] }) { variable[Int(instruction.out)] = true }
    }

    var groups: [FusedGroup] = []
    var index = 0
    while index < code.count {
      let n = slots[Int(code[index].out)].count
      var produced: Set<Int> = []
      guard n > 1, fusable(code[index], plans, slots, n, produced) else {
        index += 1
        continue
      }
      produced.insert(Int(code[index].out))
      var end = index
      while end + 1 < code.count, end + 1 - index < maxRunLength, fusable(code[end + 1], plans, slots, n, produced) {
        end += 1
        produced.insert(Int(code[end].out))
      }
      var sumIndex: Int?
      if end + 1 < code.count, isTotalSum(code[end + 1], plans, slots, n) { sumIndex = end + 1 }
      let last = sumIndex ?? end
      if last - index >= 1 {
        var group = build(
          first: index, end: end, sum: sumIndex, n: n, code: code, plans: plans, slots: slots, readers: readers,
          isOutput: isOutput)
        analyzeReverse(&group, variable: variable)
        groups.append(group)
      }
      index = last + 1
    }
    return groups
  }
  private static func operandSlots(_ instruction: Program.Instruction, _ plans: [Plan]) -> [Int] {
    if case .concat(let parts) = plans[Int(instruction.plan)] { return parts.map(\.slot) }
    return [instruction.a, instruction.b, instruction.c].filter { $0 >= 0 }.map(Int.init)
  }

  /// Elementwise over n elements with operands of n or 1 elements (same shape), or a one-dimensional view of a
  /// slot the run does not produce (a view may read elements of other blocks).
  private static func fusable(
    _ instruction: Program.Instruction, _ plans: [Plan], _ slots: [Program.Slot], _ n: Int, _ produced: Set<Int>
  ) -> Bool {
    let out = slots[Int(instruction.out)]
    guard out.count == n else { return false }
    let plan = plans[Int(instruction.plan)]
    if instruction.op.isElementwise {
      return operandSlots(instruction, plans).allSatisfy { slots[$0].count == 1 || slots[$0].shape == out.shape }
    }
    if instruction.op.family == .view, case .map(let map) = plan {
      return map.rank == 1 && !produced.contains(Int(instruction.a))
    }
    return false
  }

  private static func isTotalSum(_ instruction: Program.Instruction, _ plans: [Plan], _ slots: [Program.Slot], _ n: Int)
    -> Bool
  {
    instruction.op == .sum && slots[Int(instruction.a)].count == n && slots[Int(instruction.out)].count == 1
  }

  // swiftlint:disable:next function_parameter_count
  private static func build(
    first: Int, end: Int, sum: Int?, n: Int, code: [Program.Instruction], plans: [Plan], slots: [Program.Slot],
    readers: [[Int]], isOutput: [Bool]
  ) -> FusedGroup {
    let last = sum ?? end
    var refs: [Int: FusedRef] = [:]  // slot → where the run keeps it
    var registers = 0
    var steps: [FusedGroup.Step] = []
    func reference(_ slot: Int) -> FusedRef {
      if let ref = refs[slot] { return ref }
      if slots[slot].count == 1 {
        registers += 1
        let ref = FusedRef.scalar(slot: slot, register: registers - 1)
        refs[slot] = ref
        return ref
      }
      return .arena(slot: slot, offset: 0, stride: 1)
    }
    for index in first...end {
      let instruction = code[index]
      let out = Int(instruction.out)
      let neededOutside = isOutput[out] || readers[out].contains { $0 < first || $0 > last }
      let operands: [FusedRef]
      if instruction.op.family == .view, case .map(let map) = plans[Int(instruction.plan)] {
        // The source is a slot outside the run (see `fusable`). A view that nothing outside reads is read in
        // place when its stride is 1; otherwise it is gathered into a register, or into the arena.
        let source = FusedRef.arena(slot: Int(instruction.a), offset: map.offsets[1], stride: map.strides[map.rank])
        if !neededOutside, map.strides[map.rank] == 1 {
          refs[out] = source
          continue
        }
        operands = [source]
      } else {
        operands = operandSlots(instruction, plans).map { reference($0) }
      }
      let output: FusedRef
      if neededOutside {
        output = .arena(slot: out, offset: 0, stride: 1)
      } else {
        registers += 1
        output = .register(registers - 1)
      }
      refs[out] = output
      steps.append(FusedGroup.Step(index: index, op: instruction.op, out: out, operands: operands, output: output))
    }
    // Resolve where each operand lives.
    var holder = [Int](repeating: -1, count: registers)  // register → the slot it holds
    for (slot, ref) in refs {
      if let r = ref.register { holder[r] = slot }
    }
    func resolve(_ ref: FusedRef) -> (base: Int, slot: Int) {
      switch ref {
      case .arena(let slot, let offset, _): return (slots[slot].offset + offset, slot)
      case .scalar(let slot, let r): return (r * block, slot)
      case .register(let r): return r < 0 ? (0, -1) : (r * block, holder[r])
      }
    }
    for k in steps.indices {
      (steps[k].baseA, steps[k].slotA) = resolve(steps[k].a)
      (steps[k].baseB, steps[k].slotB) = resolve(steps[k].b)
      (steps[k].baseC, steps[k].slotC) = resolve(steps[k].c)
      steps[k].baseOut = resolve(steps[k].output).base
    }
    var total: (FusedRef, Int)?
    if let sum {
      total = (refs[Int(code[sum].a)] ?? .arena(slot: Int(code[sum].a), offset: 0, stride: 1), Int(code[sum].out))
    }
    var scalars: [FusedRef] = []
    for step in steps {
      for ref in step.operands {
        if case .scalar = ref, !scalars.contains(ref) { scalars.append(ref) }
      }
    }
    // Slots read only inside the run (and not outputs), through views with positive strides.
    var views: [Int: [(offset: Int, stride: Int)]] = [:]
    var produced: Set<Int> = []
    for step in steps {
      if case .arena(let slot, _, _) = step.output { produced.insert(slot) }
    }
    for ref in steps.flatMap(\.operands) + (total.map { [$0.0] } ?? []) {
      if case .arena(let slot, let offset, let stride) = ref, !produced.contains(slot) {
        views[slot, default: []].append((offset, stride))
      }
    }
    let owned = views.filter { slot, list in
      !isOutput[slot] && readers[slot].allSatisfy { $0 >= first && $0 <= last } && list.allSatisfy { $0.stride > 0 }
    }.map { (slot: $0.key, views: $0.value) }.sorted { $0.slot < $1.slot }
    return FusedGroup(
      first: first, last: last, count: n, steps: steps, sum: total, registers: registers, scalars: scalars,
      owned: owned)
  }

  /// Whether the partial derivative of a step with respect to operand `j` is one number for every element: ±1 for
  /// add, sub and neg, and the scalar factor of a product (or divisor of a quotient) with a broadcast scalar.
  private static func uniformPartial(_ step: FusedGroup.Step, _ j: Int) -> Bool {
    switch step.op {
    case .add, .sub, .neg: return true
    case .mul:
      if case .scalar = step.operand(1 - j) { return true }
      return false
    case .div:
      if j == 0, case .scalar = step.b { return true }
      return false
    default: return false
    }
  }

  /// The refs whose values a step's reverse rule reads to send a gradient to operand `j`.
  private static func reads(_ step: FusedGroup.Step, _ j: Int) -> [FusedRef] {
    switch step.op {
    case .add, .sub, .neg: return []
    case .mul: return [step.operand(1 - j)]
    case .square: return [step.a]
    case .where: return [step.a]
    default: return step.op.family == .view ? [] : step.operands + [step.output]
    }
  }

  /// Works out, for the reverse sweep, which adjoint registers are uniform, which contributions assign, and which
  /// registers must be recomputed. `variable[slot]` says whether a slot may ever need an adjoint.
  static func analyzeReverse(_ group: inout FusedGroup, variable: [Bool]) {
    var steps = group.steps
    var holder = [Int](repeating: -1, count: group.registers)  // register → the slot it holds
    for step in steps {
      if case .register(let r) = step.output { holder[r] = step.out }
    }
    func isVariable(_ ref: FusedRef) -> Bool {
      switch ref {
      case .arena(let slot, _, _), .scalar(let slot, _): return variable[slot]
      case .register(let r): return r >= 0 && holder[r] >= 0 && variable[holder[r]]
      }
    }
    // Uniform adjoints: a register is uniform when every contribution to it is (a step's consumers come after it,
    // so walking backwards settles each register before its producer is reached).
    var uniform = [Bool](repeating: true, count: group.registers)
    for position in steps.indices.reversed() {
      let step = steps[position]
      var outUniform = false
      if case .register(let r) = step.output { outUniform = uniform[r] }
      steps[position].uniform = outUniform
      for j in 0..<step.arity where FusedGroup.Step.contributes(step.op, j) {
        if case .register(let t) = step.operand(j), !(outUniform && uniformPartial(step, j)) { uniform[t] = false }
      }
    }
    // Aliases: a register whose one contribution is plus or minus the adjoint of a sum, difference or negation kept in
    // a register shares that adjoint block (with the sign) instead of copying it. The block it shares gets a
    // register of its own, never reused, so that it outlives the values defined in between.
    var contributions = [Int](repeating: 0, count: group.registers)
    var only = [(position: Int, j: Int)](repeating: (-1, -1), count: group.registers)
    if let sum = group.sum, case .register(let r) = sum.operand { contributions[r] += 1 }
    for (position, step) in steps.enumerated() {
      for j in 0..<step.arity where FusedGroup.Step.contributes(step.op, j) {
        guard case .register(let t) = step.operand(j), t >= 0 else { continue }
        contributions[t] += 1
        only[t] = (position, j)
      }
    }
    var root = Array(0..<group.registers)  // register → the register whose adjoint block it uses
    var fresh = [Bool](repeating: false, count: group.registers)
    for position in steps.indices.reversed() {
      guard case .register(let r) = steps[position].output, !uniform[r], contributions[r] == 1 else { continue }
      let (l, j) = only[r]
      guard l >= 0, !steps[l].uniform, case .register(let o) = steps[l].output else { continue }
      let negation: Bool
      switch steps[l].op {
      case .add: negation = false
      case .sub: negation = j == 1
      case .neg: negation = true
      default: continue
      }
      root[r] = root[o]
      fresh[root[o]] = true
      steps[position].negated = negation != steps[l].negated
      switch j {
      case 0: steps[l].aliasA = true
      case 1: steps[l].aliasB = true
      default: steps[l].aliasC = true
      }
    }
    for position in steps.indices {
      if case .register(let r) = steps[position].output { steps[position].adjointBase = root[r] }
    }
    // Redirects: a sum, difference or negation whose one variable operand is an arena view, and whose register has one
    // contribution, has that contribution sent to the view's adjoint directly.
    for position in steps.indices {
      let linear = steps[position]
      guard [.add, .sub, .neg].contains(linear.op), case .register(let r) = linear.output, !uniform[r], root[r] == r,
        contributions[r] == 1, only[r].position >= 0
      else { continue }
      let variables = (0..<linear.arity).filter { isVariable(linear.operand($0)) }
      guard variables.count == 1, case .arena(let slot, _, 1) = linear.operand(variables[0]) else { continue }
      let (consumer, j) = only[r]
      guard j < 2, !steps[consumer].isAlias(j) else { continue }
      let negated = linear.op == .neg || (linear.op == .sub && variables[0] == 1)
      let base = linear.base(variables[0])
      if j == 0 {
        (steps[consumer].redirectA, steps[consumer].redirectBaseA) = (true, base)
        (steps[consumer].redirectSlotA, steps[consumer].redirectNegatedA) = (slot, negated)
      } else {
        (steps[consumer].redirectB, steps[consumer].redirectBaseB) = (true, base)
        (steps[consumer].redirectSlotB, steps[consumer].redirectNegatedB) = (slot, negated)
      }
      steps[position].bypassed = true
    }
    // The first contribution to each register that is not uniform assigns (the closing sum's comes first).
    var written = [Bool](repeating: false, count: group.registers)
    if let sum = group.sum, case .register(let r) = sum.operand, !uniform[r] {
      group.sumAssigns = true
      written[r] = true
    }
    for position in steps.indices.reversed() {
      let step = steps[position]
      for j in 0..<step.arity where FusedGroup.Step.contributes(step.op, j) && !step.isAlias(j) {
        guard case .register(let t) = step.operand(j), !uniform[t], !(j == 0 && step.redirectA),
          !(j == 1 && step.redirectB)
        else { continue }
        let first = !written[t]
        written[t] = true
        switch j {
        case 0: steps[position].assignA = first
        case 1: steps[position].assignB = first
        default: steps[position].assignC = first
        }
      }
    }
    // Registers a reverse rule reads, and those they are computed from.
    var needed = [Bool](repeating: false, count: group.registers)
    var read = [Bool](repeating: false, count: group.registers)  // by a reverse rule
    for position in steps.indices.reversed() {
      let step = steps[position]
      for j in 0..<step.arity where FusedGroup.Step.contributes(step.op, j) && isVariable(step.operand(j)) {
        for case .register(let r) in reads(step, j) {
          needed[r] = true
          read[r] = true
        }
      }
      if case .register(let r) = step.output, needed[r] {
        steps[position].recompute = true
        for case .register(let operand) in step.operands where operand >= 0 { needed[operand] = true }
      }
    }
    inlineSquares(&steps, group: group, read: read, needed: needed)
    if let sum = group.sum, case .register(let r) = sum.operand, let last = steps.last, last.output == .register(r),
      !needed[r], [.add, .sub, .mul].contains(last.op), !last.a.isScalar, !last.b.isScalar
    {
      group.sumFused = true
    }
    // Where uniform adjoints live at run time: with the step that produces the register.
    var producer = [Int](repeating: -1, count: group.registers)  // register → the step that writes it
    for (position, step) in steps.enumerated() {
      if case .register(let r) = step.output { producer[r] = position }
    }
    for position in steps.indices {
      for j in 0..<steps[position].arity {
        guard case .register(let r) = steps[position].operand(j), r >= 0 else { continue }
        switch j {
        case 0: (steps[position].producerA, steps[position].uniformA) = (producer[r], uniform[r])
        case 1: (steps[position].producerB, steps[position].uniformB) = (producer[r], uniform[r])
        default: (steps[position].producerC, steps[position].uniformC) = (producer[r], uniform[r])
        }
      }
    }
    if let sum = group.sum, case .register(let r) = sum.operand {
      (group.sumProducer, group.sumUniform) = (producer[r], uniform[r])
    }
    group.steps = steps
    allocateRegisters(&group, needed: needed, fresh: fresh)
  }

  /// Squares read by one add, sub or mul alone, and by no reverse rule, are computed by that reader from the square's
  /// operand (an arena view or a register kept for the reverse sweep) instead of through a register of their own.
  private static func inlineSquares(
    _ steps: inout [FusedGroup.Step], group: FusedGroup, read: [Bool], needed: [Bool]
  ) {
    var readers = [Int](repeating: 0, count: group.registers)
    for step in steps {
      for case .register(let r) in step.operands where r >= 0 { readers[r] += 1 }
    }
    if let sum = group.sum, case .register(let r) = sum.operand { readers[r] += 1 }
    for position in steps.indices {
      let square = steps[position]
      guard square.op == .square, case .register(let r) = square.output, !read[r], readers[r] == 1 else { continue }
      switch square.a {
      case .arena(_, _, 1): break
      case .register(let x) where needed[x]: break
      default: continue
      }
      guard
        let reader = steps.indices.first(where: { steps[$0].operands.contains(.register(r)) }),
        [.add, .sub, .mul].contains(steps[reader].op)
      else { continue }
      steps[position].inlined = true
      if steps[reader].a == .register(r) {
        (steps[reader].squareA, steps[reader].inA, steps[reader].inBaseA) = (true, square.a, square.baseA)
      } else {
        (steps[reader].squareB, steps[reader].inB, steps[reader].inBaseB) = (true, square.a, square.baseA)
      }
    }
  }

  /// Maps the run's registers (one per result) onto fewer block registers: a register is reused once its value is
  /// dead, so that the blocks a run touches stay in the L1 cache. Values a reverse rule reads stay live to the end
  /// of the block, and a step never writes a register it reads.
  private static func allocateRegisters(_ group: inout FusedGroup, needed: [Bool], fresh: [Bool]) {
    var steps = group.steps
    let end = steps.count
    var lastUse = [Int](repeating: -1, count: group.registers)
    for (position, step) in steps.enumerated() {
      for case .register(let r) in step.operands + [step.inA, step.inB] where r >= 0 { lastUse[r] = position }
    }
    if let sum = group.sum, case .register(let r) = sum.operand { lastUse[r] = end }
    for r in needed.indices where needed[r] { lastUse[r] = end }
    var physical = [Int](repeating: -1, count: group.registers)
    var next = 0
    for case .scalar(_, let r) in group.scalars {
      physical[r] = next
      next += 1
    }
    var free: [Int] = []
    for position in steps.indices {
      if case .register(let r) = steps[position].output {
        if !fresh[r], let reused = free.popLast() {
          physical[r] = reused
        } else {
          physical[r] = next
          next += 1
        }
        if lastUse[r] < 0 { lastUse[r] = position }  // nothing reads it
      }
      var dying = steps[position].operands
      dying.append(steps[position].output)
      for case .register(let r) in dying where r >= 0 && lastUse[r] == position {
        if !fresh[r] { free.append(physical[r]) }
        lastUse[r] = -2  // freed
      }
    }
    func map(_ ref: FusedRef) -> FusedRef {
      switch ref {
      case .register(let r): return r < 0 ? ref : .register(physical[r])
      case .scalar(let slot, let r): return .scalar(slot: slot, register: physical[r])
      case .arena: return ref
      }
    }
    for k in steps.indices {
      steps[k].a = map(steps[k].a)
      steps[k].b = map(steps[k].b)
      steps[k].c = map(steps[k].c)
      steps[k].output = map(steps[k].output)
      if let r = steps[k].a.register, r >= 0 { steps[k].baseA = r * block }
      if let r = steps[k].b.register, r >= 0 { steps[k].baseB = r * block }
      if let r = steps[k].c.register, r >= 0 { steps[k].baseC = r * block }
      if case .register(let r) = steps[k].inA, r >= 0 {
        steps[k].inA = map(steps[k].inA)
        steps[k].inBaseA = physical[r] * block
      }
      if case .register(let r) = steps[k].inB, r >= 0 {
        steps[k].inB = map(steps[k].inB)
        steps[k].inBaseB = physical[r] * block
      }
      if let r = steps[k].output.register {
        steps[k].baseOut = r * block
        steps[k].adjointBase = physical[steps[k].adjointBase] * block
      }
    }
    group.steps = steps
    group.scalars = group.scalars.map(map)
    if let sum = group.sum { group.sum = (map(sum.operand), sum.slot) }
    group.registers = next
  }
}

/// `Executor.contiguousSum` taken block by block: the same eight running sums carried from block to block, so that
/// the sum of a fused run is bit for bit the sum of its operand in one piece (as the unfused program and the eager
/// tape compute it). Every block but the last holds a multiple of eight elements.
struct RunningSum<T: ADScalar> {
  // Lanes 0 to 7 of `contiguousSum`, two to a vector.
  private var lanes = (SIMD2<Double>(), SIMD2<Double>(), SIMD2<Double>(), SIMD2<Double>())
  private var tail = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
  private var tailCount = 0
  private var sequential = T(0)

  /// Adds `p[0..<n]`.
  @inline(__always)
  mutating func add(_ p: UnsafeMutablePointer<T>, _ n: Int) {
    guard T.self == Double.self else {
      for k in 0..<n { sequential += p[k] }
      return
    }
    let p = UnsafeMutableRawPointer(p).assumingMemoryBound(to: Double.self)
    accumulate(n) { p[$0] }
  }

  /// Adds `op(a(k), b(k))` for k in 0..<n, without storing the terms (add, sub and mul on doubles).
  @inline(__always)
  mutating func add(_ op: OpCode, _ n: Int, _ a: (Int) -> Double, _ b: (Int) -> Double) {
    switch op {
    case .add: accumulate(n) { a($0) + b($0) }
    case .sub: accumulate(n) { a($0) - b($0) }
    default: accumulate(n) { a($0) * b($0) }
    }
  }

  @inline(__always)
  private mutating func accumulate(_ n: Int, _ term: (Int) -> Double) {
    precondition(tailCount == 0, "only the last block may hold a partial group of eight")
    var k = 0
    while k + 8 <= n {
      lanes.0 += SIMD2(term(k), term(k + 1))
      lanes.1 += SIMD2(term(k + 2), term(k + 3))
      lanes.2 += SIMD2(term(k + 4), term(k + 5))
      lanes.3 += SIMD2(term(k + 6), term(k + 7))
      k += 8
    }
    withUnsafeMutableBytes(of: &tail) { tail in
      let tail = tail.assumingMemoryBound(to: Double.self)
      while k < n {
        tail[tailCount] = term(k)
        tailCount += 1
        k += 1
      }
    }
  }

  var value: T {
    guard T.self == Double.self else { return sequential }
    let l = lanes
    var total = ((l.0[0] + l.0[1]) + (l.1[0] + l.1[1])) + ((l.2[0] + l.2[1]) + (l.3[0] + l.3[1]))
    withUnsafeBytes(of: tail) { tail in
      for k in 0..<tailCount { total += tail.load(fromByteOffset: k * 8, as: Double.self) }
    }
    return T(total)
  }
}

extension Executor {
  /// Where a block of a non-strided ref starts: in the arena at the block's start, or in the registers.
  @inline(__always)
  private static func at<T>(
    _ ref: FusedRef, _ base: Int, _ v: UnsafeMutablePointer<T>, _ registers: UnsafeMutablePointer<T>, _ start: Int
  ) -> UnsafeMutablePointer<T> {
    if case .arena = ref { return v + base + start }
    return registers + base
  }

  /// Runs a fused run forward, block by block. `registers` holds the run's value registers.
  static func fusedForward<T: ADScalar>(
    _ group: FusedGroup, _ program: Program, _ v: UnsafeMutablePointer<T>, _ registers: UnsafeMutablePointer<T>
  ) {
    let block = Fusion.block
    let slots = program.slots
    fillScalars(group, slots, v, registers)
    var total = RunningSum<T>()
    let fuseSum = group.sumFused && T.self == Double.self
    group.steps.withUnsafeBufferPointer { steps in
      var start = 0
      while start < group.count {
        let n = Swift.min(block, group.count - start)
        if fuseSum {
          for k in 0..<(steps.count - 1) where !steps[k].inlined { fusedStepForward(steps[k], v, registers, start, n) }
          addLastStep(steps[steps.count - 1], &total, v, registers, start, n)
        } else {
          for k in steps.indices where !steps[k].inlined { fusedStepForward(steps[k], v, registers, start, n) }
          if let sum = group.sum { total.add(pointer(sum.operand, slots, v, registers, start), n) }
        }
        start += n
      }
    }
    if let sum = group.sum { v[slots[sum.slot].offset] = total.value }
  }

  /// Runs a fused run's reverse rules, block by block, recomputing the values its reverse rules read. With `full`,
  /// each block first runs every step forward and the closing sum's value is written too: the forward and reverse
  /// sweeps of the run in one pass over memory.
  static func fusedReverse<T: ADScalar>(
    _ group: FusedGroup, _ program: Program, _ v: UnsafeMutablePointer<T>, _ g: UnsafeMutablePointer<T>,
    _ registers: UnsafeMutablePointer<T>, _ active: [Bool], full: Bool = false
  ) {
    let slots = program.slots
    fillScalars(group, slots, v, registers)
    let total = group.sum.map { g[slots[$0.slot].offset] } ?? T(0)
    withUnsafeTemporaryAllocation(of: T.self, capacity: Swift.max(group.steps.count, 1)) { uniform in
      uniform.initialize(repeating: T(0))
      // The uniform adjoints, one number per step (the adjoint of its register) for the whole run.
      if group.sumUniform { uniform[group.sumProducer] += total }
      var position = group.steps.count
      while position > 0 {
        position -= 1
        let step = group.steps[position]
        guard step.uniform, active[step.out], !uniform[position].isZero else { continue }
        for j in 0..<step.arity where step.isUniform(j) && FusedGroup.Step.contributes(step.op, j) {
          uniform[step.producer(j)] += uniformPartial(step, j, uniform[position], registers)
        }
      }
      withUnsafeTemporaryAllocation(of: Int.self, capacity: Swift.max(group.owned.count, 1)) { zeroed in
        zeroed.initialize(repeating: 0)
        active.withUnsafeBufferPointer { active in
          let value = fusedReverseBlocks(
            group, program, v, g, registers, active, zeroed, uniform.baseAddress!, total, full: full)
          if full, let sum = group.sum { v[slots[sum.slot].offset] = value }
        }
        // The elements of owned adjoints that no view reached.
        for k in group.owned.indices where active[group.owned[k].slot] {  // index loops: no iterator to allocate
          let slot = slots[group.owned[k].slot]
          (g + slot.offset + zeroed[k]).update(repeating: T(0), count: slot.count - zeroed[k])
        }
      }
    }
  }

  /// The contribution of a uniform output adjoint `u` to a uniform operand adjoint.
  @inline(__always)
  private static func uniformPartial<T: ADScalar>(
    _ step: FusedGroup.Step, _ j: Int, _ u: T, _ registers: UnsafeMutablePointer<T>
  ) -> T {
    switch step.op {
    case .add: return u
    case .sub: return j == 0 ? u : -u
    case .neg: return -u
    case .mul: return T.chain(u, registers[step.base(1 - j)])
    case .div: return T.chain(u, T(1) / registers[step.baseB])
    default: preconditionFailure("\(step.op.name) has no uniform partial")
    }
  }

  // swiftlint:disable:next function_parameter_count
  private static func fusedReverseBlocks<T: ADScalar>(
    _ group: FusedGroup, _ program: Program, _ v: UnsafeMutablePointer<T>, _ g: UnsafeMutablePointer<T>,
    _ registers: UnsafeMutablePointer<T>, _ active: UnsafeBufferPointer<Bool>,
    _ zeroed: UnsafeMutableBufferPointer<Int>, _ uniform: UnsafeMutablePointer<T>, _ total: T, full: Bool
  ) -> T {
    let block = Fusion.block
    let slots = program.slots
    let adjointRegisters = registers + group.registers * block
    var value = RunningSum<T>()
    let fuseSum = group.sumFused && T.self == Double.self
    group.steps.withUnsafeBufferPointer { steps in
      var start = 0
      while start < group.count {
        let n = Swift.min(block, group.count - start)
        if full && fuseSum {
          for k in 0..<(steps.count - 1) where !steps[k].inlined { fusedStepForward(steps[k], v, registers, start, n) }
          addLastStep(steps[steps.count - 1], &value, v, registers, start, n)
        } else {
          for k in steps.indices where (full || steps[k].recompute) && !steps[k].inlined {
            fusedStepForward(steps[k], v, registers, start, n)
          }
          if full, let sum = group.sum { value.add(pointer(sum.operand, slots, v, registers, start), n) }
        }
        for m in group.scalars.indices {
          if case .scalar(let slot, let r) = group.scalars[m], active[slot] {
            (adjointRegisters + r * block).update(repeating: T(0), count: n)
          }
        }
        // Owned adjoints are zeroed up to the last element this block's views reach (the views only move forward).
        for k in group.owned.indices where active[group.owned[k].slot] {
          let views = group.owned[k].views
          var reach = 0
          for m in views.indices { reach = Swift.max(reach, views[m].offset + (start + n - 1) * views[m].stride + 1) }
          if reach > zeroed[k] {
            (g + slots[group.owned[k].slot].offset + zeroed[k]).update(repeating: T(0), count: reach - zeroed[k])
            zeroed[k] = reach
          }
        }
        if let sum = group.sum {
          switch sum.operand {
          case .register(let r) where !group.sumUniform:
            let target = adjointRegisters + r * block
            if group.sumAssigns {
              target.update(repeating: total, count: n)
            } else {
              for k in 0..<n { target[k] += total }
            }
          case .arena(let slot, let offset, _) where active[slot] && !total.isZero:
            let target = g + slots[slot].offset + offset + start
            for k in 0..<n { target[k] += total }
          default:
            break
          }
        }
        var k = steps.count
        while k > 0 {
          k -= 1
          if active[steps[k].out] && !steps[k].bypassed {
            reverseStep(steps[k], v, g, registers, adjointRegisters, active, uniform[k], start, n)
          }
        }
        // Broadcast scalars collected one adjoint per element of the block: add them up.
        for m in group.scalars.indices {
          guard case .scalar(let slot, let r) = group.scalars[m], active[slot] else { continue }
          var sum = T(0)
          for k in 0..<n { sum += adjointRegisters[r * block + k] }
          g[slots[slot].offset] += sum
        }
        start += n
      }
    }
    return value.value
  }

  /// One step's reverse rule over one block.
  // swiftlint:disable:next function_parameter_count
  @inline(__always)
  private static func reverseStep<T: ADScalar>(
    _ step: FusedGroup.Step, _ v: UnsafeMutablePointer<T>, _ g: UnsafeMutablePointer<T>,
    _ registers: UnsafeMutablePointer<T>, _ adjointRegisters: UnsafeMutablePointer<T>,
    _ active: UnsafeBufferPointer<Bool>, _ uniform: T, _ start: Int, _ n: Int
  ) {
    // The output's adjoint: one number, or a block.
    var u = T(0)
    var gout: UnsafeMutablePointer<T>?
    if step.uniform {
      u = uniform
    } else if case .arena = step.output {
      gout = g + step.baseOut + start
    } else {
      gout = adjointRegisters + step.adjointBase
    }
    if step.op.family == .view {
      guard case .arena(let slot, _, let stride) = step.a, active[slot] else { return }
      let base = g + step.baseA
      if let gout, step.negated {
        for k in 0..<n { base[(start + k) * stride] -= gout[k] }
      } else if let gout {
        for k in 0..<n { base[(start + k) * stride] += gout[k] }
      } else {
        for k in 0..<n { base[(start + k) * stride] += u }
      }
      return
    }
    let targets = (
      target(step, 0, g, adjointRegisters, active, start), target(step, 1, g, adjointRegisters, active, start),
      target(step, 2, g, adjointRegisters, active, start)
    )
    if targets.0 == nil && targets.1 == nil && targets.2 == nil { return }
    if T.self == Double.self,
      doubleReverseStep(
        step, doublesOrNil(gout), u.primal, doublesOrNil(targets.0), doublesOrNil(targets.1), v, registers, start, n)
    {
      return
    }
    // The general rules: they add into their targets, so assigned targets are zeroed first; a uniform adjoint is
    // spelled out into its register's (otherwise unused) adjoint block.
    if step.assignA, let t = targets.0 { t.update(repeating: T(0), count: n) }
    if step.assignB, let t = targets.1 { t.update(repeating: T(0), count: n) }
    if step.assignC, let t = targets.2 { t.update(repeating: T(0), count: n) }
    let gy: UnsafeMutablePointer<T>
    if let gout, step.negated {
      // The negated alias spelled out in the register's own adjoint block, free while the alias is live.
      gy = adjointRegisters + step.baseOut
      for k in 0..<n { gy[k] = -gout[k] }
    } else if let gout {
      gy = gout
    } else {
      gy = adjointRegisters + step.baseOut
      gy.update(repeating: u, count: n)
    }
    // A negated redirect: the rule fills the operand's own (otherwise unused) adjoint block, which is then taken from
    // the arena's adjoint.
    var (ta, tb) = (targets.0, targets.1)
    let negatedA = step.redirectA && step.redirectNegatedA ? targets.0 : nil
    let negatedB = step.redirectB && step.redirectNegatedB ? targets.1 : nil
    if negatedA != nil {
      ta = adjointRegisters + step.baseA
      ta?.update(repeating: T(0), count: n)
    }
    if negatedB != nil {
      tb = adjointRegisters + step.baseB
      tb?.update(repeating: T(0), count: n)
    }
    let y = at(step.output, step.baseOut, v, registers, start)
    let a = at(step.a, step.baseA, v, registers, start)
    switch step.op.family {
    case .unary:
      if let ga = ta { unaryReverse(step.op, n, a, y, ga, gy) }
    case .binary:
      let b = at(step.b, step.baseB, v, registers, start)
      binaryReverse(step.op, nil, n, (y, a, b), (gy, ta, tb))
    case .select:
      selectReverse(nil, n, gy, a, tb, targets.2)
    default:
      break
    }
    if let arena = negatedA, let own = ta { for k in 0..<n { arena[k] -= own[k] } }
    if let arena = negatedB, let own = tb { for k in 0..<n { arena[k] -= own[k] } }
  }

  /// Runs the last step of a run whose closing sum it alone feeds: its terms go into the sum unstored (doubles only).
  @inline(__always)
  private static func addLastStep<T: ADScalar>(
    _ step: FusedGroup.Step, _ total: inout RunningSum<T>, _ v: UnsafeMutablePointer<T>,
    _ registers: UnsafeMutablePointer<T>, _ start: Int, _ n: Int
  ) {
    let a = doubles(
      step.squareA ? at(step.inA, step.inBaseA, v, registers, start) : at(step.a, step.baseA, v, registers, start))
    let b = doubles(
      step.squareB ? at(step.inB, step.inBaseB, v, registers, start) : at(step.b, step.baseB, v, registers, start))
    switch (step.squareA, step.squareB) {
    case (false, false):
      total.add(step.op, n) {
        a[$0]
      } _: {
        b[$0]
      }
    case (true, false):
      total.add(step.op, n) {
        a[$0] * a[$0]
      } _: {
        b[$0]
      }
    case (false, true):
      total.add(step.op, n) {
        a[$0]
      } _: {
        b[$0] * b[$0]
      }
    case (true, true):
      total.add(step.op, n) {
        a[$0] * a[$0]
      } _: {
        b[$0] * b[$0]
      }
    }
  }

  /// Where the contribution to operand `j` goes: nowhere (no gradient, inactive, or a uniform register), or a block to
  /// assign or add to.
  @inline(__always)
  private static func target<T>(
    _ step: FusedGroup.Step, _ j: Int, _ g: UnsafeMutablePointer<T>, _ adjointRegisters: UnsafeMutablePointer<T>,
    _ active: UnsafeBufferPointer<Bool>, _ start: Int
  ) -> UnsafeMutablePointer<T>? {
    guard j < step.arity, FusedGroup.Step.contributes(step.op, j) else { return nil }
    if j == 0 && step.redirectA { return active[step.redirectSlotA] ? g + step.redirectBaseA + start : nil }
    if j == 1 && step.redirectB { return active[step.redirectSlotB] ? g + step.redirectBaseB + start : nil }
    let slot = step.slot(j)
    guard slot >= 0, active[slot] else { return nil }
    switch step.operand(j) {
    case .register: return step.isUniform(j) || step.isAlias(j) ? nil : adjointRegisters + step.base(j)
    case .scalar: return adjointRegisters + step.base(j)
    case .arena: return g + step.base(j) + start
    }
  }

  /// The reverse rules of the commonest ops on doubles, with a uniform output adjoint `u` when `gout` is nil, each
  /// one loop that assigns or adds. Returns false for the others.
  // swiftlint:disable:next function_parameter_count
  @inline(__always)
  private static func doubleReverseStep<T>(
    _ step: FusedGroup.Step, _ gout: UnsafeMutablePointer<Double>?, _ u: Double,
    _ ta: UnsafeMutablePointer<Double>?, _ tb: UnsafeMutablePointer<Double>?, _ v: UnsafeMutablePointer<T>,
    _ registers: UnsafeMutablePointer<T>, _ start: Int, _ n: Int
  ) -> Bool {
    // A negated alias flips the sign of every term (uniform adjoints are never aliases).
    // A negated alias flips the sign of every term (uniform adjoints are never aliases); a negated redirect, the sign
    // of its operand's.
    let flip = gout != nil && step.negated
    let flipA = flip != (step.redirectA && step.redirectNegatedA)
    let flipB = flip != (step.redirectB && step.redirectNegatedB)
    let (oneA, oneB): (Double, Double) = (flipA ? -1 : 1, flipB ? -1 : 1)
    switch step.op {
    case .add:
      if let ta { pass(ta, n, step.assignA, gout, u, flipA) }
      if let tb { pass(tb, n, step.assignB, gout, u, flipB) }
    case .sub:
      if let ta { pass(ta, n, step.assignA, gout, u, flipA) }
      if let tb { pass(tb, n, step.assignB, gout, u, !flipB) }
    case .neg:
      if let ta { pass(ta, n, step.assignA, gout, u, !flipA) }
    case .mul:
      if let ta { scale(ta, n, step.assignA, gout, u, oneA, doubles(at(step.b, step.baseB, v, registers, start))) }
      if let tb { scale(tb, n, step.assignB, gout, u, oneB, doubles(at(step.a, step.baseA, v, registers, start))) }
    case .square:
      if let ta { scale(ta, n, step.assignA, gout, u, 2 * oneA, doubles(at(step.a, step.baseA, v, registers, start))) }
    default:
      return false
    }
    return true
  }

  /// `t[i] (+)= g[i]`, or `-g[i]` with `negate`.
  @inline(__always)
  private static func pass(
    _ t: UnsafeMutablePointer<Double>, _ n: Int, _ assign: Bool, _ gout: UnsafeMutablePointer<Double>?, _ u: Double,
    _ negate: Bool
  ) {
    if negate {
      contribute(t, n, assign, gout, u) { g, _ in -g }
    } else {
      contribute(t, n, assign, gout, u) { g, _ in g }
    }
  }

  /// `t[i] (+)= chain(g[i], factor * d[i])`. With a uniform adjoint `u` that is finite and not zero, the chain rule's
  /// zero test is moot (a product with a finite nonzero number is zero only when the other factor is), so the loop is
  /// a plain product by `u * factor`.
  @inline(__always)
  private static func scale(
    _ t: UnsafeMutablePointer<Double>, _ n: Int, _ assign: Bool, _ gout: UnsafeMutablePointer<Double>?,
    _ u: Double, _ factor: Double, _ d: UnsafeMutablePointer<Double>
  ) {
    if gout == nil && u.isFinite && u != 0 && (u * factor).isFinite {
      let c = u * factor
      if assign {
        for i in 0..<n { t[i] = c * d[i] }
      } else {
        for i in 0..<n { t[i] += c * d[i] }
      }
    } else if factor == 1 {
      contribute(t, n, assign, gout, u) { g, i in Double.chain(g, d[i]) }
    } else {
      contribute(t, n, assign, gout, u) { g, i in Double.chain(g, factor * d[i]) }
    }
  }

  /// `t[i] = term(g[i], i)` or `t[i] += term(g[i], i)`, with `g[i]` the output adjoint (or `u` for every i).
  @inline(__always)
  private static func contribute(
    _ t: UnsafeMutablePointer<Double>, _ n: Int, _ assign: Bool, _ gout: UnsafeMutablePointer<Double>?,
    _ u: Double, _ term: (Double, Int) -> Double
  ) {
    if let gout {
      if assign {
        for i in 0..<n { t[i] = term(gout[i], i) }
      } else {
        for i in 0..<n { t[i] += term(gout[i], i) }
      }
    } else {
      if assign {
        for i in 0..<n { t[i] = term(u, i) }
      } else {
        for i in 0..<n { t[i] += term(u, i) }
      }
    }
  }

  @inline(__always)
  private static func doublesOrNil<T>(_ p: UnsafeMutablePointer<T>?) -> UnsafeMutablePointer<Double>? {
    p.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: Double.self) }
  }

  @inline(__always)
  private static func pointer<T: ADScalar>(
    _ ref: FusedRef, _ slots: [Program.Slot], _ v: UnsafeMutablePointer<T>, _ registers: UnsafeMutablePointer<T>,
    _ start: Int
  ) -> UnsafeMutablePointer<T> {
    switch ref {
    case .register(let r), .scalar(_, let r): return registers + r * Fusion.block
    case .arena(let slot, let offset, _): return v + slots[slot].offset + offset + start
    }
  }

  @inline(__always)
  private static func fusedStepForward<T: ADScalar>(
    _ step: FusedGroup.Step, _ v: UnsafeMutablePointer<T>, _ registers: UnsafeMutablePointer<T>, _ start: Int,
    _ n: Int
  ) {
    let out = at(step.output, step.baseOut, v, registers, start)
    switch step.op.family {
    case .view:
      guard case .arena(_, _, let stride) = step.a else { return }
      let base = v + step.baseA
      for k in 0..<n { out[k] = base[(start + k) * stride] }
    case .unary:
      let a = at(step.a, step.baseA, v, registers, start)
      if T.self != Double.self && step.op == .square {
        // Dual numbers through their own product: the same value and tangent as the rule, without its dispatch.
        for i in 0..<n { out[i] = a[i] * a[i] }
        return
      }
      unaryForward(step.op, n, a, out)
    case .binary where step.squareA || step.squareB:
      let a =
        step.squareA ? at(step.inA, step.inBaseA, v, registers, start) : at(step.a, step.baseA, v, registers, start)
      let b =
        step.squareB ? at(step.inB, step.inBaseB, v, registers, start) : at(step.b, step.baseB, v, registers, start)
      if T.self == Double.self {
        let (a, b, out) = (doubles(a), doubles(b), doubles(out))
        let (sa, sb) = (step.a.isScalar, step.b.isScalar)
        switch step.op {
        case .add: combine(n, out, a, sa, step.squareA, b, sb, step.squareB) { $0 + $1 }
        case .sub: combine(n, out, a, sa, step.squareA, b, sb, step.squareB) { $0 - $1 }
        default: combine(n, out, a, sa, step.squareA, b, sb, step.squareB) { $0 * $1 }
        }
        return
      }
      for i in 0..<n {
        let x = step.squareA ? a[i] * a[i] : a[i]
        let y = step.squareB ? b[i] * b[i] : b[i]
        switch step.op {
        case .add: out[i] = x + y
        case .sub: out[i] = x - y
        default: out[i] = x * y
        }
      }
    case .binary, .comparison:
      let a = at(step.a, step.baseA, v, registers, start)
      let b = at(step.b, step.baseB, v, registers, start)
      if T.self == Double.self, scalarBinaryForward(step, n, doubles(out), doubles(a), doubles(b)) { return }
      if T.self != Double.self {
        switch step.op {
        case .add:
          for i in 0..<n { out[i] = a[i] + b[i] }
          return
        case .sub:
          for i in 0..<n { out[i] = a[i] - b[i] }
          return
        case .mul:
          for i in 0..<n { out[i] = a[i] * b[i] }
          return
        default: break
        }
      }
      binaryForward(step.op, nil, n, out, a, b)
    case .select:
      selectForward(
        nil, n, out, at(step.a, step.baseA, v, registers, start), at(step.b, step.baseB, v, registers, start),
        at(step.c, step.baseC, v, registers, start))
    default:
      preconditionFailure("\(step.op.name) cannot be fused")
    }
  }

  /// `out[i] = f(a', b')` where an operand is read as a broadcast scalar, a block, or the square of a block.
  @inline(__always)
  private static func combine(
    _ n: Int, _ out: UnsafeMutablePointer<Double>, _ a: UnsafeMutablePointer<Double>, _ aScalar: Bool,
    _ aSquare: Bool, _ b: UnsafeMutablePointer<Double>, _ bScalar: Bool, _ bSquare: Bool,
    _ f: (Double, Double) -> Double
  ) {
    if aScalar {
      let s = a[0]
      for i in 0..<n { out[i] = f(s, b[i] * b[i]) }  // a square is never a scalar, so b is one
    } else if bScalar {
      let s = b[0]
      for i in 0..<n { out[i] = f(a[i] * a[i], s) }
    } else if aSquare && bSquare {
      for i in 0..<n { out[i] = f(a[i] * a[i], b[i] * b[i]) }
    } else if aSquare {
      for i in 0..<n { out[i] = f(a[i] * a[i], b[i]) }
    } else {
      for i in 0..<n { out[i] = f(a[i], b[i] * b[i]) }
    }
  }

  /// Add, sub, mul and div of a block and a broadcast scalar, without reading the scalar's register block.
  @inline(__always)
  private static func scalarBinaryForward(
    _ step: FusedGroup.Step, _ n: Int, _ out: UnsafeMutablePointer<Double>, _ a: UnsafeMutablePointer<Double>,
    _ b: UnsafeMutablePointer<Double>
  ) -> Bool {
    if case .scalar = step.a {
      if case .scalar = step.b { return false }
      let s = a[0]
      switch step.op {
      case .add: for i in 0..<n { out[i] = s + b[i] }
      case .sub: for i in 0..<n { out[i] = s - b[i] }
      case .mul: for i in 0..<n { out[i] = s * b[i] }
      default: return false
      }
      return true
    }
    guard case .scalar = step.b else { return false }
    let s = b[0]
    switch step.op {
    case .add: for i in 0..<n { out[i] = a[i] + s }
    case .sub: for i in 0..<n { out[i] = a[i] - s }
    case .mul: for i in 0..<n { out[i] = a[i] * s }
    case .div: for i in 0..<n { out[i] = a[i] / s }
    default: return false
    }
    return true
  }

  private static func fillScalars<T: ADScalar>(
    _ group: FusedGroup, _ slots: [Program.Slot], _ v: UnsafeMutablePointer<T>, _ registers: UnsafeMutablePointer<T>
  ) {
    let count = Swift.min(Fusion.block, group.count)
    for m in group.scalars.indices {
      if case .scalar(let slot, let r) = group.scalars[m] {
        (registers + r * Fusion.block).update(repeating: v[slots[slot].offset], count: count)
      }
    }
  }
}
