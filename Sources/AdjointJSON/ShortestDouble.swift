// Shortest round-trip formatting of doubles without allocating, in exactly the format of Swift's
// `Double.description` (which allocates a heap string for anything longer than 15 bytes).
//
// Digits: Raffaello Giulietti's Schubfach algorithm ("The Schubfach way to render doubles", 2020; the algorithm of
// Java's `Double.toString` since JDK 19): the shortest decimal in the rounding interval, the closest one when
// several qualify, ties to even. Layout (Swift's): integral values up to 2^53 as "123.0"; otherwise
// plain decimal ("0.001", "123.456") when 1e-4 <= |x| <= 2^53, else exponential ("1e-05", "1.5e+300", "5e-324").

/// 10^0 ... 10^19.
private let powersOfTen64: [UInt64] = [
  1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000, 10_000_000_000,
  100_000_000_000, 1_000_000_000_000, 10_000_000_000_000, 100_000_000_000_000, 1_000_000_000_000_000,
  10_000_000_000_000_000, 100_000_000_000_000_000, 1_000_000_000_000_000_000, 10_000_000_000_000_000_000,
]

/// "00", "01", ..., "99" as 200 ASCII bytes.
private let digitPairs: [UInt8] = {
  var table: [UInt8] = []
  for i in 0..<100 {
    table.append(UInt8(0x30 + i / 10))
    table.append(UInt8(0x30 + i % 10))
  }
  return table
}()

enum ShortestDouble {
  /// Appends the shortest round-trip text of the finite `d`, formatted like `d.description`.
  @inline(__always)
  static func append(_ d: Double, to bytes: inout [UInt8]) {
    if d.isSubnormal {
      bytes.append(contentsOf: d.description.utf8)
      return
    }
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { buffer in
      let n = format(d, into: buffer.baseAddress!)
      bytes.append(contentsOf: UnsafeBufferPointer(start: buffer.baseAddress!, count: n))
    }
  }

  /// Writes the text of the finite `d` at `out` (at most 25 bytes); returns its length.
  ///
  /// Subnormals (rare) go through `description`: Schubfach's digits for the smallest ones can be one digit longer
  /// than Swift's (e.g. "7.9e-323" for "8e-323").
  static func format(_ d: Double, into out: UnsafeMutablePointer<UInt8>) -> Int {
    if d.isSubnormal {
      var text = d.description
      return text.withUTF8 { utf8 in
        out.update(from: utf8.baseAddress!, count: utf8.count)
        return utf8.count
      }
    }
    var p = 0
    if d.sign == .minus {
      out[0] = UInt8(ascii: "-")
      p = 1
    }
    let magnitude = d.magnitude
    if magnitude <= 9_007_199_254_740_992, Double(UInt64(magnitude)) == magnitude {
      // Integral: "<digits>.0" (zero included).
      p += writeDigits(UInt64(magnitude), out + p)
      out[p] = UInt8(ascii: ".")
      out[p + 1] = UInt8(ascii: "0")
      return p + 2
    }
    let (f, e) = shortestDecimal(magnitude)
    // f * 10^e, f without trailing zeros. The digits are written once, at their final place when possible.
    let exponent = decimalLength(f) + e - 1  // x = d.ddd * 10^exponent
    if exponent < -4 || magnitude > 9_007_199_254_740_992 {
      // d.ddde±XX: write the digits one to the right, then move the first one left over the '.'.
      let count = writeDigits(f, out + p + 1)
      out[p] = out[p + 1]
      p += 1
      if count > 1 {
        out[p] = UInt8(ascii: ".")
        p += count
      }
      out[p] = UInt8(ascii: "e")
      out[p + 1] = exponent < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+")
      p += 2
      let ae = UInt64(exponent.magnitude)
      if ae < 10 {
        out[p] = UInt8(ascii: "0")
        p += 1
      }
      return p + writeDigits(ae, out + p)
    }
    if exponent < 0 {
      // 0.000ddd
      out[p] = UInt8(ascii: "0")
      out[p + 1] = UInt8(ascii: ".")
      p += 2
      for _ in 0..<(-exponent - 1) {
        out[p] = UInt8(ascii: "0")
        p += 1
      }
      return p + writeDigits(f, out + p)
    }
    // ddd.ddd (never integral here: there are digits after the point). Write the digits one to the right, then
    // move the integer digits left by one over the '.'.
    let intDigits = exponent + 1
    let count = writeDigits(f, out + p + 1)
    for i in 0..<intDigits { out[p + i] = out[p + i + 1] }
    out[p + intDigits] = UInt8(ascii: ".")
    return p + 1 + count
  }

  /// The number of decimal digits of `v` (1 for 0).
  @inline(__always)
  static func decimalLength(_ v: UInt64) -> Int {
    powersOfTen64.withUnsafeBufferPointer { pow10 in
      let t = ((64 - v.leadingZeroBitCount) &* 1233) >> 12
      return max(1, t + (v >= pow10[t] ? 1 : 0))
    }
  }

  /// Writes the decimal digits of `v` at `out` (at most 20 bytes); returns how many.
  @inline(__always)
  static func writeDigits(_ v: UInt64, _ out: UnsafeMutablePointer<UInt8>) -> Int {
    let count = decimalLength(v)
    return digitPairs.withUnsafeBufferPointer { pairs in
      var i = count
      var x = v
      // Eight digits at a time, as two independent halves of four.
      while x >= 100_000_000 {
        let q = x / 100_000_000
        let r = UInt32(truncatingIfNeeded: x &- q &* 100_000_000)
        let hi = r / 10_000
        let lo = r &- hi &* 10_000
        let (a, b) = hi.quotientAndRemainder(dividingBy: 100)
        let (c, d) = lo.quotientAndRemainder(dividingBy: 100)
        out[i - 8] = pairs[Int(a) &* 2]
        out[i - 7] = pairs[Int(a) &* 2 &+ 1]
        out[i - 6] = pairs[Int(b) &* 2]
        out[i - 5] = pairs[Int(b) &* 2 &+ 1]
        out[i - 4] = pairs[Int(c) &* 2]
        out[i - 3] = pairs[Int(c) &* 2 &+ 1]
        out[i - 2] = pairs[Int(d) &* 2]
        out[i - 1] = pairs[Int(d) &* 2 &+ 1]
        i -= 8
        x = q
      }
      var y = UInt32(truncatingIfNeeded: x)
      while i >= 2 {
        let q = y / 100
        let r = y &- q &* 100
        out[i - 2] = pairs[Int(r) &* 2]
        out[i - 1] = pairs[Int(r) &* 2 &+ 1]
        i -= 2
        y = q
      }
      if i == 1 { out[0] = UInt8(truncatingIfNeeded: y) &+ 0x30 }
      return count
    }
  }

  /// The shortest decimal `f * 10^e` that rounds to the positive finite nonzero `v` (f without trailing zeros).
  @inline(__always)
  static func shortestDecimal(_ v: Double) -> (f: UInt64, e: Int) {
    let bits = v.bitPattern
    let t = bits & ((1 << 52) - 1)
    let bq = Int(bits >> 52) & 0x7FF
    var result: (UInt64, Int)
    if bq != 0 {
      result = toDecimal(q: bq - 1075, c: (1 << 52) | t, dk: 0)
    } else if t < 3 {
      result = toDecimal(q: -1074, c: 10 * t, dk: -1)
    } else {
      result = toDecimal(q: -1074, c: t, dk: 0)
    }
    // Remove trailing zeros.
    while result.0 != 0 && result.0 % 10 == 0 {
      result.0 /= 10
      result.1 += 1
    }
    return result
  }

  @inline(__always)
  private static func flog10pow2(_ e: Int) -> Int { (e &* 661_971_961_083) >> 41 }
  @inline(__always)
  private static func flog10threeQuartersPow2(_ e: Int) -> Int { (e &* 661_971_961_083 &+ -274_743_187_321) >> 41 }
  @inline(__always)
  private static func flog2pow10(_ e: Int) -> Int { (e &* 913_124_641_741) >> 38 }

  @inline(__always)
  private static func rop(_ g1: UInt64, _ g0: UInt64, _ cp: UInt64) -> UInt64 {
    let x1 = g0.multipliedFullWidth(by: cp).high
    let y = g1.multipliedFullWidth(by: cp)
    let z = (y.low >> 1) &+ x1
    let vbp = y.high &+ (z >> 63)
    return vbp | (((z & 0x7FFF_FFFF_FFFF_FFFF) &+ 0x7FFF_FFFF_FFFF_FFFF) >> 63)
  }

  @inline(__always)
  private static func toDecimal(q: Int, c: UInt64, dk: Int) -> (UInt64, Int) {
    let out: UInt64 = c & 1
    let cb = c << 2
    let cbr = cb + 2
    let cbl: UInt64
    let k: Int
    if c != 1 << 52 || q == -1074 {
      cbl = cb - 2
      k = flog10pow2(q)
    } else {
      cbl = cb - 1
      k = flog10threeQuartersPow2(q)
    }
    let h = UInt64(q + flog2pow10(-k) + 2)
    let (g1, g0) = schubfachG.withUnsafeBufferPointer { table in
      (table[2 * (k + 324)], table[2 * (k + 324) + 1])
    }
    let vb = rop(g1, g0, cb << h)
    let vbl = rop(g1, g0, cbl << h)
    let vbr = rop(g1, g0, cbr << h)
    let s = vb >> 2
    if s >= 100 {
      let sp10 = 10 &* s.multipliedFullWidth(by: 115_292_150_460_684_698 << 4).high
      let tp10 = sp10 &+ 10
      let upin = vbl &+ out <= sp10 << 2
      let wpin = (tp10 << 2) &+ out <= vbr
      if upin != wpin {
        return (upin ? sp10 : tp10, k)
      }
    }
    let t = s &+ 1
    let uin = vbl &+ out <= s << 2
    let win = (t << 2) &+ out <= vbr
    if uin != win {
      return (uin ? s : t, k + dk)
    }
    let cmp = Int64(bitPattern: vb &- ((s &+ t) << 1))
    return (cmp < 0 || (cmp == 0 && s & 1 == 0) ? s : t, k + dk)
  }
}
