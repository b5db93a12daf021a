/// Standard base64 (RFC 4648 §4: `A–Z a–z 0–9 + /`, `=` padding), strict: the length must be a multiple of 4 and
/// no other characters (no whitespace, no URL-safe alphabet) are accepted.
public enum Base64 {
  private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

  /// 0...63 for alphabet characters, 0xFF for anything else.
  private static let decodeTable: [UInt8] = {
    var t = [UInt8](repeating: 0xFF, count: 256)
    for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
    return t
  }()

  /// The length of the encoding of `byteCount` bytes.
  public static func encodedLength(of byteCount: Int) -> Int { (byteCount + 2) / 3 * 4 }

  /// Appends the base64 encoding of `bytes` to `output`.
  public static func encode(_ bytes: UnsafeRawBufferPointer, into output: inout [UInt8]) {
    let n = bytes.count
    let outCount = encodedLength(of: n)
    let oldCount = output.count
    output.append(contentsOf: repeatElement(0, count: outCount))
    alphabet.withUnsafeBufferPointer { table in
      output.withUnsafeMutableBufferPointer { out in
        var o = oldCount
        var i = 0
        while i + 3 <= n {
          let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
          out[o] = table[Int(v >> 18)]
          out[o + 1] = table[Int(v >> 12 & 0x3F)]
          out[o + 2] = table[Int(v >> 6 & 0x3F)]
          out[o + 3] = table[Int(v & 0x3F)]
          i += 3
          o += 4
        }
        let rest = n - i
        if rest > 0 {
          var v = UInt32(bytes[i]) << 16
          if rest == 2 { v |= UInt32(bytes[i + 1]) << 8 }
          out[o] = table[Int(v >> 18)]
          out[o + 1] = table[Int(v >> 12 & 0x3F)]
          out[o + 2] = rest == 2 ? table[Int(v >> 6 & 0x3F)] : UInt8(ascii: "=")
          out[o + 3] = UInt8(ascii: "=")
        }
      }
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

  /// Decodes `text` into `output`, which must have exactly `decodedLength(of: text)` bytes.
  public static func decode(_ text: UnsafeBufferPointer<UInt8>, into output: UnsafeMutableRawBufferPointer)
    throws(DecodingError)
  {
    guard let expected = decodedLength(of: text) else {
      throw DecodingError(offset: text.count, message: "base64 length \(text.count) is not a multiple of 4")
    }
    precondition(output.count == expected, "output buffer has the wrong size")
    let n = text.count
    if n == 0 { return }
    let failure: Int? = decodeTable.withUnsafeBufferPointer { table -> Int? in
      var i = 0
      var o = 0
      // All quads but the last have no padding.
      while i + 4 < n {
        let a = table[Int(text[i])]
        let b = table[Int(text[i + 1])]
        let c = table[Int(text[i + 2])]
        let d = table[Int(text[i + 3])]
        if (a | b | c | d) & 0xC0 != 0 {
          for k in 0..<4 where table[Int(text[i + k])] == 0xFF { return i + k }
        }
        let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
        output[o] = UInt8(truncatingIfNeeded: v >> 16)
        output[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
        output[o + 2] = UInt8(truncatingIfNeeded: v)
        i += 4
        o += 3
      }
      // The last quad: "xxxx", "xxx=" or "xx==".
      let a = table[Int(text[i])]
      let b = table[Int(text[i + 1])]
      if a == 0xFF { return i }
      if b == 0xFF { return i + 1 }
      let padC = text[i + 2] == UInt8(ascii: "=")
      let padD = text[i + 3] == UInt8(ascii: "=")
      if padC && !padD { return i + 3 }
      let c = padC ? 0 : table[Int(text[i + 2])]
      let d = padD ? 0 : table[Int(text[i + 3])]
      if c == 0xFF { return i + 2 }
      if d == 0xFF { return i + 3 }
      let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
      output[o] = UInt8(truncatingIfNeeded: v >> 16)
      if !padC { output[o + 1] = UInt8(truncatingIfNeeded: v >> 8) }
      if !padD { output[o + 2] = UInt8(truncatingIfNeeded: v) }
      return nil
    }
    if let failure {
      throw DecodingError(offset: failure, message: "invalid base64 character")
    }
  }

  /// Decodes a base64 string.
  public static func decode(_ text: String) throws(DecodingError) -> [UInt8] {
    var text = text
    let result: Result<[UInt8], DecodingError> = text.withUTF8 { utf8 in
      guard let n = decodedLength(of: utf8) else {
        return .failure(
          DecodingError(offset: utf8.count, message: "base64 length \(utf8.count) is not a multiple of 4"))
      }
      var failure: DecodingError?
      let bytes = [UInt8](unsafeUninitializedCapacity: n) { buffer, initialized in
        do throws(DecodingError) {
          try decode(utf8, into: UnsafeMutableRawBufferPointer(buffer))
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
