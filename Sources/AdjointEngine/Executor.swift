// The interpreters: the forward sweep runs instructions first to last; the reverse sweep walks them last to first
// and accumulates (`+=`) into operand adjoints, which is what makes fan-out correct. Both are generic over the
// number type: Double for values and gradients, Dual for forward mode and forward-over-reverse.
//
// `active[slot]` says whether a slot's adjoint is wanted (it depends on an input being differentiated); the reverse
// sweep skips inactive instructions and never writes adjoints of inactive operands. Programs whose slots all hold one
// element and whose ops are all elementwise run specialised scalar loops; a workspace's replay of one keeps the chain
// of dependent results in registers (``ScalarStep``).

/// Runs programs over arenas of numbers.
enum Executor {
  /// Runs every instruction forward.
  static func forward<T: ADScalar>(
    _ program: Program, _ values: UnsafeMutablePointer<T>, _ scratch: UnsafeMutablePointer<T>,
    _ registers: UnsafeMutablePointer<T>, derivatives: UnsafeMutablePointer<Double>? = nil,
    parallel: ParallelFor? = nil
  ) {
    if T.self == Double.self && program.allScalar {
      values.withMemoryRebound(to: Double.self, capacity: program.arenaCount) { v in
        if let derivatives {
          scalarReplayForward(program, v, derivatives)
        } else {
          scalarForward(program, v)
        }
      }
      return
    }
    var index = 0
    while index < program.code.count {
      let group = Int(program.groupStart[index])
      if group >= 0 {
        fusedForward(program.fusedGroups[group], program, values, registers)
        index = program.fusedGroups[group].last + 1
      } else {
        forward(program, index, values, scratch, parallel: parallel)
        index += 1
      }
    }
  }

  /// Runs instruction `index` forward.
  static func forward<T: ADScalar>(
    _ program: Program, _ index: Int, _ v: UnsafeMutablePointer<T>, _ scratch: UnsafeMutablePointer<T>,
    parallel: ParallelFor? = nil
  ) {
    forward(program.code[index], program.slots, program.plans, v, scratch, parallel: parallel)
  }

  /// Runs one instruction forward over the given slots and plans: a program's, or a ``Tape``'s as it records. A large
  /// matrix product runs in parts through `parallel`, when given.
  static func forward<T: ADScalar>(
    _ instruction: Program.Instruction, _ slots: [Program.Slot], _ plans: [Plan], _ v: UnsafeMutablePointer<T>,
    _ scratch: UnsafeMutablePointer<T>, parallel: ParallelFor? = nil
  ) {
    let out = slots[Int(instruction.out)]
    let po = v + out.offset
    @inline(__always) func operand(_ slot: Int32) -> UnsafeMutablePointer<T> { v + slots[Int(slot)].offset }
    let plan = plans[Int(instruction.plan)]
    switch instruction.op.family {
    case .unary:
      unaryForward(instruction.op, out.count, operand(instruction.a), po)
    case .binary, .comparison:
      binaryForward(instruction.op, plan.map, out.count, po, operand(instruction.a), operand(instruction.b))
    case .select:
      selectForward(plan.map, out.count, po, operand(instruction.a), operand(instruction.b), operand(instruction.c))
    case .reduction:
      guard case .reduce(let map, let count) = plan else { preconditionFailure("reduction without a plan") }
      reduceForward(instruction.op, map, count, operand(instruction.a), po, scratch)
    case .normalization:
      guard case .normalize(let map, let count) = plan else { preconditionFailure("softmax without a plan") }
      normalizeForward(instruction.op, map, count, operand(instruction.a), po, scratch)
    case .matmul:
      guard case .matmul(let matmul) = plan else { preconditionFailure("matmul without a plan") }
      matmulForward(matmul, operand(instruction.a), operand(instruction.b), po, parallel: parallel)
    case .view:
      guard case .map(let map) = plan else { preconditionFailure("view without a plan") }
      viewForward(map, operand(instruction.a), po)
    case .copy:
      copyForward(instruction.op, out.count, operand(instruction.a), po)
    case .concat:
      guard case .concat(let parts) = plan else { preconditionFailure("concat without a plan") }
      concatForward(parts, v, slots, po)
    case .take:
      guard case .take(let take) = plan else { preconditionFailure("take without a plan") }
      takeForward(take, operand(instruction.a), po)
    }
  }

  /// Runs the reverse sweep over every instruction whose output is active.
  static func reverse<T: ADScalar>(
    _ program: Program, _ values: UnsafeMutablePointer<T>, _ adjoints: UnsafeMutablePointer<T>,
    _ scratch: UnsafeMutablePointer<T>, _ registers: UnsafeMutablePointer<T>, active: [Bool],
    derivatives: UnsafeMutablePointer<Double>? = nil, parallel: ParallelFor? = nil
  ) {
    if T.self == Double.self && program.allScalar {
      values.withMemoryRebound(to: Double.self, capacity: program.arenaCount) { v in
        adjoints.withMemoryRebound(to: Double.self, capacity: program.arenaCount) { g in
          if let derivatives {
            scalarReplayReverse(program, v, g, derivatives)
          } else {
            scalarReverse(program.code, v, g, firstContributions: program.scalarFirstContributions)
          }
        }
      }
      return
    }
    var index = program.code.count
    while index > 0 {
      index -= 1
      let group = Int(program.groupEnd[index])
      if group >= 0 {
        fusedReverse(program.fusedGroups[group], program, values, adjoints, registers, active)
        index = program.fusedGroups[group].first
      } else {
        reverse(program, index, values, adjoints, scratch, active, parallel: parallel)
      }
    }
  }

  /// Runs the reverse sweep with block registers of its own (allocated for this call when the program has fused
  /// runs), for callers that own no arena, such as the eager tape.
  static func reverse<T: ADScalar>(
    _ program: Program, _ values: UnsafeMutablePointer<T>, _ adjoints: UnsafeMutablePointer<T>,
    _ scratch: UnsafeMutablePointer<T>, active: [Bool]
  ) {
    let count = Swift.max(program.fusionScratchCount, 1)
    let registers = UnsafeMutablePointer<T>.allocate(capacity: count)
    registers.initialize(repeating: T(0), count: count)
    defer {
      registers.deinitialize(count: count)
      registers.deallocate()
    }
    reverse(program, values, adjoints, scratch, registers, active: active)
  }

  /// Runs the reverse rule of instruction `index`; a large matrix product in parts through `parallel`, when given.
  static func reverse<T: ADScalar>(
    _ program: Program, _ index: Int, _ v: UnsafeMutablePointer<T>, _ g: UnsafeMutablePointer<T>,
    _ scratch: UnsafeMutablePointer<T>, _ active: [Bool], parallel: ParallelFor? = nil
  ) {
    let instruction = program.code[index]
    guard active[Int(instruction.out)] else { return }
    let slots = program.slots
    let out = slots[Int(instruction.out)]
    let (vo, go) = (v + out.offset, g + out.offset)
    @inline(__always) func value(_ slot: Int32) -> UnsafeMutablePointer<T> { v + slots[Int(slot)].offset }
    @inline(__always) func adjoint(_ slot: Int32) -> UnsafeMutablePointer<T>? {
      slot >= 0 && active[Int(slot)] ? g + slots[Int(slot)].offset : nil
    }
    let plan = program.plans[Int(instruction.plan)]
    let (a, b, c) = (instruction.a, instruction.b, instruction.c)
    switch instruction.op.family {
    case .unary:
      if let ga = adjoint(a) {
        unaryReverse(instruction.op, out.count, value(a), vo, ga, go, store: program.adjointStorers[Int(a)] == index)
      }
    case .binary:
      let store = (program.adjointStorers[Int(a)] == index, program.adjointStorers[Int(b)] == index)
      binaryReverse(
        instruction.op, plan.map, out.count, (vo, value(a), value(b)), (go, adjoint(a), adjoint(b)), store: store)
    case .comparison:
      break
    case .select:
      selectReverse(plan.map, out.count, go, value(a), adjoint(b), adjoint(c))
    case .reduction:
      guard case .reduce(let map, let count) = plan, let ga = adjoint(a) else { return }
      reduceReverse(instruction.op, map, count, value(a), vo, ga, go, scratch)
    case .normalization:
      guard case .normalize(let map, let count) = plan, let ga = adjoint(a) else { return }
      normalizeReverse(instruction.op, map, count, vo, ga, go, scratch)
    case .matmul:
      guard case .matmul(let matmul) = plan else { return }
      let store = (program.adjointStorers[Int(a)] == index, program.adjointStorers[Int(b)] == index)
      matmulReverse(matmul, value(a), value(b), vo, go, adjoint(a), adjoint(b), store: store, parallel: parallel)
    case .view:
      guard case .map(let map) = plan, let ga = adjoint(a) else { return }
      viewReverse(map, ga, go)
    case .copy:
      guard instruction.op == .reshape, let ga = adjoint(a) else { return }
      for i in 0..<out.count { ga[i] += go[i] }
    case .concat:
      guard case .concat(let parts) = plan else { return }
      concatReverse(parts, g, slots, active: active, go)
    case .take:
      guard case .take(let take) = plan, let ga = adjoint(a) else { return }
      takeReverse(take, ga, go)
    }
  }

  /// Which slots need adjoints when differentiating with respect to the given inputs: those that depend on one of
  /// them through ops that have a gradient.
  static func activeSlots(_ program: Program, wrt inputs: [Int]) -> [Bool] {
    activeSlots(program, from: inputs.map { program.inputs[$0].slot })
  }

  /// Which slots depend on one of the `seeds` slots through ops that have a gradient.
  static func activeSlots(_ program: Program, from seeds: [Int]) -> [Bool] {
    var active = [Bool](repeating: false, count: program.slots.count)
    for slot in seeds { active[slot] = true }
    active.withUnsafeMutableBufferPointer { active in
      for instruction in program.code {
        switch instruction.op {
        case .stopGradient, .lt, .le, .gt, .ge, .eq, .ne, .sign: continue
        case .concat:
          guard case .concat(let parts) = program.plans[Int(instruction.plan)] else { continue }
          if parts.contains(where: { active[$0.slot] }) { active[Int(instruction.out)] = true }
        default:
          let (a, b, c) = (Int(instruction.a), Int(instruction.b), Int(instruction.c))
          if (a >= 0 && active[a]) || (b >= 0 && active[b]) || (c >= 0 && active[c]) {
            active[Int(instruction.out)] = true
          }
        }
      }
    }
    return active
  }

  // MARK: Scalar programs

  /// The forward sweep of a scalar program, for a caller that keeps no derivatives (a workspace's replay runs
  /// ``scalarReplayForward(_:_:_:)``).
  static func scalarForward(_ program: Program, _ v: UnsafeMutablePointer<Double>) {
    program.code.withUnsafeBufferPointer { code in
      for instruction in code {
        let (o, a, b) = (Int(instruction.out), Int(instruction.a), Int(instruction.b))
        switch instruction.op {
        case .add: v[o] = v[a] + v[b]
        case .sub: v[o] = v[a] - v[b]
        case .mul: v[o] = v[a] * v[b]
        case .div: v[o] = v[a] / v[b]
        case .where: v[o] = v[a] != 0 ? v[b] : v[Int(instruction.c)]
        default:
          switch instruction.op.family {
          case .unary: v[o] = UnaryRule.value(instruction.op, v[a])
          default: v[o] = BinaryRule.value(instruction.op, v[a], v[b])
          }
        }
      }
    }
  }

  /// The reverse sweep of scalar instructions, a program's or a ``Tape``'s (slot `s` at offset `s`).
  ///
  /// `firstContributions` (``Program/scalarFirstContributions``, or empty: accumulate everywhere) marks the
  /// contributions that may be stored instead of added.
  static func scalarReverse(
    _ code: [Program.Instruction], _ v: UnsafeMutablePointer<Double>, _ g: UnsafeMutablePointer<Double>,
    firstContributions: [UInt8] = []
  ) {
    code.withUnsafeBufferPointer { code in
      firstContributions.withUnsafeBufferPointer { flags in
        // An empty array's buffer may still have a base address: no flags means accumulate everywhere.
        let first = flags.isEmpty ? nil : flags.baseAddress
        var index = code.count
        while index > 0 {
          index &-= 1
          let instruction = code[index]
          let (o, a, b) = (Int(instruction.out), Int(instruction.a), Int(instruction.b))
          let go = g[o]
          if go == 0 { continue }
          let flags = first?[index] ?? 0
          switch instruction.op {
          case .add:
            if flags & 1 != 0 { g[a] = go } else { g[a] += go }
            if flags & 2 != 0 { g[b] = go } else { g[b] += go }
          case .sub:
            if flags & 1 != 0 { g[a] = go } else { g[a] += go }
            if flags & 2 != 0 { g[b] = -go } else { g[b] -= go }
          case .mul:
            let ga = Double.chain(go, v[b])
            let gb = Double.chain(go, v[a])
            if flags & 1 != 0 { g[a] = ga } else { g[a] += ga }
            if flags & 2 != 0 { g[b] = gb } else { g[b] += gb }
          case .sin, .cos:
            let d = UnaryRule.derivative(instruction.op, v[a], v[o])
            if flags & 1 != 0 { g[a] = Double.chain(go, d) } else { g[a] += Double.chain(go, d) }
          case .neg: g[a] -= go
          case .where:
            if v[a] != 0 { g[b] += go } else { g[Int(instruction.c)] += go }
          default:
            switch instruction.op.family {
            case .unary:
              g[a] += Double.chain(go, UnaryRule.derivative(instruction.op, v[a], v[o]))
            case .binary:
              g[a] += Double.chain(go, BinaryRule.partialA(instruction.op, v[a], v[b], v[o]))
              g[b] += Double.chain(go, BinaryRule.partialB(instruction.op, v[a], v[b], v[o]))
            default: break
            }
          }
        }
      }
    }
  }
}

// MARK: Scalar replay

extension Executor {
  /// The forward sweep of a scalar program for a reverse sweep right after (``scalarReplayReverse(_:_:_:_:)``): as
  /// ``scalarForward(_:_:)``, but over ``Program/scalarSteps``, with the last result kept in a register for the next
  /// instruction, and with `sin` and `cos` storing their derivative in `d` (at the output's slot) from one sincos.
  static func scalarReplayForward(
    _ program: Program, _ v: UnsafeMutablePointer<Double>, _ d: UnsafeMutablePointer<Double>
  ) {
    program.scalarSteps.withUnsafeBufferPointer { steps in
      var last = 0.0
      for step in steps {
        let (o, a, b) = (Int(step.out), Int(step.a), Int(step.b))
        let forward = step.forward
        let kind = ScalarStep.Kind(rawValue: forward >> 2) ?? .other
        if kind != .other {
          // Branches, not selects: a load from the arena would wait for the store of `last` to forward.
          let x = forward & ScalarStep.fromPreviousA != 0 ? last : v[a]
          switch kind {
          case .sin:
            (last, d[o]) = LibM.sinAndCosine(x)
          case .cos:
            let (sine, cosine) = LibM.sinAndCosine(x)
            (last, d[o]) = (cosine, -sine)
          default:
            let y = forward & ScalarStep.fromPreviousB != 0 ? last : v[b]
            switch kind {
            case .add: last = x + y
            case .sub: last = x - y
            case .mul: last = x * y
            default: last = x / y
            }
          }
        } else {
          switch step.op {
          case .where: last = v[a] != 0 ? v[b] : v[Int(step.c)]
          default:
            switch step.op.family {
            case .unary: last = UnaryRule.value(step.op, v[a])
            default: last = BinaryRule.value(step.op, v[a], v[b])
            }
          }
        }
        v[o] = last
      }
    }
  }

  /// The reverse sweep of a scalar program after ``scalarReplayForward(_:_:_:)``: as
  /// ``scalarReverse(_:_:_:firstContributions:)``, but over ``Program/scalarSteps``, with the operand adjoints each
  /// rule writes kept in registers for the cotangent of the instruction before it, and the derivatives of `sin` and
  /// `cos` read from `d`.
  static func scalarReplayReverse(
    _ program: Program, _ v: UnsafeMutablePointer<Double>, _ g: UnsafeMutablePointer<Double>,
    _ d: UnsafeMutablePointer<Double>
  ) {
    program.scalarSteps.withUnsafeBufferPointer { steps in
      // The adjoints of operands `a` and `b` as the last rule left them.
      var (adjointA, adjointB) = (0.0, 0.0)
      var index = steps.count
      while index > 0 {
        index &-= 1
        let step = steps[index]
        let (o, a, b) = (Int(step.out), Int(step.a), Int(step.b))
        let reverse = step.reverse
        let go: Double
        switch reverse & 3 {
        case ScalarStep.fromPreviousA: go = adjointA
        case ScalarStep.fromPreviousB: go = adjointB
        default: go = g[o]
        }
        let kind = ScalarStep.Kind(rawValue: reverse >> 4) ?? .other
        if go == 0 {
          // Nothing to add: the arena's zeros stand for a first contribution.
          if kind != .other {
            adjointA = g[a]
            if kind.isBinary { adjointB = g[b] }
          }
          continue
        }
        let storeA = reverse & 4 != 0
        let storeB = reverse & 8 != 0
        switch kind {
        case .add:
          adjointA = storeA ? go : g[a] + go
          g[a] = adjointA
          adjointB = storeB ? go : g[b] + go
          g[b] = adjointB
        case .sub:
          adjointA = storeA ? go : g[a] + go
          g[a] = adjointA
          adjointB = storeB ? -go : g[b] - go
          g[b] = adjointB
        case .mul:
          let ga = Double.chain(go, v[b])
          let gb = Double.chain(go, v[a])
          adjointA = storeA ? ga : g[a] + ga
          g[a] = adjointA
          adjointB = storeB ? gb : g[b] + gb
          g[b] = adjointB
        case .sin, .cos:
          let ga = Double.chain(go, d[o])
          adjointA = storeA ? ga : g[a] + ga
          g[a] = adjointA
        case .other, .div:
          switch step.op {
          case .neg: g[a] -= go
          case .where:
            if v[a] != 0 { g[b] += go } else { g[Int(step.c)] += go }
          default:
            switch step.op.family {
            case .unary:
              g[a] += Double.chain(go, UnaryRule.derivative(step.op, v[a], v[o]))
            case .binary:
              g[a] += Double.chain(go, BinaryRule.partialA(step.op, v[a], v[b], v[o]))
              g[b] += Double.chain(go, BinaryRule.partialB(step.op, v[a], v[b], v[o]))
            default: break
            }
          }
        }
      }
    }
  }
}

extension Plan {
  /// The strided map of a broadcasting elementwise op, or nil when its operands all have the output's shape.
  var map: StridedMap? {
    if case .map(let map) = self { return map }
    return nil
  }
}
