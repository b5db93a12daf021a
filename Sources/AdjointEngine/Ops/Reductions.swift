// Reductions (sum, max, min, prod, logsumexp) and softmax / log_softmax: forward kernels and reverse rules.
// A reduction is a strided map over the input whose operand 1 is the output, with stride 0 along reduced axes.
// Ties in max and min share the gradient equally (PyTorch's rule).

extension Executor {
  /// The sum of `n` contiguous numbers with eight running sums, so that additions do not wait on each other (and the
  /// rounding error grows more slowly than with one running sum).
  @inline(__always)
  static func contiguousSum<T: ADScalar>(_ p: UnsafeMutablePointer<T>, _ n: Int) -> T {
    if T.self == Double.self {
      let p = doubles(p)
      var lanes = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
      var k = 0
      while k + 8 <= n {
        lanes.0 += p[k]
        lanes.1 += p[k + 1]
        lanes.2 += p[k + 2]
        lanes.3 += p[k + 3]
        lanes.4 += p[k + 4]
        lanes.5 += p[k + 5]
        lanes.6 += p[k + 6]
        lanes.7 += p[k + 7]
        k += 8
      }
      var total = ((lanes.0 + lanes.1) + (lanes.2 + lanes.3)) + ((lanes.4 + lanes.5) + (lanes.6 + lanes.7))
      while k < n {
        total += p[k]
        k += 1
      }
      return T(total)
    }
    var total = T(0)
    for k in 0..<n { total += p[k] }
    return total
  }

  static func reduceForward<T: ADScalar>(
    _ op: OpCode, _ map: StridedMap, _ outputCount: Int, _ x: UnsafeMutablePointer<T>,
    _ out: UnsafeMutablePointer<T>, _ scratch: UnsafeMutablePointer<T>
  ) {
    switch op {
    case .sum:
      out.update(repeating: T(0), count: outputCount)
      map.forEachRow { n, i, o, _, _, si, so, _, _ in
        if so == 0 && si == 1 {
          out[o] += contiguousSum(x + i, n)
        } else if so == 0 {
          var total = out[o]
          for k in 0..<n { total += x[i + k * si] }
          out[o] = total
        } else {
          for k in 0..<n { out[o + k * so] += x[i + k * si] }
        }
      }
    case .max, .min:
      let isMax = op == .max
      out.update(repeating: T(isMax ? -.infinity : .infinity), count: outputCount)
      map.forEachRow { n, i, o, _, _, si, so, _, _ in
        for k in 0..<n {
          let v = x[i + k * si]
          let current = out[o + k * so].primal
          if (isMax ? v.primal > current : v.primal < current) || v.primal.isNaN { out[o + k * so] = v }
        }
      }
      if T.self != Double.self {
        // Forward mode: tied elements share the tangent equally, as the reverse rule shares the cotangent. Each tie
        // adds 1 to the count's primal and its own tangent to the count's tangent.
        let ties = scratch
        ties.update(repeating: T(0), count: outputCount)
        map.forEachRow { n, i, o, _, _, si, so, _, _ in
          for k in 0..<n where x[i + k * si].primal == out[o + k * so].primal {
            ties[o + k * so] += T(1) + (x[i + k * si] - T(out[o + k * so].primal))
          }
        }
        for j in 0..<outputCount where ties[j].primal > 1 {
          out[j] = T(out[j].primal) + (ties[j] - T(ties[j].primal)) / T(ties[j].primal)
        }
      }
    case .prod:
      out.update(repeating: T(1), count: outputCount)
      map.forEachRow { n, i, o, _, _, si, so, _, _ in
        for k in 0..<n { out[o + k * so] = out[o + k * so] * x[i + k * si] }
      }
    case .logsumexp:
      // out = m + log(Σ exp(x - m)) with m the (constant) maximum, so no term overflows.
      let m = scratch
      m.update(repeating: T(-.infinity), count: outputCount)
      map.forEachRow { n, i, o, _, _, si, so, _, _ in
        for k in 0..<n {
          let v = x[i + k * si].primal
          if v > m[o + k * so].primal || v.isNaN { m[o + k * so] = T(v) }
        }
      }
      out.update(repeating: T(0), count: outputCount)
      map.forEachRow { n, i, o, _, _, si, so, _, _ in
        for k in 0..<n where m[o + k * so].primal.isFinite {
          out[o + k * so] += T.unary(.exp, x[i + k * si] - m[o + k * so])
        }
      }
      for j in 0..<outputCount {
        out[j] = m[j].primal.isFinite ? m[j] + T.unary(.log, out[j]) : m[j]
      }
    default:
      preconditionFailure("\(op.name) is not a reduction")
    }
  }

  static func reduceReverse<T: ADScalar>(
    _ op: OpCode, _ map: StridedMap, _ outputCount: Int, _ x: UnsafeMutablePointer<T>,
    _ out: UnsafeMutablePointer<T>, _ gx: UnsafeMutablePointer<T>, _ gout: UnsafeMutablePointer<T>,
    _ scratch: UnsafeMutablePointer<T>
  ) {
    switch op {
    case .sum:
      map.forEachRow { n, i, o, _, _, si, so, _, _ in
        for k in 0..<n { gx[i + k * si] += gout[o + k * so] }
      }
    case .max, .min:
      let ties = scratch
      ties.update(repeating: T(0), count: outputCount)
      map.forEachRow { n, i, o, _, _, si, so, _, _ in
        for k in 0..<n where x[i + k * si].primal == out[o + k * so].primal { ties[o + k * so] += T(1) }
      }
      map.forEachRow { n, i, o, _, _, si, so, _, _ in
        for k in 0..<n where x[i + k * si].primal == out[o + k * so].primal {
          gx[i + k * si] += T.chain(gout[o + k * so], T(1 / ties[o + k * so].primal))
        }
      }
    case .prod:
      // The product of the other elements, without dividing by zero: count the zeros of each group and keep the
      // product of its nonzero elements. The count also sums the zero elements themselves (each adds 0 to the
      // primal): for dual numbers that keeps their tangents, which the product of the others depends on when it
      // contains exactly one zero (second derivatives, through forward over reverse).
      let zeros = scratch
      let nonzero = scratch + outputCount
      zeros.update(repeating: T(0), count: outputCount)
      nonzero.update(repeating: T(1), count: outputCount)
      map.forEachRow { n, i, o, _, _, si, so, _, _ in
        for k in 0..<n {
          let v = x[i + k * si]
          if v.primal == 0 { zeros[o + k * so] += T(1) + v } else { nonzero[o + k * so] = nonzero[o + k * so] * v }
        }
      }
      map.forEachRow { n, i, o, _, _, si, so, _, _ in
        for k in 0..<n {
          let g = gout[o + k * so]
          if g.isZero { continue }
          let v = x[i + k * si]
          let z = zeros[o + k * so].primal
          // The zero elements other than this one, as a number whose primal is 0 (a single zero, with its tangent).
          let otherZero = zeros[o + k * so] - T(z) - (v.primal == 0 ? v : T(0))
          let others: T
          if z == 0 {
            others = nonzero[o + k * so] / v
          } else if z == 1 {
            others = v.primal == 0 ? nonzero[o + k * so] : T.chain(nonzero[o + k * so] / v, otherZero)
          } else {
            others = z == 2 && v.primal == 0 ? T.chain(nonzero[o + k * so], otherZero) : T(0)
          }
          gx[i + k * si] += T.chain(g, others)
        }
      }
    case .logsumexp:
      map.forEachRow { n, i, o, _, _, si, so, _, _ in
        for k in 0..<n {
          let g = gout[o + k * so]
          if g.isZero { continue }
          gx[i + k * si] += T.chain(g, T.unary(.exp, x[i + k * si] - out[o + k * so]))
        }
      }
    default:
      preconditionFailure("\(op.name) is not a reduction")
    }
  }

  // MARK: softmax and log_softmax

  static func normalizeForward<T: ADScalar>(
    _ op: OpCode, _ map: StridedMap, _ reducedCount: Int, _ x: UnsafeMutablePointer<T>,
    _ out: UnsafeMutablePointer<T>, _ scratch: UnsafeMutablePointer<T>
  ) {
    let m = scratch
    let total = scratch + reducedCount
    m.update(repeating: T(-.infinity), count: reducedCount)
    total.update(repeating: T(0), count: reducedCount)
    map.forEachRow { n, i, r, _, _, si, sr, _, _ in
      for k in 0..<n {
        let v = x[i + k * si].primal
        if v > m[r + k * sr].primal || v.isNaN { m[r + k * sr] = T(v) }
      }
    }
    map.forEachRow { n, i, r, _, _, si, sr, _, _ in
      for k in 0..<n {
        let e = T.unary(.exp, x[i + k * si] - m[r + k * sr])
        out[i + k * si] = e
        total[r + k * sr] += e
      }
    }
    map.forEachRow { n, i, r, _, _, si, sr, _, _ in
      for k in 0..<n {
        if op == .softmax {
          out[i + k * si] = out[i + k * si] / total[r + k * sr]
        } else {
          out[i + k * si] = x[i + k * si] - m[r + k * sr] - T.unary(.log, total[r + k * sr])
        }
      }
    }
  }

  static func normalizeReverse<T: ADScalar>(
    _ op: OpCode, _ map: StridedMap, _ reducedCount: Int, _ out: UnsafeMutablePointer<T>,
    _ gx: UnsafeMutablePointer<T>, _ gout: UnsafeMutablePointer<T>, _ scratch: UnsafeMutablePointer<T>
  ) {
    // softmax: gx = y ⊙ (g - Σ g⊙y); log_softmax: gx = g - softmax ⊙ Σ g.
    let dot = scratch
    dot.update(repeating: T(0), count: reducedCount)
    map.forEachRow { n, i, r, _, _, si, sr, _, _ in
      for k in 0..<n {
        let g = gout[i + k * si]
        dot[r + k * sr] += op == .softmax ? T.chain(g, out[i + k * si]) : g
      }
    }
    map.forEachRow { n, i, r, _, _, si, sr, _, _ in
      for k in 0..<n {
        let g = gout[i + k * si]
        let d = dot[r + k * sr]
        if g.isZero && d.isZero { continue }
        if op == .softmax {
          gx[i + k * si] += T.chain(out[i + k * si], g - d)
        } else {
          gx[i + k * si] += g - T.chain(d, T.unary(.exp, out[i + k * si]))
        }
      }
    }
  }
}
