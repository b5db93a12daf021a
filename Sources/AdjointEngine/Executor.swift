// The interpreters: the forward sweep runs instructions first to last; the reverse sweep walks them last to first
// and accumulates (`+=`) into operand adjoints, which is what makes fan-out correct. Both are generic over the
// number type: Double for values and gradients, Dual for forward mode and forward-over-reverse.
//
// `active[slot]` says whether a slot's adjoint is wanted (it depends on an input being differentiated); the reverse
// sweep skips inactive instructions and never writes adjoints of inactive operands. Programs whose slots all hold one
// element and whose ops are all elementwise run a specialised scalar loop.

/// Runs programs over arenas of numbers.
enum Executor {
  /// Runs every instruction forward.
  static func forward<T: ADScalar>(
    _ program: Program, _ values: UnsafeMutablePointer<T>, _ scratch: UnsafeMutablePointer<T>
  ) {
    if T.self == Double.self && program.allScalar {
      values.withMemoryRebound(to: Double.self, capacity: program.arenaCount) { scalarForward(program, $0) }
      return
    }
    for index in program.code.indices { forward(program, index, values, scratch) }
  }

  /// Runs instruction `index` forward.
  static func forward<T: ADScalar>(
    _ program: Program, _ index: Int, _ v: UnsafeMutablePointer<T>, _ scratch: UnsafeMutablePointer<T>
  ) {
    let instruction = program.code[index]
    let slots = program.slots
    let out = slots[Int(instruction.out)]
    let po = v + out.offset
    @inline(__always) func operand(_ slot: Int32) -> UnsafeMutablePointer<T> { v + slots[Int(slot)].offset }
    let plan = program.plans[Int(instruction.plan)]
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
      matmulForward(matmul, operand(instruction.a), operand(instruction.b), po)
    case .view:
      guard case .map(let map) = plan else { preconditionFailure("view without a plan") }
      viewForward(map, operand(instruction.a), po)
    case .copy:
      po.update(from: operand(instruction.a), count: out.count)
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
    _ scratch: UnsafeMutablePointer<T>, active: [Bool]
  ) {
    if T.self == Double.self && program.allScalar {
      values.withMemoryRebound(to: Double.self, capacity: program.arenaCount) { v in
        adjoints.withMemoryRebound(to: Double.self, capacity: program.arenaCount) { g in
          scalarReverse(program, v, g)
        }
      }
      return
    }
    var index = program.code.count
    while index > 0 {
      index -= 1
      reverse(program, index, values, adjoints, scratch, active)
    }
  }

  /// Runs the reverse rule of instruction `index`.
  static func reverse<T: ADScalar>(
    _ program: Program, _ index: Int, _ v: UnsafeMutablePointer<T>, _ g: UnsafeMutablePointer<T>,
    _ scratch: UnsafeMutablePointer<T>, _ active: [Bool]
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
      if let ga = adjoint(a) { unaryReverse(instruction.op, out.count, value(a), vo, ga, go) }
    case .binary:
      binaryReverse(instruction.op, plan.map, out.count, (vo, value(a), value(b)), (go, adjoint(a), adjoint(b)))
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
      matmulReverse(matmul, value(a), value(b), go, adjoint(a), adjoint(b))
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
    var active = [Bool](repeating: false, count: program.slots.count)
    for index in inputs { active[program.inputs[index].slot] = true }
    for instruction in program.code {
      switch instruction.op {
      case .stopGradient, .lt, .le, .gt, .ge, .eq, .ne, .sign: continue
      default: break
      }
      if program.operands(instruction).contains(where: { active[$0] }) { active[Int(instruction.out)] = true }
    }
    return active
  }

  // MARK: Scalar programs

  static func scalarForward(_ program: Program, _ v: UnsafeMutablePointer<Double>) {
    program.code.withUnsafeBufferPointer { code in
      for instruction in code {
        let (o, a, b) = (Int(instruction.out), Int(instruction.a), Int(instruction.b))
        switch instruction.op {
        case .add: v[o] = v[a] + v[b]
        case .sub: v[o] = v[a] - v[b]
        case .mul: v[o] = v[a] * v[b]
        case .div: v[o] = v[a] / v[b]
        case .sin: v[o] = UnaryRule.value(.sin, v[a])
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

  /// The reverse sweep of a scalar program. It accumulates into every operand, active or not: inactive slots are
  /// constants or inputs not asked for, whose adjoints nobody reads.
  static func scalarReverse(_ program: Program, _ v: UnsafeMutablePointer<Double>, _ g: UnsafeMutablePointer<Double>) {
    program.code.withUnsafeBufferPointer { code in
      var index = code.count
      while index > 0 {
        index &-= 1
        let instruction = code[index]
        let (o, a, b) = (Int(instruction.out), Int(instruction.a), Int(instruction.b))
        let go = g[o]
        if go == 0 { continue }
        switch instruction.op {
        case .add:
          g[a] += go
          g[b] += go
        case .sub:
          g[a] += go
          g[b] -= go
        case .mul:
          g[a] += Double.chain(go, v[b])
          g[b] += Double.chain(go, v[a])
        case .sin: g[a] += Double.chain(go, UnaryRule.derivative(.sin, v[a], v[o]))
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

extension Plan {
  /// The strided map of a broadcasting elementwise op, or nil when its operands all have the output's shape.
  var map: StridedMap? {
    if case .map(let map) = self { return map }
    return nil
  }
}
