/// Writes compact JSON into a byte buffer.
///
/// Commas are inserted automatically: call `beginObject()`, then alternately `writeKey(_:)` and a value,
/// then `endObject()`; arrays likewise without keys.
///
/// ```swift
/// var w = JSONWriter()
/// w.beginObject()
/// w.writeKey("value")
/// w.write(1.5)
/// w.writeKey("grad")
/// w.write(doubles: [1, 2, 3, 4], shape: [2, 2])
/// w.endObject()  // {"value":1.5,"grad":[[1.0,2.0],[3.0,4.0]]}
/// ```
///
/// Numbers are written in the shortest form that parses back to the same double (Swift's `description`, e.g.
/// `0.1`, `2.0`, `1e-05`, `-0.0`, `5e-324`, `1.7976931348623157e+308`, all valid JSON); the non-finite values are
/// written as the strings `"NaN"`, `"Infinity"` and `"-Infinity"`.
public struct JSONWriter: Sendable {
  /// The JSON text written so far (UTF-8).
  public var bytes: [UInt8]
  /// Whether the next value or key needs a comma before it.
  private var needsComma = false

  /// A writer with an empty buffer that can grow to `capacity` bytes without reallocating.
  public init(capacity: Int = 0) {
    bytes = []
    bytes.reserveCapacity(capacity)
  }

  /// The text written so far, as a string.
  public var string: String { String(decoding: bytes, as: UTF8.self) }

  @inline(__always)
  private mutating func separate() {
    if needsComma { bytes.append(UInt8(ascii: ",")) }
    needsComma = true
  }

  // MARK: Structure

  /// Writes `[`.
  public mutating func beginArray() {
    separate()
    bytes.append(UInt8(ascii: "["))
    needsComma = false
  }

  /// Writes `]`.
  public mutating func endArray() {
    bytes.append(UInt8(ascii: "]"))
    needsComma = true
  }

  /// Writes `{`.
  public mutating func beginObject() {
    separate()
    bytes.append(UInt8(ascii: "{"))
    needsComma = false
  }

  /// Writes `}`.
  public mutating func endObject() {
    bytes.append(UInt8(ascii: "}"))
    needsComma = true
  }

  /// Writes an object key and the `:` after it; the member's value comes next.
  public mutating func writeKey(_ key: String) {
    var key = key
    // Fast path: a short key without anything to escape, written with one append (`,"key":`).
    let done = key.withUTF8 { utf8 -> Bool in
      let n = utf8.count
      guard n <= 60 else { return false }
      for c in utf8 where c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") { return false }
      return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { buffer in
        let out = buffer.baseAddress!
        var p = 0
        if needsComma {
          out[0] = UInt8(ascii: ",")
          p = 1
        }
        out[p] = UInt8(ascii: "\"")
        if let base = utf8.baseAddress { (out + p + 1).update(from: base, count: n) }
        out[p &+ n &+ 1] = UInt8(ascii: "\"")
        out[p &+ n &+ 2] = UInt8(ascii: ":")
        bytes.append(contentsOf: UnsafeBufferPointer(start: out, count: p &+ n &+ 3))
        return true
      }
    }
    if !done {
      separate()
      appendString(key)
      bytes.append(UInt8(ascii: ":"))
    }
    needsComma = false
  }

  // MARK: Scalars

  /// Writes `null`.
  public mutating func writeNull() {
    separate()
    bytes.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])
  }

  /// Writes `true` or `false`.
  public mutating func write(_ value: Bool) {
    separate()
    if value {
      bytes.append(contentsOf: [0x74, 0x72, 0x75, 0x65])
    } else {
      bytes.append(contentsOf: [0x66, 0x61, 0x6C, 0x73, 0x65])
    }
  }

  /// Writes a number in the shortest round-trip form, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
  public mutating func write(_ value: Double) {
    guard value.isFinite else {
      separate()
      appendDouble(value)
      return
    }
    // The comma and the number with one append.
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { buffer in
      let out = buffer.baseAddress!
      let p = needsComma ? 1 : 0
      out[0] = UInt8(ascii: ",")
      let n = ShortestDouble.format(value, into: out + p, ShortestDoubleTables.shared)
      bytes.append(contentsOf: UnsafeBufferPointer(start: out, count: p &+ n))
    }
    needsComma = true
  }

  /// Writes an integer (as an integer literal, e.g. `3`).
  public mutating func write(_ value: Int) {
    separate()
    appendInteger(value)
  }

  /// Writes a string, escaping `"`, `\` and control characters.
  public mutating func write(_ value: String) {
    separate()
    appendString(value)
  }

  /// Writes already-encoded JSON text verbatim (the caller vouches that it is one valid JSON value).
  public mutating func writeRawValue(_ json: some Sequence<UInt8>) {
    separate()
    bytes.append(contentsOf: json)
  }

  /// Writes a whole value; numeric arrays take the fast path of ``write(doubles:shape:)-(UnsafeBufferPointer<Double>,_)``.
  public mutating func write(_ value: JSONValue) {
    switch value {
    case .null: writeNull()
    case .bool(let b): write(b)
    case .number(let d): write(d)
    case .string(let s): write(s)
    case .array(let a):
      if let (shape, data) = a.numericTensor {
        write(doubles: data, shape: shape)
      } else {
        beginArray()
        for element in a { write(element) }
        endArray()
      }
    case .object(let o):
      beginObject()
      for (k, v) in o {
        writeKey(k)
        write(v)
      }
      endObject()
    }
  }

  // MARK: Tensors

  /// Writes row-major `doubles` as nested arrays of the given shape (`shape: [2, 2]` gives `[[a,b],[c,d]]`;
  /// an empty shape writes the single number).
  ///
  /// - Precondition: the product of `shape` is `doubles.count`.
  public mutating func write(doubles: UnsafeBufferPointer<Double>, shape: [Int]) {
    var product = 1
    for d in shape { product = product.multipliedReportingOverflow(by: max(d, 0)).partialValue }
    precondition(product == doubles.count, "shape does not match the element count")
    separate()
    if shape.isEmpty {
      appendDouble(doubles[0])
      return
    }
    // About 22 bytes per number (17 significant digits, sign, point, exponent, comma), plus the brackets.
    reserveMore(doubles.count &* 22 &+ 16)
    var offset = 0
    appendNested(doubles, shape, 0, &offset)
  }

  /// Writes row-major `doubles` as nested arrays of the given shape.
  public mutating func write(doubles: [Double], shape: [Int]) {
    doubles.withUnsafeBufferPointer { write(doubles: $0, shape: shape) }
  }

  /// Writes `doubles` as a flat JSON array of numbers.
  public mutating func write(doubles: UnsafeBufferPointer<Double>) {
    write(doubles: doubles, shape: [doubles.count])
  }

  private mutating func appendNested(
    _ data: UnsafeBufferPointer<Double>, _ shape: [Int], _ dim: Int, _ offset: inout Int
  ) {
    bytes.append(UInt8(ascii: "["))
    let n = shape[dim]
    if dim == shape.count - 1 {
      appendNumbers(UnsafeBufferPointer(rebasing: data[offset..<offset + n]))
      offset += n
    } else {
      for i in 0..<n {
        if i > 0 { bytes.append(UInt8(ascii: ",")) }
        appendNested(data, shape, dim + 1, &offset)
      }
    }
    bytes.append(UInt8(ascii: "]"))
  }

  // MARK: Encoding primitives

  /// Appends comma-separated numbers, formatting them into a stack buffer that is flushed in large chunks.
  private mutating func appendNumbers(_ numbers: UnsafeBufferPointer<Double>) {
    guard let base = numbers.baseAddress, numbers.count > 0 else { return }
    let chunk = 4096
    let tables = ShortestDoubleTables.shared
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: chunk) { buffer in
      let out = buffer.baseAddress!
      var used = 0
      for i in 0..<numbers.count {
        // Room for a number and its comma.
        if used > chunk &- ShortestDouble.maxLength &- 1 {
          bytes.append(contentsOf: UnsafeBufferPointer(start: out, count: used))
          used = 0
        }
        let d = base[i]
        if d.isFinite {
          used &+= ShortestDouble.format(d, into: out + used, tables)
        } else {
          bytes.append(contentsOf: UnsafeBufferPointer(start: out, count: used))
          used = 0
          appendDouble(d)
        }
        out[used] = UInt8(ascii: ",")
        used &+= 1
      }
      // All but the last comma.
      bytes.append(contentsOf: UnsafeBufferPointer(start: out, count: used &- 1))
    }
  }

  /// Makes room for about `count` more bytes, growing geometrically, so one large tensor costs one reallocation
  /// at most.
  @inline(__always)
  mutating func reserveMore(_ count: Int) {
    let needed = bytes.count &+ count
    if needed > bytes.capacity { bytes.reserveCapacity(Swift.max(needed, 2 &* bytes.capacity)) }
  }

  /// Appends a double without any separator.
  @inline(__always)
  mutating func appendDouble(_ d: Double) {
    if !d.isFinite {
      if d.isNaN {
        bytes.append(contentsOf: [0x22, 0x4E, 0x61, 0x4E, 0x22])  // "NaN"
      } else if d > 0 {
        bytes.append(contentsOf: [0x22, 0x49, 0x6E, 0x66, 0x69, 0x6E, 0x69, 0x74, 0x79, 0x22])  // "Infinity"
      } else {
        bytes.append(contentsOf: [0x22, 0x2D, 0x49, 0x6E, 0x66, 0x69, 0x6E, 0x69, 0x74, 0x79, 0x22])
      }
      return
    }
    ShortestDouble.append(d, to: &bytes)
  }

  mutating func appendInteger(_ value: Int) {
    if value < 0 { bytes.append(UInt8(ascii: "-")) }
    appendDigits(value.magnitude)
  }

  @inline(__always)
  mutating func appendDigits(_ value: UInt) {
    var v = value
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buf in
      var i = 20
      repeat {
        i -= 1
        buf[i] = UInt8(truncatingIfNeeded: v % 10) &+ 0x30
        v /= 10
      } while v != 0
      bytes.append(contentsOf: UnsafeBufferPointer(rebasing: buf[i..<20]))
    }
  }

  mutating func appendString(_ s: String) {
    bytes.append(UInt8(ascii: "\""))
    var s = s
    s.withUTF8 { utf8 in
      var runStart = 0
      for i in 0..<utf8.count {
        let c = utf8[i]
        guard c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") else { continue }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i]))
        runStart = i + 1
        bytes.append(UInt8(ascii: "\\"))
        switch c {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(c)
        case 0x0A: bytes.append(UInt8(ascii: "n"))
        case 0x0D: bytes.append(UInt8(ascii: "r"))
        case 0x09: bytes.append(UInt8(ascii: "t"))
        case 0x08: bytes.append(UInt8(ascii: "b"))
        case 0x0C: bytes.append(UInt8(ascii: "f"))
        default:
          let hex: [UInt8] = Array("0123456789abcdef".utf8)
          bytes.append(contentsOf: [UInt8(ascii: "u"), 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 0xF)]])
        }
      }
      bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<utf8.count]))
    }
    bytes.append(UInt8(ascii: "\""))
  }
}
