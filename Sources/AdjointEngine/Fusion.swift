// Fusion of elementwise chains (as numexpr does). A run of consecutive elementwise instructions over tensors of one
// size N — fed by whole slots, one-element slots (broadcast) and one-dimensional views such as `slice` — and
// optionally ended by a `sum` over everything, runs block by block: each block of B elements goes through every
// instruction of the run while it sits in the L1 cache. Intermediates that nothing outside the run reads live only in
// block-sized registers; the reverse sweep recomputes them block by block (rematerialisation) instead of reading them
// from memory. Memory then streams once per run instead of once per instruction.

/// Where a fused instruction reads or writes a block of its operand.
enum FusedRef: Sendable, Equatable {
  /// A block register of the run.
  case register(Int)
  /// A slot in the arena, at `offset + i * stride`; stride 1 is read in place.
  case arena(slot: Int, offset: Int, stride: Int)
  /// A one-element slot, broadcast through the block register given.
  case scalar(slot: Int, register: Int)
}

/// One fused run of instructions.
struct FusedGroup: Sendable {
  /// One instruction of the run: the op, its operand refs and its output ref.
  struct Step: Sendable, Equatable {
    var index: Int
    var op: OpCode
    var operands: [FusedRef]
    var output: FusedRef
  }

  /// The first and last instruction indices (inclusive).
  var first: Int
  var last: Int
  /// The number of elements of every tensor in the run.
  var count: Int
  var steps: [Step]
  /// The `sum` that ends the run, if any: its operand and output slot.
  var sum: (operand: FusedRef, slot: Int)?
  /// The number of block registers the run needs (values; the reverse sweep needs as many again for adjoints).
  var registers: Int
  /// The broadcast scalars the run reads.
  var scalars: [FusedRef]
  /// Slots that only this run reads, with the views it reads them through (all with positive strides): their
  /// adjoints are zeroed by the run, block by block just ahead of its writes, instead of in a separate pass.
  var owned: [(slot: Int, views: [(offset: Int, stride: Int)])] = []
}

enum Fusion {
  /// The number of elements in a block.
  static let block = 1024
  /// The most instructions in one run (a closing sum comes on top). Longer chains are cut into several runs, so the
  /// block registers of a run (at most about three per instruction, each a block of values and one of adjoints) stay
  /// bounded whatever the program, and building a run stays linear.
  static let maxRunLength = 32

  /// Finds the fusable runs of a program.
  static func groups(
    code: [Program.Instruction], plans: [Plan], slots: [Program.Slot], outputs: [Program.Binding]
  ) -> [FusedGroup] {
    // Where each slot is read, to know which results a run must write to the arena.
    var readers = [[Int]](repeating: [], count: slots.count)
    for (index, instruction) in code.enumerated() {
      for operand in operandSlots(instruction, plans) { readers[operand].append(index) }
    }
    var isOutput = [Bool](repeating: false, count: slots.count)
    for output in outputs { isOutput[output.slot] = true }

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
        groups.append(
          build(
            first: index, end: end, sum: sumIndex, n: n, code: code, plans: plans, slots: slots, readers: readers,
            isOutput: isOutput))
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
      steps.append(FusedGroup.Step(index: index, op: instruction.op, operands: operands, output: output))
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
}

extension Executor {
  /// Runs a fused run forward, block by block. `registers` holds the run's value registers.
  static func fusedForward<T: ADScalar>(
    _ group: FusedGroup, _ program: Program, _ v: UnsafeMutablePointer<T>, _ registers: UnsafeMutablePointer<T>
  ) {
    let block = Fusion.block
    let slots = program.slots
    fillScalars(group, slots, v, registers)
    var total = T(0)
    var start = 0
    while start < group.count {
      let n = Swift.min(block, group.count - start)
      for step in group.steps { fusedStepForward(step, slots, v, registers, start, n) }
      if let sum = group.sum { total += contiguousSum(pointer(sum.operand, slots, v, registers, start), n) }
      start += n
    }
    if let sum = group.sum { v[slots[sum.slot].offset] = total }
  }

  /// Runs a fused run's reverse rules, block by block, recomputing the values its registers held.
  static func fusedReverse<T: ADScalar>(
    _ group: FusedGroup, _ program: Program, _ v: UnsafeMutablePointer<T>, _ g: UnsafeMutablePointer<T>,
    _ registers: UnsafeMutablePointer<T>, _ active: [Bool]
  ) {
    let slots = program.slots
    fillScalars(group, slots, v, registers)
    withUnsafeTemporaryAllocation(of: Int.self, capacity: Swift.max(group.owned.count, 1)) { zeroed in
      zeroed.initialize(repeating: 0)
      fusedReverseBlocks(group, program, v, g, registers, active, zeroed)
      // The elements of owned adjoints that no view reached.
      for (k, entry) in group.owned.enumerated() where active[entry.slot] {
        let slot = slots[entry.slot]
        (g + slot.offset + zeroed[k]).update(repeating: T(0), count: slot.count - zeroed[k])
      }
    }
  }

  private static func fusedReverseBlocks<T: ADScalar>(
    _ group: FusedGroup, _ program: Program, _ v: UnsafeMutablePointer<T>, _ g: UnsafeMutablePointer<T>,
    _ registers: UnsafeMutablePointer<T>, _ active: [Bool], _ zeroed: UnsafeMutableBufferPointer<Int>
  ) {
    let block = Fusion.block
    let slots = program.slots
    let adjointRegisters = registers + group.registers * block
    let totalAdjoint = group.sum.map { g[slots[$0.slot].offset] } ?? T(0)
    @inline(__always) func adjoint(_ ref: FusedRef, _ start: Int) -> UnsafeMutablePointer<T>? {
      switch ref {
      case .register(let r): return adjointRegisters + r * block
      case .arena(let slot, let offset, _): return active[slot] ? g + slots[slot].offset + offset + start : nil
      case .scalar(let slot, let r): return active[slot] ? adjointRegisters + r * block : nil
      }
    }
    var start = 0
    while start < group.count {
      let n = Swift.min(block, group.count - start)
      for step in group.steps {
        if case .register = step.output { fusedStepForward(step, slots, v, registers, start, n) }
      }
      adjointRegisters.update(repeating: T(0), count: group.registers * block)
      // Owned adjoints are zeroed up to the last element this block's views reach (the views only move forward).
      for (k, entry) in group.owned.enumerated() where active[entry.slot] {
        var reach = 0
        for view in entry.views { reach = Swift.max(reach, view.offset + (start + n - 1) * view.stride + 1) }
        if reach > zeroed[k] {
          (g + slots[entry.slot].offset + zeroed[k]).update(repeating: T(0), count: reach - zeroed[k])
          zeroed[k] = reach
        }
      }
      if let sum = group.sum, !totalAdjoint.isZero, let target = adjoint(sum.operand, start) {
        for k in 0..<n { target[k] += totalAdjoint }
      }
      for step in group.steps.reversed() {
        let out = Int(program.code[step.index].out)
        guard active[out], let gout = adjoint(step.output, start) else { continue }
        let y = pointer(step.output, slots, v, registers, start)
        switch step.op.family {
        case .view:
          guard case .arena(let slot, let offset, let stride) = step.operands[0], active[slot] else { continue }
          let base = g + slots[slot].offset + offset
          for k in 0..<n { base[(start + k) * stride] += gout[k] }
        case .unary:
          if let ga = adjoint(step.operands[0], start) {
            unaryReverse(step.op, n, pointer(step.operands[0], slots, v, registers, start), y, ga, gout)
          }
        case .binary:
          let a = pointer(step.operands[0], slots, v, registers, start)
          let b = pointer(step.operands[1], slots, v, registers, start)
          binaryReverse(
            step.op, nil, n, (y, a, b), (gout, adjoint(step.operands[0], start), adjoint(step.operands[1], start)))
        case .select:
          selectReverse(
            nil, n, gout, pointer(step.operands[0], slots, v, registers, start), adjoint(step.operands[1], start),
            adjoint(step.operands[2], start))
        default:
          break  // comparisons have no gradient
        }
      }
      // Broadcast scalars collected one adjoint per element of the block: add them up.
      for ref in group.scalars {
        guard case .scalar(let slot, let r) = ref, active[slot] else { continue }
        var sum = T(0)
        for k in 0..<n { sum += adjointRegisters[r * block + k] }
        g[slots[slot].offset] += sum
      }
      start += n
    }
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

  private static func fusedStepForward<T: ADScalar>(
    _ step: FusedGroup.Step, _ slots: [Program.Slot], _ v: UnsafeMutablePointer<T>,
    _ registers: UnsafeMutablePointer<T>, _ start: Int, _ n: Int
  ) {
    let out = pointer(step.output, slots, v, registers, start)
    switch step.op.family {
    case .view:
      guard case .arena(let slot, let offset, let stride) = step.operands[0] else { return }
      let base = v + slots[slot].offset + offset
      for k in 0..<n { out[k] = base[(start + k) * stride] }
    case .unary:
      unaryForward(step.op, n, pointer(step.operands[0], slots, v, registers, start), out)
    case .binary, .comparison:
      binaryForward(
        step.op, nil, n, out, pointer(step.operands[0], slots, v, registers, start),
        pointer(step.operands[1], slots, v, registers, start))
    case .select:
      selectForward(
        nil, n, out, pointer(step.operands[0], slots, v, registers, start),
        pointer(step.operands[1], slots, v, registers, start), pointer(step.operands[2], slots, v, registers, start))
    default:
      preconditionFailure("\(step.op.name) cannot be fused")
    }
  }

  private static func fillScalars<T: ADScalar>(
    _ group: FusedGroup, _ slots: [Program.Slot], _ v: UnsafeMutablePointer<T>, _ registers: UnsafeMutablePointer<T>
  ) {
    for ref in group.scalars {
      if case .scalar(let slot, let r) = ref {
        (registers + r * Fusion.block).update(repeating: v[slots[slot].offset], count: Fusion.block)
      }
    }
  }
}
