// The interpreters: forward, reverse and tangent sweeps over a program's instructions. The reverse sweep walks the
// instructions last to first and accumulates (`+=`) into operand adjoints, which is what makes fan-out correct;
// an operand broadcast from one element gathers the sum of its cotangents. Every term goes through `chain`, so a zero
// cotangent, tangent or partial contributes exactly zero.
//
// Each op family gets one generic loop that is inlined with a constant op, so the switch inside the rule folds
// away and every op runs its own tight loop. Programs whose slots all hold one element run a specialised loop
// with no offsets or strides.

enum Executor {
  typealias Arena = UnsafeMutablePointer<Double>

  // MARK: Forward

  static func forward(_ program: Program, _ values: Arena) {
    if program.allScalar {
      scalarForward(program, values)
      return
    }
    for instruction in program.code {
      let out = program.slots[Int(instruction.out)]
      let a = program.slots[Int(instruction.a)]
      switch instruction.op {
      case .add, .sub, .mul, .div, .pow:
        let b = program.slots[Int(instruction.b)]
        let (sa, sb) = (a.count == 1 ? 0 : 1, b.count == 1 ? 0 : 1)
        let (pa, pb, po) = (values + a.offset, values + b.offset, values + out.offset)
        switch instruction.op {
        case .add: binaryForward(.add, out.count, pa, sa, pb, sb, po)
        case .sub: binaryForward(.sub, out.count, pa, sa, pb, sb, po)
        case .mul: binaryForward(.mul, out.count, pa, sa, pb, sb, po)
        case .div: binaryForward(.div, out.count, pa, sa, pb, sb, po)
        default: binaryForward(.pow, out.count, pa, sa, pb, sb, po)
        }
      case .neg, .sin, .cos, .exp, .log, .tanh, .sqrt:
        let (pa, po) = (values + a.offset, values + out.offset)
        switch instruction.op {
        case .neg: unaryForward(.neg, out.count, pa, po)
        case .sin: unaryForward(.sin, out.count, pa, po)
        case .cos: unaryForward(.cos, out.count, pa, po)
        case .exp: unaryForward(.exp, out.count, pa, po)
        case .log: unaryForward(.log, out.count, pa, po)
        case .tanh: unaryForward(.tanh, out.count, pa, po)
        default: unaryForward(.sqrt, out.count, pa, po)
        }
      case .sum:
        var total = 0.0
        for i in 0..<a.count { total += values[a.offset + i] }
        values[out.offset] = total
      }
    }
  }

  @inline(__always)
  static func binaryForward(_ op: OpCode, _ n: Int, _ a: Arena, _ sa: Int, _ b: Arena, _ sb: Int, _ out: Arena) {
    for i in 0..<n { out[i] = BinaryRule.value(op, a[i &* sa], b[i &* sb]) }
  }

  @inline(__always)
  static func unaryForward(_ op: OpCode, _ n: Int, _ a: Arena, _ out: Arena) {
    for i in 0..<n { out[i] = UnaryRule.value(op, a[i]) }
  }

  static func scalarForward(_ program: Program, _ v: Arena) {
    program.code.withUnsafeBufferPointer { code in
      for instruction in code {
        let (o, a, b) = (Int(instruction.out), Int(instruction.a), Int(instruction.b))
        switch instruction.op {
        case .add: v[o] = v[a] + v[b]
        case .sub: v[o] = v[a] - v[b]
        case .mul: v[o] = v[a] * v[b]
        case .div: v[o] = v[a] / v[b]
        case .pow: v[o] = BinaryRule.power(v[a], v[b])
        case .neg: v[o] = -v[a]
        case .sin: v[o] = UnaryRule.value(.sin, v[a])
        case .cos: v[o] = UnaryRule.value(.cos, v[a])
        case .exp: v[o] = UnaryRule.value(.exp, v[a])
        case .log: v[o] = UnaryRule.value(.log, v[a])
        case .tanh: v[o] = UnaryRule.value(.tanh, v[a])
        case .sqrt: v[o] = v[a].squareRoot()
        case .sum: v[o] = v[a]
        }
      }
    }
  }

  // MARK: Reverse

  static func reverse(_ program: Program, _ values: Arena, _ adjoints: Arena) {
    if program.allScalar {
      scalarReverse(program, values, adjoints)
      return
    }
    for instruction in program.code.reversed() {
      let out = program.slots[Int(instruction.out)]
      let a = program.slots[Int(instruction.a)]
      switch instruction.op {
      case .add, .sub, .mul, .div, .pow:
        let b = program.slots[Int(instruction.b)]
        let (sa, sb) = (a.count == 1 ? 0 : 1, b.count == 1 ? 0 : 1)
        let (va, vb, vo) = (values + a.offset, values + b.offset, values + out.offset)
        let (ga, gb, go) = (adjoints + a.offset, adjoints + b.offset, adjoints + out.offset)
        switch instruction.op {
        case .add: binaryReverse(.add, out.count, va, ga, sa, vb, gb, sb, vo, go)
        case .sub: binaryReverse(.sub, out.count, va, ga, sa, vb, gb, sb, vo, go)
        case .mul: binaryReverse(.mul, out.count, va, ga, sa, vb, gb, sb, vo, go)
        case .div: binaryReverse(.div, out.count, va, ga, sa, vb, gb, sb, vo, go)
        default: binaryReverse(.pow, out.count, va, ga, sa, vb, gb, sb, vo, go)
        }
      case .neg, .sin, .cos, .exp, .log, .tanh, .sqrt:
        let (va, ga, vo, go) = (values + a.offset, adjoints + a.offset, values + out.offset, adjoints + out.offset)
        switch instruction.op {
        case .neg: unaryReverse(.neg, out.count, va, ga, vo, go)
        case .sin: unaryReverse(.sin, out.count, va, ga, vo, go)
        case .cos: unaryReverse(.cos, out.count, va, ga, vo, go)
        case .exp: unaryReverse(.exp, out.count, va, ga, vo, go)
        case .log: unaryReverse(.log, out.count, va, ga, vo, go)
        case .tanh: unaryReverse(.tanh, out.count, va, ga, vo, go)
        default: unaryReverse(.sqrt, out.count, va, ga, vo, go)
        }
      case .sum:
        let g = adjoints[out.offset]
        if g != 0 { for i in 0..<a.count { adjoints[a.offset + i] += g } }
      }
    }
  }

  @inline(__always)
  static func binaryReverse(
    _ op: OpCode, _ n: Int, _ va: Arena, _ ga: Arena, _ sa: Int, _ vb: Arena, _ gb: Arena, _ sb: Int,
    _ vo: Arena, _ go: Arena
  ) {
    for i in 0..<n {
      let g = go[i]
      if g == 0 { continue }
      let (x, y, z) = (va[i &* sa], vb[i &* sb], vo[i])
      ga[i &* sa] += chain(g, BinaryRule.partialA(op, x, y, z))
      gb[i &* sb] += chain(g, BinaryRule.partialB(op, x, y, z))
    }
  }

  @inline(__always)
  static func unaryReverse(_ op: OpCode, _ n: Int, _ va: Arena, _ ga: Arena, _ vo: Arena, _ go: Arena) {
    for i in 0..<n {
      let g = go[i]
      if g == 0 { continue }
      ga[i] += chain(g, UnaryRule.derivative(op, va[i], vo[i]))
    }
  }

  static func scalarReverse(_ program: Program, _ v: Arena, _ adj: Arena) {
    program.code.withUnsafeBufferPointer { code in
      var index = code.count
      while index > 0 {
        index &-= 1
        let instruction = code[index]
        let (o, a, b) = (Int(instruction.out), Int(instruction.a), Int(instruction.b))
        let g = adj[o]
        if g == 0 { continue }
        switch instruction.op {
        case .add:
          adj[a] += g
          adj[b] += g
        case .sub:
          adj[a] += g
          adj[b] -= g
        case .mul:
          adj[a] += chain(g, v[b])
          adj[b] += chain(g, v[a])
        case .div:
          adj[a] += chain(g, BinaryRule.partialA(.div, v[a], v[b], v[o]))
          adj[b] += chain(g, BinaryRule.partialB(.div, v[a], v[b], v[o]))
        case .pow:
          adj[a] += chain(g, BinaryRule.partialA(.pow, v[a], v[b], v[o]))
          adj[b] += chain(g, BinaryRule.partialB(.pow, v[a], v[b], v[o]))
        case .neg: adj[a] -= g
        case .sin: adj[a] += chain(g, UnaryRule.derivative(.sin, v[a], v[o]))
        case .cos: adj[a] += chain(g, UnaryRule.derivative(.cos, v[a], v[o]))
        case .exp: adj[a] += chain(g, v[o])
        case .log: adj[a] += chain(g, UnaryRule.derivative(.log, v[a], v[o]))
        case .tanh: adj[a] += chain(g, UnaryRule.derivative(.tanh, v[a], v[o]))
        case .sqrt: adj[a] += chain(g, UnaryRule.derivative(.sqrt, v[a], v[o]))
        case .sum: adj[a] += g
        }
      }
    }
  }

  // MARK: Tangents (forward mode)

  static func tangents(_ program: Program, _ values: Arena, _ tangents: Arena) {
    for instruction in program.code {
      let out = program.slots[Int(instruction.out)]
      let a = program.slots[Int(instruction.a)]
      switch instruction.op {
      case .add, .sub, .mul, .div, .pow:
        let b = program.slots[Int(instruction.b)]
        let (sa, sb) = (a.count == 1 ? 0 : 1, b.count == 1 ? 0 : 1)
        let (va, vb, vo) = (values + a.offset, values + b.offset, values + out.offset)
        let (ta, tb, to) = (tangents + a.offset, tangents + b.offset, tangents + out.offset)
        switch instruction.op {
        case .add: binaryTangent(.add, out.count, va, ta, sa, vb, tb, sb, vo, to)
        case .sub: binaryTangent(.sub, out.count, va, ta, sa, vb, tb, sb, vo, to)
        case .mul: binaryTangent(.mul, out.count, va, ta, sa, vb, tb, sb, vo, to)
        case .div: binaryTangent(.div, out.count, va, ta, sa, vb, tb, sb, vo, to)
        default: binaryTangent(.pow, out.count, va, ta, sa, vb, tb, sb, vo, to)
        }
      case .neg, .sin, .cos, .exp, .log, .tanh, .sqrt:
        let (va, ta, vo, to) = (values + a.offset, tangents + a.offset, values + out.offset, tangents + out.offset)
        switch instruction.op {
        case .neg: unaryTangent(.neg, out.count, va, ta, vo, to)
        case .sin: unaryTangent(.sin, out.count, va, ta, vo, to)
        case .cos: unaryTangent(.cos, out.count, va, ta, vo, to)
        case .exp: unaryTangent(.exp, out.count, va, ta, vo, to)
        case .log: unaryTangent(.log, out.count, va, ta, vo, to)
        case .tanh: unaryTangent(.tanh, out.count, va, ta, vo, to)
        default: unaryTangent(.sqrt, out.count, va, ta, vo, to)
        }
      case .sum:
        var total = 0.0
        for i in 0..<a.count { total += tangents[a.offset + i] }
        tangents[out.offset] = total
      }
    }
  }

  @inline(__always)
  static func binaryTangent(
    _ op: OpCode, _ n: Int, _ va: Arena, _ ta: Arena, _ sa: Int, _ vb: Arena, _ tb: Arena, _ sb: Int,
    _ vo: Arena, _ to: Arena
  ) {
    for i in 0..<n {
      let (x, y, z) = (va[i &* sa], vb[i &* sb], vo[i])
      let (dx, dy) = (ta[i &* sa], tb[i &* sb])
      to[i] = chain(dx, BinaryRule.partialA(op, x, y, z)) + chain(dy, BinaryRule.partialB(op, x, y, z))
    }
  }

  @inline(__always)
  static func unaryTangent(_ op: OpCode, _ n: Int, _ va: Arena, _ ta: Arena, _ vo: Arena, _ to: Arena) {
    for i in 0..<n {
      to[i] = chain(ta[i], UnaryRule.derivative(op, va[i], vo[i]))
    }
  }
}
