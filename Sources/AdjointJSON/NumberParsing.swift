// Decimal-to-double conversion for JSON number literals.
//
// Two tiers, both correctly rounded (round-half-to-even, like strtod):
// 1. The Eisel-Lemire algorithm for any mantissa of at most 19 significant digits, using the 128-bit table of
//    powers of five in PowersOfFive.swift. This follows fast_float (Lemire, "Number Parsing at a Gigabyte per
//    Second", 2021), which proves with Mushtak ("Fast Number Parsing Without Fallback", 2023) that the 128-bit
//    product always suffices for 19 digits, so no fallback is needed in this tier. fast_float first tries
//    Clinger's fast path (a mantissa of at most 2^53 and |q| <= 22, as `Double(w) / 10^-q`); here it is left out:
//    in data printed shortest-round-trip, about half the numbers have 17 digits and miss it, and the mispredicted
//    branch between the two costs more than Eisel-Lemire for all (a matrix of such numbers parses 8% faster).
// 2. More than 19 significant digits (never printed by a shortest-round-trip printer): the standard library's
//    `Double(String)`, which is correctly rounded, on the literal's text.

import CDigits

@inline(__always)
private func isDigit(_ c: UInt8) -> Bool { c &- 0x30 < 10 }

/// Powers of ten 10^0 ... 10^8, for appending up to eight digits to a mantissa.
private let integerPowersOfTen: [UInt64] = [1, 10, 100, 1000, 10000, 100_000, 1_000_000, 10_000_000, 100_000_000]

/// The value of eight digits `x` (the bytes of eight ASCII digits less `0x30` each, the first byte the most
/// significant digit; fast_float's SWAR trick).
@inline(__always)
private func eightDigitValue(_ x: UInt64) -> UInt64 {
  let x = (x &* 10) &+ (x >> 8)  // pairs of digits in the even bytes
  let a = (x & 0x0000_00FF_0000_00FF) &* (100 &+ (1_000_000 << 32))
  let b = ((x >> 16) & 0x0000_00FF_0000_00FF) &* (1 &+ (10_000 << 32))
  return (a &+ b) >> 32
}

/// Nonzero in each byte of `v` that is not an ASCII digit, zero in each that is: exact up to and including the
/// first byte that is not (a carry out of that byte may mark the bytes after it).
@inline(__always)
private func nonDigitBytes(_ v: UInt64) -> UInt64 {
  // A digit's high nibble is 3, and adding 6 to it does not carry into that nibble.
  let high: UInt64 = 0xF0F0_F0F0_F0F0_F0F0
  let three: UInt64 = 0x3030_3030_3030_3030
  return ((v & high) ^ three) | (((v &+ 0x0606_0606_0606_0606) & high) ^ three)
}

/// Reads the run of ASCII digits at `p` (possibly empty) into `w` as `w * 10^n + run`, wrapping on overflow, and
/// moves `p` past it. Eight bytes at a time while eight remain in the buffer, the last run of fewer than eight
/// without a branch per digit; never reads at or past `count`.
@inline(__always)
private func readDigits(_ b: UnsafePointer<UInt8>, _ count: Int, _ p: inout Int, _ w: inout UInt64) {
  while p &+ 8 <= count {
    let v = UInt64(littleEndian: UnsafeRawPointer(b + p).loadUnaligned(as: UInt64.self))
    let k = nonDigitBytes(v).trailingZeroBitCount &>> 3  // 8 when all are digits
    appendDigits(v, k, &w)
    p &+= k
    if k < 8 { return }
  }
  while p < count {
    let d = b[p] &- 0x30
    if d >= 10 { break }
    w = w &* 10 &+ UInt64(d)
    p += 1
  }
}

/// Appends the `k` (0...8) ASCII digits that start the eight bytes at `p` (all of which must be readable) to `w`, as
/// `w * 10^k + digits`.
@inline(__always)
private func appendDigits(_ p: UnsafePointer<UInt8>, _ k: Int, _ w: inout UInt64) {
  appendDigits(UInt64(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt64.self)), k, &w)
}

/// Appends the first `k` (0...8) bytes of `v`, ASCII digits (the first in the lowest byte), to `w`, as
/// `w * 10^k + digits`. No branch depends on `k`.
@inline(__always)
private func appendDigits(_ v: UInt64, _ k: Int, _ w: inout UInt64) {
  // The k digits shifted to the top, with zeros (leading zero digits) below them; when k is 0 the mask clears
  // everything (a shift by 64 would need a branch).
  let some = 0 &- (UInt64(bitPattern: Int64(0 &- k)) >> 63)
  let run = eightDigitValue(((v &- 0x3030_3030_3030_3030) &<< UInt64((64 &- 8 &* k) & 63)) & some)
  w = integerPowersOfTen.withUnsafeBufferPointer { w &* $0[k] } &+ run
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
  // No branch on the sign (in data it is as likely as not): 1 for a '-', else 0, by arithmetic alone.
  let minus = Int(truncatingIfNeeded: ((UInt32(b[p]) ^ 0x2D) &- 1) >> 8) & 1
  p &+= minus
  guard p < count, isDigit(b[p]) else { return nil }
  let intStart = p
  var w: UInt64 = 0
  var digitCount: Int
  var exp10: Int
  if p &+ 34 <= count && b[p &+ 1] == UInt8(ascii: ".") {
    // One digit before the point, the common form of data near 1: the length of the fraction from one look at 32
    // bytes, its first sixteen digits at once, then up to eight more in one step, with no branch on how many there
    // are (in data, 15 to 19 as often as not).
    var sixteen: UInt64 = 0
    let m = Int(adjoint_leading_digits(b + p + 2, &sixteen))
    if m == 0 { return nil }
    w = UInt64(b[p] &- 0x30) &* 10_000_000_000_000_000 &+ sixteen  // fewer than 16 digits: zeros follow them
    var more = max(m &- 16, 0)
    if more <= 8 {
      appendDigits(b + p + 18, more, &w)
      p &+= 2 &+ m
    } else {
      appendDigits(b + p + 18, 8, &w)
      p &+= 26
      readDigits(b, count, &p, &w)
      more = p &- (intStart &+ 18)
    }
    digitCount = 1 &+ 16 &+ more  // the digits of `w`, with any zeros after fewer than 16
    exp10 = -16 &- more
  } else {
    guard let (mantissa, digits, exponent) = readMantissa(b, count, &p) else { return nil }
    (w, digitCount, exp10) = (mantissa, digits, exponent)
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
  if digitCount > 19 && significantDigits(b, intStart, p, digitCount) > 19 {
    return try? slowNumber(b, start, p)
  }
  return decimalToDouble(w, exp10, sign: UInt64(truncatingIfNeeded: minus) << 63)
}

/// The correctly rounded `w * 10^q` with the sign bit `sign` (`0` or `1 << 63`), or `nil` when it overflows to
/// infinity: the Eisel-Lemire algorithm, as in fast_float's `compute_float`.
///
/// No branch on the sign: in a matrix of data, a number is as likely negative as not.
@inline(__always)
private func decimalToDouble(_ w: UInt64, _ q: Int, sign: UInt64) -> Double? {
  if w == 0 || q < -342 { return Double(bitPattern: sign) }
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

/// Reads the digits and the fraction of a JSON number from `p` (at a digit) to its end or its exponent, and moves `p`
/// there: the digits as an integer (wrapping after 19), how many there are, and the power of ten that they take;
/// `nil` for a leading zero before a digit or a point without a digit after it. Any form but the common "d.ddd" with
/// 34 bytes from its start, which `readNumber` reads itself; not inlined, so that the loops that read numbers stay
/// small (and `decimalToDouble` inlines into them).
@inline(never)
private func readMantissa(_ b: UnsafePointer<UInt8>, _ count: Int, _ p: inout Int) -> (UInt64, Int, Int)? {
  let intStart = p
  var w: UInt64 = 0
  if p &+ 1 < count && b[p &+ 1] == UInt8(ascii: ".") {
    w = UInt64(b[p] &- 0x30)
    p &+= 1
  } else if b[p] == UInt8(ascii: "0") {
    p += 1
    if p < count && isDigit(b[p]) { return nil }
  } else {
    readDigits(b, count, &p, &w)
  }
  var digitCount = p - intStart
  var exp10 = 0
  if p < count && b[p] == UInt8(ascii: ".") {
    p += 1
    let fracStart = p
    readDigits(b, count, &p, &w)
    let fracDigits = p - fracStart
    if fracDigits == 0 { return nil }
    digitCount += fracDigits
    exp10 = -fracDigits
  }
  return (w, digitCount, exp10)
}

/// The significant digits of the `digitCount` digits in `b[intStart..<end]` (a JSON number without its sign): all but
/// the leading zeros ("0.000123"), which did not overflow the mantissa. Not inlined: it is rare, and it keeps the
/// loops that read numbers small enough for `decimalToDouble` to inline into them.
@inline(never)
private func significantDigits(_ b: UnsafePointer<UInt8>, _ intStart: Int, _ end: Int, _ digitCount: Int) -> Int {
  var significant = digitCount
  var q = intStart
  while q < end {
    let c = b[q]
    if c == UInt8(ascii: "0") {
      significant -= 1
    } else if c != UInt8(ascii: ".") {
      break
    }
    q += 1
  }
  return significant
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
