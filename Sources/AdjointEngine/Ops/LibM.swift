import CMath

/// The one libm entry point the engine calls directly; everything else goes through swift-numerics.
enum LibM {
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
