// Views (transpose, broadcast_to, slice), copies (reshape, stop_gradient), concat and take: forward kernels and
// reverse rules. A view's reverse rule is its map run as a scatter-add, which sums over broadcast axes.

extension Executor {
  static func viewForward<T: ADScalar>(_ map: StridedMap, _ x: UnsafeMutablePointer<T>, _ out: UnsafeMutablePointer<T>)
  {
    map.forEachRow { n, o, i, _, _, so, si, _, _ in
      for k in 0..<n { out[o + k * so] = x[i + k * si] }
    }
  }

  static func viewReverse<T: ADScalar>(
    _ map: StridedMap, _ gx: UnsafeMutablePointer<T>, _ gout: UnsafeMutablePointer<T>
  ) {
    map.forEachRow { n, o, i, _, _, so, si, _, _ in
      for k in 0..<n { gx[i + k * si] += gout[o + k * so] }
    }
  }

  /// reshape and stop_gradient copy; stop_gradient copies only the primal values, so that forward mode (JVPs and
  /// the forward half of Hessians) sees a constant, as the reverse sweep does.
  static func copyForward<T: ADScalar>(
    _ op: OpCode, _ n: Int, _ x: UnsafeMutablePointer<T>, _ out: UnsafeMutablePointer<T>
  ) {
    if op == .stopGradient && T.self != Double.self {
      for i in 0..<n { out[i] = T(x[i].primal) }
    } else {
      out.update(from: x, count: n)
    }
  }

  static func concatForward<T: ADScalar>(
    _ parts: [ConcatPart], _ values: UnsafeMutablePointer<T>, _ slots: [Program.Slot], _ out: UnsafeMutablePointer<T>
  ) {
    for part in parts {
      let source = values + slots[part.slot].offset
      for o in 0..<part.outer {
        (out + o * part.outputWidth + part.offset).update(from: source + o * part.width, count: part.width)
      }
    }
  }

  static func concatReverse<T: ADScalar>(
    _ parts: [ConcatPart], _ adjoints: UnsafeMutablePointer<T>, _ slots: [Program.Slot], active: [Bool],
    _ gout: UnsafeMutablePointer<T>
  ) {
    for part in parts where active[part.slot] {
      let target = adjoints + slots[part.slot].offset
      for o in 0..<part.outer {
        let from = gout + o * part.outputWidth + part.offset
        let to = target + o * part.width
        for i in 0..<part.width { to[i] += from[i] }
      }
    }
  }

  static func takeForward<T: ADScalar>(_ plan: TakePlan, _ x: UnsafeMutablePointer<T>, _ out: UnsafeMutablePointer<T>) {
    let width = plan.indices.count * plan.inner
    for o in 0..<plan.outer {
      for (j, index) in plan.indices.enumerated() {
        (out + o * width + j * plan.inner).update(
          from: x + (o * plan.axisExtent + index) * plan.inner, count: plan.inner)
      }
    }
  }

  static func takeReverse<T: ADScalar>(
    _ plan: TakePlan, _ gx: UnsafeMutablePointer<T>, _ gout: UnsafeMutablePointer<T>
  ) {
    let width = plan.indices.count * plan.inner
    for o in 0..<plan.outer {
      for (j, index) in plan.indices.enumerated() {
        let from = gout + o * width + j * plan.inner
        let to = gx + (o * plan.axisExtent + index) * plan.inner
        for i in 0..<plan.inner { to[i] += from[i] }
      }
    }
  }
}
