// Shortest round-trip formatting of doubles without allocating, in exactly the format of Swift's
// `Double.description` (which allocates a heap string for anything longer than 15 bytes).
//
// Digits: Raffaello Giulietti's Schubfach algorithm ("The Schubfach way to render doubles", 2020; the algorithm of
// Java's `Double.toString` since JDK 19): the shortest decimal in the rounding interval, the closest one when
// several qualify, ties to even. Layout (Swift's): integral values up to 2^53 as "123.0"; otherwise
// plain decimal ("0.001", "123.456") when 1e-4 <= |x| <= 2^53, else exponential ("1e-05", "1.5e+300", "5e-324").
//
// Speed: the candidate choice is arithmetic on flags rather than branches (the digits of real data are random, so
// branches would mispredict); the decimal keeps its trailing zeros and is written as 17 zero-padded digits, four
// at a time from a table (one byte and two 8-byte stores), its significant length read off the trailing zero
// bytes; the layout then needs no digit loop but the short move of "ddd.ddd"'s integer digits.

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
  /// The four decimal digits of 0 ... 9999 as bytes 0...9, the first digit in the lowest byte (40 kB).
  let quads: UnsafePointer<UInt32>

  /// The tables (allocated once, never freed).
  static let shared: ShortestDoubleTables = {
    let quads = UnsafeMutablePointer<UInt32>.allocate(capacity: 10_000)
    for v in 0..<10_000 {
      let digits = [v / 1000, v / 100 % 10, v / 10 % 10, v % 10].map(UInt32.init)
      quads[v] = digits[0] | digits[1] << 8 | digits[2] << 16 | digits[3] << 24
    }
    let g = UnsafeMutablePointer<UInt64>.allocate(capacity: schubfachG.count)
    g.initialize(from: schubfachG, count: schubfachG.count)
    let pow10 = UnsafeMutablePointer<UInt64>.allocate(capacity: powersOfTen64.count)
    pow10.initialize(from: powersOfTen64, count: powersOfTen64.count)
    precondition(digitPairs.utf8CodeUnitCount == 200 && digitPairs.hasPointerRepresentation)
    return ShortestDoubleTables(
      g: UnsafePointer(g), pow10: UnsafePointer(pow10), pairs: UnsafeRawPointer(digitPairs.utf8Start),
      quads: UnsafePointer(quads))
  }()

  /// The eight decimal digits of `x` (< 10^8, zero-padded) as bytes 0...9, the first digit in the lowest byte.
  @inline(__always)
  func bcd8(_ x: UInt32) -> UInt64 {
    let high = x / 10_000
    return UInt64(quads[Int(high)]) | UInt64(quads[Int(x &- high &* 10_000)]) &<< 32
  }

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
  /// The bytes ``format(_:into:)`` may scribble on (beyond its result, up to this many from `out`).
  static let scratchLength = 32

  /// Writes the text of the finite `d` at `out` (at most ``maxLength`` bytes); returns its length.
  static func format(_ d: Double, into out: UnsafeMutablePointer<UInt8>) -> Int {
    format(d, into: out, ShortestDoubleTables.shared)
  }

  /// Writes the text of the finite `d` at `out` (at most ``maxLength`` bytes; it may scribble on up to
  /// ``scratchLength`` bytes); returns its length.
  ///
  /// Subnormals (rare) go through `description`: Schubfach's digits for the smallest ones can be one digit longer
  /// than Swift's (e.g. "7.9e-323" for "8e-323").
  @inline(__always)
  static func format(_ d: Double, into out: UnsafeMutablePointer<UInt8>, _ tables: ShortestDoubleTables) -> Int {
    let bits = d.bitPattern
    out[0] = UInt8(ascii: "-")  // kept only when negative
    var p = Int(truncatingIfNeeded: bits >> 63)
    let magnitude = bits & 0x7FFF_FFFF_FFFF_FFFF  // |d|'s bits (ordered like |d|)
    let twoTo53: UInt64 = 0x4340_0000_0000_0000  // 2^53's bits
    if magnitude < 0x0010_0000_0000_0000 {
      // Zero or a subnormal (rare).
      if magnitude != 0 { return formatSubnormal(d, into: out) }
      out[p] = UInt8(ascii: "0")
      out[p &+ 1] = UInt8(ascii: ".")
      out[p &+ 2] = UInt8(ascii: "0")
      return p &+ 3
    }
    // Integral when |d| >= 1 and no fraction bit below the binary point is set; flags combined without branches
    // (whether |d| >= 1 is random for most data; being integral is rare).
    let t = Int(truncatingIfNeeded: magnitude >> 52) &- 1023  // the binary exponent
    let below = t >= 52 ? 0 : bits &<< UInt64(truncatingIfNeeded: t &+ 12)  // the fraction bits, for 0 <= t < 52
    if bit(t >= 0) & bit(below == 0) & bit(magnitude <= twoTo53) != 0 {
      // Integral: "<digits>.0".
      let integer = UInt64(Double(bitPattern: magnitude))
      let n = decimalLength(integer, tables)
      writeDigits(integer, n, out + p, tables)
      p &+= n
      out[p] = UInt8(ascii: ".")
      out[p &+ 1] = UInt8(ascii: "0")
      return p &+ 2
    }
    // A normal double that is not an integer of at most 2^53: Schubfach's f * 10^k, f with 16 or 17 digits
    // (4.5e15 <= f < 10^17, trailing zeros kept). The 17 zero-padded digits go out as one byte and two 8-byte words;
    // the significant digits and the layout follow without loops (but for "ddd.ddd").
    let (f, k) = toDecimalNormal(bits, tables)
    let hi9 = f / 100_000_000
    let lo8 = f &- hi9 &* 100_000_000
    let hi = UInt32(truncatingIfNeeded: hi9)
    let d0 = hi / 100_000_000
    let mid8 = hi &- d0 &* 100_000_000
    let lead = d0 == 0 ? 1 : 0  // 16 digits: the padded string starts with a '0'
    let bcdMid = tables.bcd8(mid8)
    let bcdLo = tables.bcd8(UInt32(truncatingIfNeeded: lo8))
    // Significant digits: 17 positions less the leading '0' and the trailing zeros (zero bytes at the top of a BCD
    // word).
    var n: Int
    if lo8 != 0 {
      n = 17 &- (bcdLo.leadingZeroBitCount >> 3)
    } else if mid8 != 0 {
      n = 9 &- (bcdMid.leadingZeroBitCount >> 3)
    } else {
      n = 1
    }
    n &-= lead
    let exponent = 16 &- lead &+ k  // x = d.ddd * 10^exponent
    let ascii: UInt64 = 0x3030_3030_3030_3030
    // Writes the 17 padded digits at `s`, so that the first significant digit lands at `s + lead`.
    @inline(__always)
    func put(_ s: UnsafeMutablePointer<UInt8>) {
      s[0] = UInt8(truncatingIfNeeded: d0) &+ 0x30
      let raw = UnsafeMutableRawPointer(s)
      raw.storeBytes(of: (bcdMid | ascii).littleEndian, toByteOffset: 1, as: UInt64.self)
      raw.storeBytes(of: (bcdLo | ascii).littleEndian, toByteOffset: 9, as: UInt64.self)
    }
    if exponent < -4 || magnitude > twoTo53 {
      // d.ddde±XX: the digits one to the right, then the first one moved left over the '.'.
      put(out + p + 1 - lead)
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
      // 0.ddd, 0.0ddd, 0.00ddd, 0.000ddd: zeros, the digits over them, then "0.".
      UnsafeMutableRawPointer(out + p).storeBytes(of: ascii, as: UInt64.self)
      put(out + p + 1 - exponent - lead)
      out[p] = UInt8(ascii: "0")
      out[p &+ 1] = UInt8(ascii: ".")
      return p &+ 1 &- exponent &+ n
    }
    // ddd.ddd (never integral here: there are digits after the point). The digits one to the right, then the
    // integer digits moved left by one over the '.'.
    let intDigits = exponent &+ 1
    put(out + p + 1 - lead)
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

  /// Schubfach's `toDecimal` for a normal double (bit pattern `bits`, sign ignored), without branches on the
  /// digits (they are random for most data, so branches would mispredict): the shortest `f * 10^k` in the
  /// rounding interval, closest when several qualify, f with its trailing zeros (4.5e15 <= f < 10^17).
  @inline(__always)
  static func toDecimalNormal(_ bits: UInt64, _ tables: ShortestDoubleTables) -> (UInt64, Int) {
    let q = Int(truncatingIfNeeded: (bits >> 52) & 0x7FF) &- 1075
    let c = (bits & ((1 << 52) - 1)) | (1 << 52)
    let out: UInt64 = c & 1
    let cb = c << 2
    let cbr = cb &+ 2
    let regular = c != 1 << 52
    let cbl = regular ? cb &- 2 : cb &- 1
    // k = floor(log10(2^q)), or floor(log10(3/4 * 2^q)) where the spacing below c is half the spacing above.
    let k = (q &* 661_971_961_083 &+ (regular ? 0 : -274_743_187_321)) &>> 41
    let h = UInt64(truncatingIfNeeded: q &+ flog2pow10(-k) &+ 2)
    let g1 = tables.g[2 &* (k &+ 324)]
    let g0 = tables.g[2 &* (k &+ 324) &+ 1]
    let vb = rop(g1, g0, cb &<< h)
    let vbl = rop(g1, g0, cbl &<< h) &+ out
    let vbr = rop(g1, g0, cbr &<< h) &- out
    let s = vb &>> 2  // >= 4.5e15 for a normal double
    let sp10 = 10 &* s.multipliedFullWidth(by: 115_292_150_460_684_698 << 4).high
    // Selections as arithmetic on 0/1 flags.
    let upin = bit(vbl <= sp10 &<< 2)
    let wpin = bit(sp10 &<< 2 &+ 40 <= vbr)
    let uin = bit(vbl <= s &<< 2)
    let win = bit(s &<< 2 &+ 4 <= vbr)
    let mid = s &<< 2 &+ 2
    let up = bit(vb > mid) | (bit(vb == mid) & s & 1)
    // One of u, w inside: the one inside (w means one up); both or neither: the closer, ties to even.
    let near = s &+ ((uin ^ win) & win | ~(uin ^ win) & up & 1)
    let shorter = sp10 &+ 10 &* wpin
    let useShorter = 0 &- (upin ^ wpin)  // all ones when exactly one of the shorter candidates is inside
    return (shorter & useShorter | near & ~useShorter, k)
  }

  /// 1 for `true`, 0 for `false`.
  @inline(__always)
  static func bit(_ b: Bool) -> UInt64 { UInt64(unsafeBitCast(b, to: UInt8.self)) }
}
