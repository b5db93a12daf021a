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

/// "00", "01", ..., "99" as 200 ASCII bytes (a static string: no lazy initialization, no reference counting).
private let digitPairs: StaticString = """
  0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849\
  5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899
  """

/// The formatter's tables as plain pointers to immortal copies, fetched once per tensor (or per number) so the
/// per-number code does no lazy-global checks and no reference counting.
struct ShortestDoubleTables: @unchecked Sendable {
  /// Schubfach's g table (see `schubfachG`).
  let g: UnsafePointer<UInt64>
  /// 10^0 ... 10^19.
  let pow10: UnsafePointer<UInt64>
  /// "00" ... "99".
  let pairs: UnsafeRawPointer

  /// The tables (allocated once, never freed).
  static let shared: ShortestDoubleTables = {
    let g = UnsafeMutablePointer<UInt64>.allocate(capacity: schubfachG.count)
    g.initialize(from: schubfachG, count: schubfachG.count)
    let pow10 = UnsafeMutablePointer<UInt64>.allocate(capacity: powersOfTen64.count)
    pow10.initialize(from: powersOfTen64, count: powersOfTen64.count)
    precondition(digitPairs.utf8CodeUnitCount == 200 && digitPairs.hasPointerRepresentation)
    return ShortestDoubleTables(
      g: UnsafePointer(g), pow10: UnsafePointer(pow10), pairs: UnsafeRawPointer(digitPairs.utf8Start))
  }()

  /// Copies the two ASCII digits of `v` (0...99) to `out`.
  @inline(__always)
  func pair(_ v: UInt32, _ out: UnsafeMutablePointer<UInt8>) {
    UnsafeMutableRawPointer(out).storeBytes(
      of: pairs.loadUnaligned(fromByteOffset: Int(v) &* 2, as: UInt16.self), as: UInt16.self)
  }

  /// Writes the eight digits of `v` (< 10^8, zero-padded) at `out`.
  @inline(__always)
  func eightDigits(_ v: UInt32, _ out: UnsafeMutablePointer<UInt8>) {
    let hi = v / 10_000
    let lo = v &- hi &* 10_000
    let a = hi / 100
    let c = lo / 100
    pair(a, out)
    pair(hi &- a &* 100, out + 2)
    pair(c, out + 4)
    pair(lo &- c &* 100, out + 6)
  }
}

enum ShortestDouble {
  /// The most bytes ``format(_:into:)`` writes ("-1.2345678901234567e-308" is 24).
  static let maxLength = 25

  /// Appends the shortest round-trip text of the finite `d`, formatted like `d.description`.
  @inline(__always)
  static func append(_ d: Double, to bytes: inout [UInt8]) {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { buffer in
      let n = format(d, into: buffer.baseAddress!, ShortestDoubleTables.shared)
      bytes.append(contentsOf: UnsafeBufferPointer(start: buffer.baseAddress!, count: n))
    }
  }

  /// Writes the text of the finite `d` at `out` (at most ``maxLength`` bytes); returns its length.
  static func format(_ d: Double, into out: UnsafeMutablePointer<UInt8>) -> Int {
    format(d, into: out, ShortestDoubleTables.shared)
  }

  /// Writes the text of the finite `d` at `out` (at most ``maxLength`` bytes; it may scribble on all of them);
  /// returns its length.
  ///
  /// Subnormals (rare) go through `description`: Schubfach's digits for the smallest ones can be one digit longer
  /// than Swift's (e.g. "7.9e-323" for "8e-323").
  @inline(__always)
  static func format(_ d: Double, into out: UnsafeMutablePointer<UInt8>, _ tables: ShortestDoubleTables) -> Int {
    let bits = d.bitPattern
    out[0] = UInt8(ascii: "-")  // kept only when negative
    var p = Int(truncatingIfNeeded: bits >> 63)
    let magnitude = Double(bitPattern: bits & 0x7FFF_FFFF_FFFF_FFFF)
    let biased = bits & 0x7FF0_0000_0000_0000
    if biased < 0x3FF0_0000_0000_0000 {
      // |d| < 1: zero, a subnormal, or not integral.
      if biased == 0 {
        if magnitude != 0 { return formatSubnormal(d, into: out) }
        out[p] = UInt8(ascii: "0")
        out[p &+ 1] = UInt8(ascii: ".")
        out[p &+ 2] = UInt8(ascii: "0")
        return p &+ 3
      }
    } else if magnitude <= 9_007_199_254_740_992 {
      let integer = UInt64(magnitude)
      if Double(integer) == magnitude {
        // Integral: "<digits>.0".
        let n = decimalLength(integer, tables)
        writeDigits(integer, n, out + p, tables)
        p &+= n
        out[p] = UInt8(ascii: ".")
        out[p &+ 1] = UInt8(ascii: "0")
        return p &+ 2
      }
    }
    let (f, e) = shortestDecimal(bits, tables)
    // x = f * 10^e, f without trailing zeros, = d.ddd * 10^exponent. Each digit is written once, at its final place
    // when possible.
    let n = decimalLength(f, tables)
    let exponent = n &+ e &- 1
    if exponent < -4 || magnitude > 9_007_199_254_740_992 {
      // d.ddde±XX: write the digits one to the right, then move the first one left over the '.'.
      writeDigits(f, n, out + p + 1, tables)
      out[p] = out[p &+ 1]
      if n > 1 {
        out[p &+ 1] = UInt8(ascii: ".")
        p &+= n &+ 1
      } else {
        p &+= 1
      }
      out[p] = UInt8(ascii: "e")
      out[p &+ 1] = exponent < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+")
      p &+= 2
      let ae = UInt32(truncatingIfNeeded: exponent.magnitude)
      if ae < 100 {
        tables.pair(ae, out + p)
        return p &+ 2
      }
      let h = ae / 100
      out[p] = UInt8(truncatingIfNeeded: h) &+ 0x30
      tables.pair(ae &- h &* 100, out + p + 1)
      return p &+ 3
    }
    if exponent < 0 {
      // 0.ddd, 0.0ddd, 0.00ddd, 0.000ddd: write "0.000", then the digits over the zeros not needed.
      out[p] = UInt8(ascii: "0")
      out[p &+ 1] = UInt8(ascii: ".")
      out[p &+ 2] = UInt8(ascii: "0")
      out[p &+ 3] = UInt8(ascii: "0")
      out[p &+ 4] = UInt8(ascii: "0")
      p &+= 1 &- exponent
      writeDigits(f, n, out + p, tables)
      return p &+ n
    }
    // ddd.ddd (never integral here: there are digits after the point). Write the digits one to the right, then
    // move the integer digits left by one over the '.'.
    let intDigits = exponent &+ 1
    writeDigits(f, n, out + p + 1, tables)
    var i = 0
    repeat {
      out[p &+ i] = out[p &+ i &+ 1]
      i &+= 1
    } while i < intDigits
    out[p &+ intDigits] = UInt8(ascii: ".")
    return p &+ 1 &+ n
  }

  @inline(never)
  private static func formatSubnormal(_ d: Double, into out: UnsafeMutablePointer<UInt8>) -> Int {
    var text = d.description
    return text.withUTF8 { utf8 in
      out.update(from: utf8.baseAddress!, count: utf8.count)
      return utf8.count
    }
  }

  /// The number of decimal digits of `v` (1 for 0).
  @inline(__always)
  static func decimalLength(_ v: UInt64, _ tables: ShortestDoubleTables) -> Int {
    let t = ((64 &- v.leadingZeroBitCount) &* 1233) >> 12
    return max(1, t &+ (v >= tables.pow10[t] ? 1 : 0))
  }

  /// The number of decimal digits of `v` (1 for 0).
  static func decimalLength(_ v: UInt64) -> Int { decimalLength(v, .shared) }

  /// Writes the `count` (= `decimalLength(v)`) decimal digits of `v` at `out`.
  @inline(__always)
  static func writeDigits(_ v: UInt64, _ count: Int, _ out: UnsafeMutablePointer<UInt8>, _ tables: ShortestDoubleTables)
  {
    var end = out + count
    var x = v
    // Eight digits at a time from the right.
    while x >= 100_000_000 {
      let q = x / 100_000_000
      end -= 8
      tables.eightDigits(UInt32(truncatingIfNeeded: x &- q &* 100_000_000), end)
      x = q
    }
    var y = UInt32(truncatingIfNeeded: x)
    while end - out >= 2 {
      let q = y / 100
      end -= 2
      tables.pair(y &- q &* 100, end)
      y = q
    }
    if end > out { out[0] = UInt8(truncatingIfNeeded: y) &+ 0x30 }
  }

  /// Writes the decimal digits of `v` at `out` (at most 20 bytes); returns how many.
  static func writeDigits(_ v: UInt64, _ out: UnsafeMutablePointer<UInt8>) -> Int {
    let n = decimalLength(v, .shared)
    writeDigits(v, n, out, .shared)
    return n
  }

  /// The shortest decimal `f * 10^e` that rounds to the positive finite nonzero `v` (f without trailing zeros).
  static func shortestDecimal(_ v: Double) -> (f: UInt64, e: Int) {
    shortestDecimal(v.bitPattern & 0x7FFF_FFFF_FFFF_FFFF, .shared)
  }

  /// The shortest decimal `f * 10^e` that rounds to the finite nonzero double of bit pattern `bits` (sign ignored;
  /// f without trailing zeros).
  @inline(__always)
  static func shortestDecimal(_ bits: UInt64, _ tables: ShortestDoubleTables) -> (f: UInt64, e: Int) {
    let t = bits & ((1 << 52) - 1)
    let bq = Int(truncatingIfNeeded: bits >> 52) & 0x7FF
    var result: (UInt64, Int)
    if bq != 0 {
      result = toDecimal(q: bq &- 1075, c: (1 << 52) | t, dk: 0, tables)
    } else if t < 3 {
      result = toDecimal(q: -1074, c: 10 &* t, dk: -1, tables)
    } else {
      result = toDecimal(q: -1074, c: t, dk: 0, tables)
    }
    // Remove trailing zeros.
    while true {
      let q = result.0 / 10
      if q &* 10 != result.0 || result.0 == 0 { break }
      result.0 = q
      result.1 &+= 1
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
  private static func toDecimal(q: Int, c: UInt64, dk: Int, _ tables: ShortestDoubleTables) -> (UInt64, Int) {
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
    let g1 = tables.g[2 &* (k &+ 324)]
    let g0 = tables.g[2 &* (k &+ 324) &+ 1]
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
      return (uin ? s : t, k &+ dk)
    }
    let cmp = Int64(bitPattern: vb &- ((s &+ t) << 1))
    return (cmp < 0 || (cmp == 0 && s & 1 == 0) ? s : t, k &+ dk)
  }
}
