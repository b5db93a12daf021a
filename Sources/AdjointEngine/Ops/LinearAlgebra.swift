import CBLAS

// Matrix products: forward C = A·B, reverse gA += gC·Bᵀ and gB += Aᵀ·gC, batched over broadcast leading axes.
// Doubles go through OpenBLAS's dgemm; a reverse product whose other factor holds a non-finite value, and every
// product of dual numbers, runs a plain loop that honours the zero rule (0·∞ contributes 0).

/// One dgemm call's operands, which may run as parts over disjoint rows of C on several threads at once.
private struct BLASProduct: @unchecked Sendable {
  let transA: Bool
  let transB: Bool
  let m: Int
  let n: Int
  let k: Int
  let a: UnsafeMutablePointer<Double>
  let b: UnsafeMutablePointer<Double>
  let c: UnsafeMutablePointer<Double>
  let accumulate: Bool

  /// Computes rows `rows` of C: those rows of `op(A)` times all of `op(B)`.
  func run(rows: Range<Int>) {
    guard !rows.isEmpty else { return }
    // Row i of op(A) starts at a + i·k, or (transposed: column i of A, m wide) at a + i.
    let first = transA ? a + rows.lowerBound : a + rows.lowerBound * k
    cblas_dgemm(
      CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, Int32(rows.count),
      Int32(n), Int32(k), 1, first, Int32(transA ? m : k), b, Int32(transB ? k : n), accumulate ? 1 : 0,
      c + rows.lowerBound * n, Int32(n))
  }
}

extension Executor {
  static func matmulForward<T: ADScalar>(
    _ plan: MatmulPlan, _ a: UnsafeMutablePointer<T>, _ b: UnsafeMutablePointer<T>, _ out: UnsafeMutablePointer<T>,
    parallel: ParallelFor? = nil
  ) {
    plan.batch.forEachRow { count, o, x, y, _, so, sx, sy, _ in
      for t in 0..<count {
        gemm(
          transA: false, transB: false, m: plan.m, n: plan.n, k: plan.k, a + x + t * sx, b + y + t * sy,
          out + o + t * so, accumulate: false, chainRule: false, parallel: parallel)
      }
    }
  }

  /// The reverse rule of `C = A·B`, given also the forward value `C`. With `store`, it writes that operand's adjoint
  /// instead of adding to it (see ``adjointStorers(code:plans:slots:outputs:fusedAway:groups:)``).
  ///
  /// The zero rule needs to know whether the factors hold an infinity or a NaN. `C` answers for both at the cost of
  /// reading m×n numbers instead of m×k + k×n: a non-finite element of A spoils its whole row of C (∞·0 and NaN·y
  /// are NaN, ∞·y is ±∞, and a sum with such a term stays non-finite), one of B its whole column, so a finite C
  /// (computed by the forward rule, without the zero rule) proves both factors finite. Only a non-finite C sends the
  /// check back to the factors themselves.
  static func matmulReverse<T: ADScalar>(
    _ plan: MatmulPlan, _ a: UnsafeMutablePointer<T>, _ b: UnsafeMutablePointer<T>, _ out: UnsafeMutablePointer<T>,
    _ gout: UnsafeMutablePointer<T>, _ ga: UnsafeMutablePointer<T>?, _ gb: UnsafeMutablePointer<T>?,
    store: (a: Bool, b: Bool) = (false, false), parallel: ParallelFor? = nil
  ) {
    let (m, n, k) = (plan.m, plan.n, plan.k)
    plan.batch.forEachRow { count, o, x, y, _, so, sx, sy, _ in
      for t in 0..<count {
        let (a, b, c, gc) = (a + x + t * sx, b + y + t * sy, out + o + t * so, gout + o + t * so)
        // Only products of doubles go to BLAS; the others honour the zero rule term by term and need no check.
        let factors = T.self == Double.self && m * n * k > 0 && allFinite(c, m * n)
        let cotangent = T.self == Double.self && m * n * k > 0 && allFinite(gc, m * n)
        if let ga {
          // gA (m×k) += gC (m×n) · Bᵀ (n×k)
          gemm(
            transA: false, transB: true, m: m, n: k, k: n, gc, b, ga + x + t * sx, accumulate: !store.a,
            chainRule: true, finite: (cotangent, factors), parallel: parallel)
        }
        if let gb {
          // gB (k×n) += Aᵀ (k×m) · gC (m×n)
          gemm(
            transA: true, transB: false, m: k, n: n, k: m, a, gc, gb + y + t * sy, accumulate: !store.b,
            chainRule: true, finite: (factors, cotangent), parallel: parallel)
        }
      }
    }
  }

  /// Per slot, the instruction whose reverse rule may store the slot's adjoint instead of accumulating into it, or
  /// -1. The reverse sweep visits instructions last to first, so a slot's last reader is the first to write its
  /// adjoint; when that reader writes all of it exactly once, the workspace need not zero it first. Such readers are
  /// a single matrix product (no batch; its gemm runs with β = 0), and an elementwise unary or binary op outside the
  /// fused runs whose operand is not broadcast (sign and the comparisons, which have no gradient, are not). The
  /// reader must read the slot once; outputs (seeded before the sweep) and slots of fused runs are left out.
  static func adjointStorers(
    code: [Program.Instruction], plans: [Plan], slots: [Program.Slot], outputs: [Bool], fusedAway: [Bool],
    groups: [FusedGroup]
  ) -> [Int32] {
    var lastReader = [Int32](repeating: -1, count: slots.count)
    for (index, instruction) in code.enumerated() {
      if case .concat(let parts) = plans[Int(instruction.plan)] {
        for part in parts { lastReader[part.slot] = Int32(index) }
      } else {
        for operand in [instruction.a, instruction.b, instruction.c] where operand >= 0 {
          lastReader[Int(operand)] = Int32(index)
        }
      }
    }
    var fused = [Bool](repeating: false, count: code.count)
    for group in groups {
      for index in group.first...group.last { fused[index] = true }
    }
    var storers = [Int32](repeating: -1, count: slots.count)
    for (slot, reader) in lastReader.enumerated() where reader >= 0 && !outputs[slot] && !fusedAway[slot] {
      let instruction = code[Int(reader)]
      guard instruction.a != instruction.b, instruction.c < 0, !fused[Int(reader)] else { continue }
      switch instruction.op.family {
      case .matmul:
        guard case .matmul(let plan) = plans[Int(instruction.plan)], plan.batch.count == 1 else { continue }
      case .unary:
        guard instruction.op != .sign else { continue }
      case .binary:
        guard slots[slot].count == slots[Int(instruction.out)].count else { continue }
      default:
        continue
      }
      storers[slot] = reader
    }
    return storers
  }

  /// Row-major `C (m×n) = op(A) · op(B)` (or `+=` when accumulating), where `op(A)` is m×k and `op(B)` is k×n.
  /// With `chainRule`, every term with a zero factor contributes exactly zero; `finite` says which factors are
  /// already known to hold no infinity and no NaN (the others are checked).
  ///
  /// Given `parallel`, a product of doubles of at least ``parallelProductSize`` multiply-adds runs as two halves of
  /// C's rows through it (at once, when it runs them on two threads). Its result is then the same whichever threads
  /// run the halves, but may differ in the last bits from the unsplit product (BLAS blocks the halves differently).
  static func gemm<T: ADScalar>(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, _ a: UnsafeMutablePointer<T>, _ b: UnsafeMutablePointer<T>,
    _ c: UnsafeMutablePointer<T>, accumulate: Bool, chainRule: Bool, finite: (a: Bool, b: Bool) = (false, false),
    parallel: ParallelFor? = nil
  ) {
    if m == 0 || n == 0 { return }
    _ = blasSingleThreaded
    if T.self == Double.self, m * n * k > 0,
      !chainRule || ((finite.a || allFinite(a, m * k)) && (finite.b || allFinite(b, k * n)))
    {
      let product = BLASProduct(
        transA: transA, transB: transB, m: m, n: n, k: k, a: doubles(a), b: doubles(b), c: doubles(c),
        accumulate: accumulate)
      if let parallel, m >= 2 * parallelMinimumRows, m * n * k >= parallelProductSize {
        let half = m / 2
        parallel(2) { part in part == 0 ? product.run(rows: 0..<half) : product.run(rows: half..<m) }
      } else {
        product.run(rows: 0..<m)
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

  /// The multiply-adds from which a product splits in two (2^22: about 0.2 ms at the 44–53 GFLOPS that S3's products
  /// reach here, by profile): below that, waking a second thread costs more than it saves. Each half packs all of `op(B)`: run one after the other, the
  /// halves of W3's products took 3–4% longer than the whole products.
  static let parallelProductSize = 1 << 22

  /// The fewest rows of C a half may have.
  static let parallelMinimumRows = 16

  @inline(__always)
  static func allFinite<T: ADScalar>(_ p: UnsafeMutablePointer<T>, _ count: Int) -> Bool {
    if T.self == Double.self {
      if let finite = LibM.allFinite(count: count, doubles(p)) { return finite }
      // x - x is 0 for a finite x and NaN for an infinity or a NaN, so the sum of the differences is 0 exactly when
      // every element is finite (it never overflows). Eight lanes at a time, without a branch, so that it vectorises.
      let raw = UnsafeRawPointer(p)
      var lanes = SIMD8<Double>()
      var k = 0
      while k + 8 <= count {
        let v = raw.loadUnaligned(fromByteOffset: k * MemoryLayout<Double>.stride, as: SIMD8<Double>.self)
        lanes += v - v
        k += 8
      }
      var total = lanes.sum()
      let q = doubles(p)
      while k < count {
        total += q[k] - q[k]
        k += 1
      }
      return total == 0
    }
    var finite = true
    for i in 0..<count where !p[i].primal.isFinite { finite = false }
    return finite
  }
}
