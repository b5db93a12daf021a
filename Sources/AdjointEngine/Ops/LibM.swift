import CMath

/// The libm entry point the engine calls directly (everything else goes through swift-numerics), and the C array
/// kernels built for instruction sets that Swift cannot target one function at a time.
enum LibM {
  /// The widest vector kernels this machine runs: 2 for AVX-512, 1 for AVX2, 0 for none (then `tanh` declines).
  static let vectorLevel = Int(adjoint_vector_level())

  /// `out[i] = tanh(x[i])` for `i` in `0..<count`, bit for bit as ``Tanh/value(_:)``, with AVX2 or AVX-512 kernels.
  ///
  /// - Parameter level: the kernels to use, at most ``vectorLevel`` (tests pick each in turn).
  /// - Returns: false, having written nothing, when `level` has no kernels or when `x` and `out` overlap (the
  ///   kernels read and write through `restrict` pointers): the caller loops itself.
  @inline(__always)
  static func tanh(
    count: Int, _ x: UnsafePointer<Double>, _ out: UnsafeMutablePointer<Double>, level: Int = vectorLevel
  ) -> Bool {
    precondition(level <= vectorLevel, "this machine has no vector kernels of level \(level)")
    guard UnsafePointer(out) + count <= x || x + count <= UnsafePointer(out) else { return false }
    return adjoint_tanh_array(Int32(level), count, x, out) != 0
  }

  /// Whether no element of `x[0..<count]` is an infinity or a NaN, from the AVX2 or AVX-512 kernels.
  ///
  /// - Returns: nil when `level` has no kernels: the caller checks itself.
  @inline(__always)
  static func allFinite(count: Int, _ x: UnsafePointer<Double>, level: Int = vectorLevel) -> Bool? {
    precondition(level <= vectorLevel, "this machine has no vector kernels of level \(level)")
    let result = adjoint_all_finite(Int32(level), count, x)
    return result < 0 ? nil : result == 1
  }

  /// `(sin x, cos x)` for the price of about one of them: the forward sweep of a scalar program keeps `cos x` for the
  /// reverse sweep of `sin`.
  @inline(__always)
  static func sinAndCosine(_ x: Double) -> (sin: Double, cos: Double) {
    var s = 0.0
    var c = 0.0
    adjoint_sincos(x, &s, &c)
    return (s, c)
  }
}
