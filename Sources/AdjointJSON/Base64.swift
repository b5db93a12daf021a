import CBase64

/// Standard base64 (RFC 4648 §4: `A–Z a–z 0–9 + /`, `=` padding), strict: the length must be a multiple of 4 and
/// no other characters (no whitespace, no URL-safe alphabet) are accepted.
public enum Base64 {
  private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

  /// The length of the encoding of `byteCount` bytes.
  public static func encodedLength(of byteCount: Int) -> Int { (byteCount + 2) / 3 * 4 }

  /// The two characters of each 12-bit value, the first in the low byte: three input bytes become two lookups.
  private static let pairTable: [UInt16] = (0..<4096).map { v in
    UInt16(alphabet[v >> 6]) | UInt16(alphabet[v & 0x3F]) << 8
  }

  /// Appends the base64 encoding of `bytes` to `output`.
  public static func encode(_ bytes: UnsafeRawBufferPointer, into output: inout [UInt8]) {
    let start = output.count
    let length = encodedLength(of: bytes.count)
    if length == 0 { return }
    output.append(contentsOf: repeatElement(0, count: length))
    output.withUnsafeMutableBytes { raw in
      _ = encode(bytes, to: raw.baseAddress! + start)
    }
  }

  /// Writes the base64 encoding of `bytes` at `out` (room for ``encodedLength(of:)`` bytes); returns its length.
  static func encode(_ bytes: UnsafeRawBufferPointer, to out: UnsafeMutableRawPointer) -> Int {
    let n = bytes.count
    guard n > 0, let input = bytes.baseAddress else { return 0 }
    return pairTable.withUnsafeBufferPointer { table in
      let pairs = table.baseAddress!
      var i = 0
      var o = 0
      // Six bytes (eight characters) at a time while an 8-byte load stays inside the input.
      while i &+ 8 <= n {
        let x = UInt64(bigEndian: input.loadUnaligned(fromByteOffset: i, as: UInt64.self))
        let v1 = Int(truncatingIfNeeded: x >> 40)
        let v2 = Int(truncatingIfNeeded: x >> 16) & 0xFF_FFFF
        let chars =
          UInt64(pairs[v1 >> 12]) | UInt64(pairs[v1 & 0xFFF]) << 16 | UInt64(pairs[v2 >> 12]) << 32
          | UInt64(pairs[v2 & 0xFFF]) << 48
        out.storeBytes(of: chars.littleEndian, toByteOffset: o, as: UInt64.self)
        i &+= 6
        o &+= 8
      }
      while i &+ 3 <= n {
        let v =
          Int(input.load(fromByteOffset: i, as: UInt8.self)) << 16
          | Int(input.load(fromByteOffset: i &+ 1, as: UInt8.self)) << 8
          | Int(input.load(fromByteOffset: i &+ 2, as: UInt8.self))
        let chars = UInt32(pairs[v >> 12]) | UInt32(pairs[v & 0xFFF]) << 16
        out.storeBytes(of: chars.littleEndian, toByteOffset: o, as: UInt32.self)
        i &+= 3
        o &+= 4
      }
      if i < n {
        // The last one or two bytes.
        let rest = n &- i
        var v = UInt32(input.load(fromByteOffset: i, as: UInt8.self)) << 16
        if rest == 2 { v |= UInt32(input.load(fromByteOffset: i &+ 1, as: UInt8.self)) << 8 }
        out.storeBytes(of: alphabet[Int(v >> 18)], toByteOffset: o, as: UInt8.self)
        out.storeBytes(of: alphabet[Int(v >> 12 & 0x3F)], toByteOffset: o &+ 1, as: UInt8.self)
        out.storeBytes(
          of: rest == 2 ? alphabet[Int(v >> 6 & 0x3F)] : UInt8(ascii: "="), toByteOffset: o &+ 2, as: UInt8.self)
        out.storeBytes(of: UInt8(ascii: "="), toByteOffset: o &+ 3, as: UInt8.self)
        o &+= 4
      }
      return o
    }
  }

  /// The base64 encoding of `bytes`, as a string.
  public static func encode(_ bytes: [UInt8]) -> String {
    var out: [UInt8] = []
    bytes.withUnsafeBytes { encode($0, into: &out) }
    return String(decoding: out, as: UTF8.self)
  }

  /// Why a base64 text does not decode.
  public struct DecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The offset of the offending character (or the text's length when the length is wrong).
    public var offset: Int
    /// What is wrong.
    public var message: String
    /// "message at offset N".
    public var description: String { "\(message) at offset \(offset)" }
  }

  /// The number of bytes `text` decodes to, judged from its length and padding only; `nil` when the length is not
  /// a multiple of 4.
  public static func decodedLength(of text: UnsafeBufferPointer<UInt8>) -> Int? {
    let n = text.count
    guard n % 4 == 0 else { return nil }
    if n == 0 { return 0 }
    var padding = 0
    if text[n - 1] == UInt8(ascii: "=") { padding += 1 }
    if text[n - 2] == UInt8(ascii: "=") { padding += 1 }
    return n / 4 * 3 - padding
  }

  /// Four tables of 256 entries, one per position in a quad: the character's six bits already placed where they
  /// land in the three output bytes (the first byte lowest), so a quad decodes with four lookups and three ORs;
  /// anything outside the alphabet sets bit 24.
  private static let quadTables: [UInt32] = {
    var t = [UInt32](repeating: 0x0100_0000, count: 1024)
    for (i, c) in alphabet.enumerated() {
      let v = UInt32(i)
      t[Int(c)] = v << 2
      t[256 + Int(c)] = v >> 4 | (v & 0x0F) << 12
      t[512 + Int(c)] = (v >> 2) << 8 | (v & 0x03) << 22
      t[768 + Int(c)] = v << 16
    }
    return t
  }()

  /// Two tables of 65,536 entries indexed by two characters (the first in the low byte), for the first and the
  /// second half of a quad: their twelve bits already placed where they land in the three output bytes (the
  /// first byte lowest), so a quad decodes with two lookups and one OR; a pair with a character outside the
  /// alphabet sets bit 24. 512 kB, of which the valid pairs touch about a tenth.
  private static let pairTables: PairTables = {
    let t = UnsafeMutablePointer<UInt32>.allocate(capacity: 2 << 16)
    t.initialize(repeating: 0x0100_0000, count: 2 << 16)
    for (i, c0) in alphabet.enumerated() {
      for (j, c1) in alphabet.enumerated() {
        let v = UInt32(i << 6 | j)
        let index = Int(c0) | Int(c1) << 8
        t[index] = v >> 4 | (v & 0xF) << 12
        t[1 << 16 | index] = (v >> 8) << 8 | (v & 0xFF) << 16
      }
    }
    return PairTables(base: UnsafePointer(t))
  }()

  /// Immutable once built (and never freed), so safe to share.
  private struct PairTables: @unchecked Sendable {
    let base: UnsafePointer<UInt32>
  }

  /// Which decoder does the bulk of the work.
  public enum DecoderPath: Sendable, CaseIterable {
    /// The vector decoder (AVX2) where the processor has it (see ``hasVectorDecoder``), else the scalar one.
    case fastest
    /// The scalar decoder only (for tests that compare the two).
    case scalar
  }

  /// Whether this processor runs the vector decoder (x86-64 with AVX2), checked at run time.
  public static var hasVectorDecoder: Bool { adjoint_base64_has_vector() != 0 }

  /// Decodes `text` into `output`, which must have exactly `decodedLength(of: text)` bytes.
  ///
  /// The vector decoder, when `path` allows it and the processor has it, decodes whole 32-character blocks before
  /// the last quad and stops before a block with a character outside the alphabet; the scalar decoder takes over
  /// from there, so both paths give the same bytes and the same error (the offset of the first bad character).
  public static func decode(
    _ text: UnsafeBufferPointer<UInt8>, into output: UnsafeMutableRawBufferPointer, path: DecoderPath = .fastest
  ) throws(DecodingError) {
    guard let expected = decodedLength(of: text) else {
      throw DecodingError(offset: text.count, message: "base64 length \(text.count) is not a multiple of 4")
    }
    precondition(output.count == expected, "output buffer has the wrong size")
    let n = text.count
    if n == 0 { return }
    let failure: Int? = quadTables.withUnsafeBufferPointer { tables -> Int? in
      let t = tables.baseAddress!
      let s = text.baseAddress!
      let out = output.baseAddress!
      let outCount = output.count
      @inline(__always)
      func quad(_ i: Int) -> UInt32 {
        t[Int(s[i])] | t[256 &+ Int(s[i &+ 1])] | t[512 &+ Int(s[i &+ 2])] | t[768 &+ Int(s[i &+ 3])]
      }
      @inline(__always)
      func badCharacter(_ i: Int) -> Int {
        for k in 0..<4 where t[Int(s[i &+ k])] & 0x0100_0000 != 0 { return i &+ k }
        return i
      }
      var i = 0
      var o = 0
      // All quads but the last have no padding, so the vector decoder takes them (never the last one), as far as
      // it gets.
      if path == .fastest && n &- 4 >= 32 {
        i = adjoint_base64_decode_prefix(s, n &- 4, out, outCount)
        o = i / 4 &* 3
      }
      // Then the rest (or, on the scalar path, all) two quads (six bytes) at a time, read as one word and decoded
      // by pairs of characters, with one 8-byte store while the store stays inside the output (the two extra bytes
      // are overwritten next).
      let first = pairTables.base
      let second = first + (1 << 16)
      while i &+ 8 < n && o &+ 8 <= outCount {
        let w = UInt64(littleEndian: UnsafeRawPointer(s + i).loadUnaligned(as: UInt64.self))
        let x0 = first[Int(truncatingIfNeeded: w & 0xFFFF)] | second[Int(truncatingIfNeeded: (w &>> 16) & 0xFFFF)]
        let x1 = first[Int(truncatingIfNeeded: (w &>> 32) & 0xFFFF)] | second[Int(truncatingIfNeeded: w &>> 48)]
        if (x0 | x1) & 0x0100_0000 != 0 {
          return badCharacter(quad(i) & 0x0100_0000 != 0 ? i : i &+ 4)
        }
        out.storeBytes(of: (UInt64(x0) | UInt64(x1) << 24).littleEndian, toByteOffset: o, as: UInt64.self)
        i &+= 8
        o &+= 6
      }
      while i &+ 4 < n {
        let x = quad(i)
        if x & 0x0100_0000 != 0 { return badCharacter(i) }
        out.storeBytes(of: UInt8(truncatingIfNeeded: x), toByteOffset: o, as: UInt8.self)
        out.storeBytes(of: UInt8(truncatingIfNeeded: x >> 8), toByteOffset: o &+ 1, as: UInt8.self)
        out.storeBytes(of: UInt8(truncatingIfNeeded: x >> 16), toByteOffset: o &+ 2, as: UInt8.self)
        i &+= 4
        o &+= 3
      }
      // The last quad: "xxxx", "xxx=" or "xx==".
      let padC = s[i &+ 2] == UInt8(ascii: "=")
      let padD = s[i &+ 3] == UInt8(ascii: "=")
      if padC && !padD {
        if t[Int(s[i])] & 0x0100_0000 != 0 { return i }
        if t[256 &+ Int(s[i &+ 1])] & 0x0100_0000 != 0 { return i &+ 1 }
        return i &+ 3
      }
      let c = padC ? 0 : t[512 &+ Int(s[i &+ 2])]
      let d = padD ? 0 : t[768 &+ Int(s[i &+ 3])]
      let x = t[Int(s[i])] | t[256 &+ Int(s[i &+ 1])] | c | d
      if x & 0x0100_0000 != 0 { return badCharacter(i) }
      out.storeBytes(of: UInt8(truncatingIfNeeded: x), toByteOffset: o, as: UInt8.self)
      if !padC { out.storeBytes(of: UInt8(truncatingIfNeeded: x >> 8), toByteOffset: o &+ 1, as: UInt8.self) }
      if !padD { out.storeBytes(of: UInt8(truncatingIfNeeded: x >> 16), toByteOffset: o &+ 2, as: UInt8.self) }
      return nil
    }
    if let failure {
      throw DecodingError(offset: failure, message: "invalid base64 character")
    }
  }

  /// Decodes a base64 string.
  public static func decode(_ text: String, path: DecoderPath = .fastest) throws(DecodingError) -> [UInt8] {
    var text = text
    let result: Result<[UInt8], DecodingError> = text.withUTF8 { utf8 in
      guard let n = decodedLength(of: utf8) else {
        return .failure(
          DecodingError(offset: utf8.count, message: "base64 length \(utf8.count) is not a multiple of 4"))
      }
      var failure: DecodingError?
      let bytes = [UInt8](unsafeUninitializedCapacity: n) { buffer, initialized in
        do throws(DecodingError) {
          try decode(utf8, into: UnsafeMutableRawBufferPointer(buffer), path: path)
        } catch {
          failure = error
          buffer.initialize(repeating: 0)
        }
        initialized = n
      }
      if let failure { return .failure(failure) }
      return .success(bytes)
    }
    return try result.get()
  }
}
