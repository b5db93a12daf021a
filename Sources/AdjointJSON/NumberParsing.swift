// Decimal-to-double conversion for JSON number literals.
//
// Three tiers, all correctly rounded (round-half-to-even, like strtod):
// 1. Clinger's fast path: a mantissa w <= 2^53 and a decimal exponent q with |q| <= 22 convert exactly as
//    Double(w) * 10^q or Double(w) / 10^-q (both operands are exact doubles, so one rounding).
// 2. The Eisel-Lemire algorithm for any mantissa of at most 19 significant digits, using the 128-bit table of
//    powers of five in PowersOfFive.swift. This follows fast_float (Lemire, "Number Parsing at a Gigabyte per
//    Second", 2021), which proves with Mushtak ("Fast Number Parsing Without Fallback", 2023) that the 128-bit
//    product always suffices for 19 digits, so no fallback is needed in this tier.
// 3. More than 19 significant digits (never printed by a shortest-round-trip printer): the standard library's
//    `Double(String)`, which is correctly rounded, on the literal's text.

/// Exact powers of ten 10^0 ... 10^22 (all exactly representable as doubles).
private let exactPowersOfTen: [Double] = [
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
  1e20, 1e21, 1e22,
]

@inline(__always)
private func isDigit(_ c: UInt8) -> Bool { c &- 0x30 < 10 }

/// Reads the eight bytes at `p` (all of which must be inside the buffer) and, when they are all ASCII digits,
/// returns their value (the first byte is the most significant digit), else `nil` (fast_float's SWAR trick).
@inline(__always)
private func eightDigits(_ p: UnsafePointer<UInt8>) -> UInt64? {
  let v = UInt64(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt64.self))
  // Every byte is 0x30...0x39: the high nibble is 3, and adding 6 does not carry into it.
  guard
    (v & 0xF0F0_F0F0_F0F0_F0F0) | (((v &+ 0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4)
      == 0x3333_3333_3333_3333
  else { return nil }
  var x = v &- 0x3030_3030_3030_3030
  x = (x &* 10) &+ (x >> 8)  // pairs of digits in the even bytes
  let a = (x & 0x0000_00FF_0000_00FF) &* (100 &+ (1_000_000 << 32))
  let b = ((x >> 16) & 0x0000_00FF_0000_00FF) &* (1 &+ (10_000 << 32))
  return (a &+ b) >> 32
}

/// Scans the JSON number that starts at `pos` (which must be `< count`, at a `-` or a digit) and converts it.
/// On success, `pos` is just past the literal.
///
/// Never reads at or past `count`.
func scanNumber(_ b: UnsafePointer<UInt8>, _ count: Int, _ pos: inout Int) throws(JSONError) -> Double {
  let start = pos
  if let d = readNumber(b, count, &pos) { return d }
  throw numberError(b, count, start)
}

/// Why the literal at `start` (a `-` or a digit) is not one that `readNumber` reads.
@inline(never)
func numberError(_ b: UnsafePointer<UInt8>, _ count: Int, _ start: Int) -> JSONError {
  var p = start
  if b[p] == UInt8(ascii: "-") {
    p += 1
    guard p < count, isDigit(b[p]) else {
      return JSONError(kind: .syntax, offset: p, message: "expected a digit after '-'")
    }
  }
  if b[p] == UInt8(ascii: "0") && p + 1 < count && isDigit(b[p + 1]) {
    return JSONError(kind: .syntax, offset: p, message: "leading zeros are not allowed in numbers")
  }
  while p < count && isDigit(b[p]) { p += 1 }
  if p < count && b[p] == UInt8(ascii: ".") {
    p += 1
    let fracStart = p
    while p < count && isDigit(b[p]) { p += 1 }
    if p == fracStart {
      return JSONError(kind: .syntax, offset: p, message: "expected a digit after the decimal point")
    }
  }
  if p < count && (b[p] | 0x20) == UInt8(ascii: "e") {
    p += 1
    if p < count && (b[p] == UInt8(ascii: "+") || b[p] == UInt8(ascii: "-")) { p += 1 }
    let expStart = p
    while p < count && isDigit(b[p]) { p += 1 }
    if p == expStart {
      return JSONError(kind: .syntax, offset: p, message: "expected a digit in the exponent")
    }
  }
  // Well formed, so out of range; the standard library's reading (of a literal with more than 19 digits) says so
  // too, or says what else is wrong.
  do {
    _ = try slowNumber(b, start, p)
  } catch {
    return error
  }
  return JSONError(kind: .numberOutOfRange, offset: start, message: "number out of range")
}

/// Reads the JSON number that starts at `pos` (which must be `< count`, at a `-` or a digit) and converts it; `pos`
/// is then just past the literal. `nil` (with `pos` anywhere) when the literal is invalid or out of range:
/// `numberError` then tells why.
///
/// Never reads at or past `count`. It does not throw, so that it inlines into a small caller (a loop over the
/// numbers of an array): a call per number, with its saved registers, costs about a seventh of the parse of a
/// matrix of 17-digit numbers.
@inline(__always)
func readNumber(_ b: UnsafePointer<UInt8>, _ count: Int, _ pos: inout Int) -> Double? {
  let start = pos
  var p = pos
  var negative = false
  if b[p] == UInt8(ascii: "-") {
    negative = true
    p += 1
    guard p < count, isDigit(b[p]) else { return nil }
  }
  let intStart = p
  var w: UInt64 = 0
  if b[p] == UInt8(ascii: "0") {
    p += 1
    if p < count && isDigit(b[p]) { return nil }
  } else if p &+ 1 < count && b[p &+ 1] == UInt8(ascii: ".") {
    // One digit before the point (the common form of data near 1): no eight-digit attempt.
    w = UInt64(b[p] &- 0x30)
    p &+= 1
  } else {
    while p &+ 8 <= count, let eight = eightDigits(b + p) {
      w = w &* 100_000_000 &+ eight
      p &+= 8
    }
    while p < count {
      let d = b[p] &- 0x30
      if d >= 10 { break }
      w = w &* 10 &+ UInt64(d)
      p += 1
    }
  }
  var digitCount = p - intStart
  var exp10 = 0
  if p < count && b[p] == UInt8(ascii: ".") {
    p += 1
    let fracStart = p
    while p &+ 8 <= count, let eight = eightDigits(b + p) {
      w = w &* 100_000_000 &+ eight
      p &+= 8
    }
    while p < count {
      let d = b[p] &- 0x30
      if d >= 10 { break }
      w = w &* 10 &+ UInt64(d)
      p += 1
    }
    let fracDigits = p - fracStart
    if fracDigits == 0 { return nil }
    digitCount += fracDigits
    exp10 = -fracDigits
  }
  if p < count && (b[p] | 0x20) == UInt8(ascii: "e") {
    p += 1
    var expNegative = false
    if p < count && (b[p] == UInt8(ascii: "+") || b[p] == UInt8(ascii: "-")) {
      expNegative = b[p] == UInt8(ascii: "-")
      p += 1
    }
    let expStart = p
    var e = 0
    while p < count {
      let d = b[p] &- 0x30
      if d >= 10 { break }
      if e < 1_000_000 { e = e * 10 + Int(d) }  // saturate: anything this large is 0 or out of range
      p += 1
    }
    if p == expStart { return nil }
    exp10 += expNegative ? -e : e
  }
  pos = p
  if digitCount > 19 {
    // Leading zeros ("0.000123") are not significant and did not overflow `w`.
    var significant = digitCount
    var q = intStart
    while q < p {
      let c = b[q]
      if c == UInt8(ascii: "0") {
        significant -= 1
      } else if c != UInt8(ascii: ".") {
        break
      }
      q += 1
    }
    if significant > 19 {
      return try? slowNumber(b, start, p)
    }
  }
  return decimalToDouble(w, exp10, negative)
}

/// The correctly rounded `(negative ? -1 : 1) * w * 10^exp10`, or `nil` when it overflows to infinity.
@inline(__always)
func decimalToDouble(_ w: UInt64, _ exp10: Int, _ negative: Bool) -> Double? {
  if exp10 >= -22 && exp10 <= 22 && w <= 1 << 53 {
    var d = Double(w)
    exactPowersOfTen.withUnsafeBufferPointer { pow10 in
      if exp10 < 0 { d /= pow10[-exp10] } else { d *= pow10[exp10] }
    }
    return negative ? -d : d
  }
  return eiselLemire(w, exp10, negative)
}

/// The Eisel-Lemire algorithm (as in fast_float's `compute_float`); zero for `w == 0`.
///
/// Not inlined: `decimalToDouble`'s fast path stays small enough to inline where numbers are read.
@inline(never)
private func eiselLemire(_ w: UInt64, _ q: Int, _ negative: Bool) -> Double? {
  if w == 0 { return negative ? -0.0 : 0.0 }
  let sign: UInt64 = negative ? 1 << 63 : 0
  if q < -342 { return Double(bitPattern: sign) }
  if q > 308 { return nil }
  let lz = w.leadingZeroBitCount
  let ws = w << UInt64(lz)
  let index = 2 * (q + 342)
  let (hi, lo) = powersOfFive128.withUnsafeBufferPointer { table in
    var (hi, lo) = ws.multipliedFullWidth(by: table[index])
    if hi & 0x1FF == 0x1FF {
      let second = ws.multipliedFullWidth(by: table[index + 1]).high
      let (sum, overflow) = lo.addingReportingOverflow(second)
      lo = sum
      if overflow { hi &+= 1 }
    }
    return (hi, lo)
  }
  let upperbit = Int(hi >> 63)
  let shift = UInt64(upperbit + 64 - 52 - 3)
  var mantissa = hi >> shift
  var power2 = (((152_170 + 65_536) * q) >> 16) + 63 + upperbit - lz + 1023
  if power2 <= 0 {
    // Subnormal (or zero).
    if -power2 + 1 >= 64 { return Double(bitPattern: sign) }
    mantissa >>= UInt64(-power2 + 1)
    mantissa += mantissa & 1
    mantissa >>= 1
    power2 = mantissa < (1 << 52) ? 0 : 1
    return Double(bitPattern: sign | mantissa | (UInt64(power2) << 52))
  }
  // Exactly halfway between two doubles: round to even instead of up.
  if lo <= 1 && q >= -4 && q <= 23 && mantissa & 3 == 1 && (mantissa << shift) == hi {
    mantissa &= ~1
  }
  mantissa += mantissa & 1
  mantissa >>= 1
  if mantissa >= (2 << 52) {
    mantissa = 1 << 52
    power2 += 1
  }
  mantissa &= ~(1 << 52)
  if power2 >= 0x7FF { return nil }
  return Double(bitPattern: sign | mantissa | (UInt64(power2) << 52))
}

/// The slow path for literals with more than 19 significant digits.
@inline(never)
private func slowNumber(_ b: UnsafePointer<UInt8>, _ start: Int, _ end: Int) throws(JSONError) -> Double {
  let text = String(decoding: UnsafeBufferPointer(start: b + start, count: end - start), as: UTF8.self)
  guard let d = Double(text) else {
    throw JSONError(kind: .syntax, offset: start, message: "invalid number")
  }
  guard d.isFinite else {
    throw JSONError(kind: .numberOutOfRange, offset: start, message: "number out of range")
  }
  return d
}
