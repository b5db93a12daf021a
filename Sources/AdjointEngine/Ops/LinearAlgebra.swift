import CBLAS

// Matrix products: forward C = A·B, reverse gA += gC·Bᵀ and gB += Aᵀ·gC, batched over broadcast leading axes.
// Doubles go through OpenBLAS's dgemm; a reverse product whose other factor holds a non-finite value, and every
// product of dual numbers, runs a plain loop that honours the zero rule (0·∞ contributes 0).

extension Executor {
  static func matmulForward<T: ADScalar>(
    _ plan: MatmulPlan, _ a: UnsafeMutablePointer<T>, _ b: UnsafeMutablePointer<T>, _ out: UnsafeMutablePointer<T>
  ) {
    plan.batch.forEachRow { count, o, x, y, _, so, sx, sy, _ in
      for t in 0..<count {
        gemm(
          transA: false, transB: false, m: plan.m, n: plan.n, k: plan.k, a + x + t * sx, b + y + t * sy,
          out + o + t * so, accumulate: false, chainRule: false)
      }
    }
  }

  static func matmulReverse<T: ADScalar>(
    _ plan: MatmulPlan, _ a: UnsafeMutablePointer<T>, _ b: UnsafeMutablePointer<T>, _ gout: UnsafeMutablePointer<T>,
    _ ga: UnsafeMutablePointer<T>?, _ gb: UnsafeMutablePointer<T>?
  ) {
    plan.batch.forEachRow { count, o, x, y, _, so, sx, sy, _ in
      for t in 0..<count {
        if let ga {
          // gA (m×k) += gC (m×n) · Bᵀ (n×k)
          gemm(
            transA: false, transB: true, m: plan.m, n: plan.k, k: plan.n, gout + o + t * so, b + y + t * sy,
            ga + x + t * sx, accumulate: true, chainRule: true)
        }
        if let gb {
          // gB (k×n) += Aᵀ (k×m) · gC (m×n)
          gemm(
            transA: true, transB: false, m: plan.k, n: plan.n, k: plan.m, a + x + t * sx, gout + o + t * so,
            gb + y + t * sy, accumulate: true, chainRule: true)
        }
      }
    }
  }

  /// Row-major `C (m×n) = op(A) · op(B)` (or `+=` when accumulating), where `op(A)` is m×k and `op(B)` is k×n.
  /// With `chainRule`, every term with a zero factor contributes exactly zero.
  static func gemm<T: ADScalar>(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, _ a: UnsafeMutablePointer<T>, _ b: UnsafeMutablePointer<T>,
    _ c: UnsafeMutablePointer<T>, accumulate: Bool, chainRule: Bool
  ) {
    if m == 0 || n == 0 { return }
    _ = blasSingleThreaded
    if T.self == Double.self, m * n * k > 0,
      !chainRule || (allFinite(a, m * k) && allFinite(b, k * n))
    {
      a.withMemoryRebound(to: Double.self, capacity: m * k) { a in
        b.withMemoryRebound(to: Double.self, capacity: k * n) { b in
          c.withMemoryRebound(to: Double.self, capacity: m * n) { c in
            cblas_dgemm(
              CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, Int32(m),
              Int32(n), Int32(k), 1, a, Int32(transA ? m : k), b, Int32(transB ? k : n), accumulate ? 1 : 0, c,
              Int32(n))
          }
        }
      }
      return
    }
    if !accumulate { c.update(repeating: T(0), count: m * n) }
    for i in 0..<m {
      for l in 0..<k {
        let left = transA ? a[l * m + i] : a[i * k + l]
        if chainRule && left.isZero { continue }
        for j in 0..<n {
          let right = transB ? b[j * k + l] : b[l * n + j]
          c[i * n + j] += chainRule ? T.chain(left, right) : left * right
        }
      }
    }
  }

  /// OpenBLAS runs each product on the calling thread: the service's workers are the parallelism.
  static let blasSingleThreaded: Void = openblas_set_num_threads(1)

  @inline(__always)
  static func allFinite<T: ADScalar>(_ p: UnsafeMutablePointer<T>, _ count: Int) -> Bool {
    var finite = true
    for i in 0..<count where !p[i].primal.isFinite { finite = false }
    return finite
  }
}
