// tanh without a libm call: glibc's tanh costs 10 to 20 ns an element (an expm1 call behind a branch), which made it
// the largest cost of an MLP's forward pass after its matrix products. This one is branch-free (both formulas are
// computed and one is selected), so a loop over an array vectorises, and stays within about 1.6 ulp of the correctly
// rounded result. The formulas and coefficients are Cephes' (Moshier): a rational function for |x| < 0.625, and
// 1 - 2/(e^(2|x|) + 1) above, with e^(2|x|) from Cephes' Padé form of exp folded into that one division. The array
// kernels of Sources/CMath/shim.h (AVX2 and AVX-512, which Swift cannot target one function at a time) compute the
// same formula operation for operation, without fused multiply-adds, so every path gives the same bits.

/// A branch-free, vectorisable hyperbolic tangent for doubles.
enum Tanh {
  /// Below this magnitude tanh(x) rounds to x (tanh(x) = x - x³/3 + …, and x²/3 < 2⁻⁵⁴ there).
  static let identityBound = 0x1p-27
  /// The boundary between the rational form and the exponential form.
  static let rationalBound = 0.625
  /// Beyond this magnitude tanh(x) rounds to ±1: the exponential form is evaluated at most here.
  static let saturationBound = 22.0

  /// tanh(x): odd, ±0 at ±0, ±1 at ±∞, NaN at NaN.
  @inline(__always)
  static func value(_ x: Double) -> Double {
    // tanh|x| = a + b/c for both forms, so that each element costs one division: with z = x², the rational form is
    // |x| + (|x|·z·P(z))/Q(z) for |x| < 0.625, and the exponential form is 1 + (-2(Q - rP))/(2^n (Q + rP) + Q - rP).
    let m = x.magnitude
    let z = m * m
    let p = (-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z - 1.61468768441708447952e3
    let q = ((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z + 4.84406305325125486048e3
    // The exponential form: tanh|x| = 1 - 2/(e^y + 1) with y = 2|x| clamped to 44 (an infinity saturates; a NaN
    // stays NaN, as min keeps its first argument when the comparison fails). e^y = 2^n·e^r with n = round(y/ln 2)
    // and |r| ≤ ln(2)/2; e^r = (Q + rP)/(Q - rP) with P, Q even polynomials of r (Cephes' exp).
    let y = 2 * Swift.min(m, saturationBound)
    // Round y/ln 2 to an integer by adding 1.5·2^52: the sum's low bits then hold n, and subtracting gives n exactly.
    let shifted = y * 1.4426950408889634073599 + 0x1.8p52
    let n = shifted - 0x1.8p52
    let r = (y - n * 6.93145751953125e-1) - n * 1.42860682030941723212e-6
    let rr = r * r
    let rp = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr + 9.99999999999999999910e-1)
    let rq =
      ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr + 2.27265548208155028766e-1) * rr
      + 2.00000000000000000009e0
    // 2^n from n's bits: 0 < n ≤ 64, so (bits + 1023) << 52 is the biased exponent of 2^n (the shift drops the
    // bits of 1.5·2^52).
    let scale = Double(bitPattern: (shifted.bitPattern &+ 1023) &<< 52)
    let d = rq - rp
    let rational = m < rationalBound
    let a = rational ? m : 1
    let b = rational ? m * (z * p) : -2 * d
    let c = rational ? q : scale * (rq + rp) + d
    let t = Double(signOf: x, magnitudeOf: a + b / c)
    return m < identityBound ? x : t
  }

  /// `out[i] = tanh(x[i])` for `i` in `0..<n`, with the C kernels of ``LibM/tanh(count:_:_:level:)`` where they run.
  static func forward(_ n: Int, _ x: UnsafePointer<Double>, _ out: UnsafeMutablePointer<Double>) {
    if LibM.tanh(count: n, x, out) { return }
    for i in 0..<n { out[i] = value(x[i]) }
  }
}
