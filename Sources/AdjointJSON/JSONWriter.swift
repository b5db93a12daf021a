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
///
/// A writer cannot be copied (it owns its buffer, so no write has to check whether the buffer is shared); pass it
/// `inout`.
public struct JSONWriter: ~Copyable, Sendable {
  /// The output buffer (owned by this writer alone).
  private var buffer: JSONWriterBuffer
  /// The number of bytes written.
  private var count = 0
  /// Whether the next value or key needs a comma before it.
  private var needsComma = false
  /// Recently written keys, rendered (empty until the first key; see `writeKey`).
  private var keyCache: [RenderedKey] = []

  /// A writer with an empty buffer that can grow to `capacity` bytes without reallocating.
  public init(capacity: Int = 0) {
    buffer = JSONWriterBuffer(capacity: Swift.max(capacity, 64))
  }

  /// The JSON text written so far (UTF-8). Getting it hands the buffer out without copying (the next write, if
  /// any, copies it first); setting it replaces the text.
  public var bytes: [UInt8] {
    get { buffer.take(count: count) }
    set {
      count = 0
      let out = reserve(newValue.count)
      newValue.withUnsafeBufferPointer { if let b = $0.baseAddress { out.update(from: b, count: $0.count) } }
      count = newValue.count
    }
  }

  /// The number of bytes written so far.
  public var byteCount: Int { count }

  /// The text written so far, as a string.
  public var string: String { String(decoding: UnsafeBufferPointer(start: buffer.base, count: count), as: UTF8.self) }

  /// Makes room for `n` more bytes; returns where the next byte goes.
  @inline(__always)
  mutating func reserve(_ n: Int) -> UnsafeMutablePointer<UInt8> {
    if _slowPath(count &+ n > buffer.capacity) { grow(n) }
    return buffer.base + count
  }

  @inline(never)
  private mutating func grow(_ n: Int) {
    let needed = count + n
    // An eighth more than needed: room for the small values that tend to follow a large one (the other tensors of a
    // response), without copying the large one again.
    let capacity = Swift.max(needed &+ needed / 8, 2 &* Swift.max(buffer.capacity, count), 64)
    let new = JSONWriterBuffer(capacity: capacity)
    new.base.update(from: buffer.base, count: count)
    buffer = new
  }

  /// Counts `n` bytes written at the pointer ``reserve(_:)`` returned.
  @inline(__always)
  mutating func advance(by n: Int) { count &+= n }

  /// Appends one byte.
  @inline(__always)
  mutating func append(_ byte: UInt8) {
    reserve(1).pointee = byte
    count &+= 1
  }

  /// Appends bytes.
  @inline(__always)
  mutating func append(_ bytes: UnsafeRawBufferPointer) {
    guard let base = bytes.baseAddress, bytes.count > 0 else { return }
    let out = reserve(bytes.count)
    UnsafeMutableRawPointer(out).copyMemory(from: base, byteCount: bytes.count)
    count &+= bytes.count
  }

  /// Appends a (short) static string.
  @inline(__always)
  mutating func append(_ text: StaticString) {
    append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
  }

  /// Appends `c` and marks that a value follows, with the comma before it if needed.
  @inline(__always)
  private mutating func open(_ c: UInt8) {
    let out = reserve(2)
    out[0] = UInt8(ascii: ",")
    let p = needsComma ? 1 : 0
    out[p] = c
    count &+= p &+ 1
    needsComma = false
  }

  @inline(__always)
  private mutating func separate() {
    if needsComma { append(UInt8(ascii: ",")) }
    needsComma = true
  }

  // MARK: Structure

  /// Writes `[`.
  public mutating func beginArray() { open(UInt8(ascii: "[")) }

  /// Writes `]`.
  public mutating func endArray() {
    append(UInt8(ascii: "]"))
    needsComma = true
  }

  /// Writes `{`.
  public mutating func beginObject() { open(UInt8(ascii: "{")) }

  /// Writes `}`.
  public mutating func endObject() {
    append(UInt8(ascii: "}"))
    needsComma = true
  }

  /// Appends `fragment` verbatim, with no comma before it, and writes the next value without a comma either: for a
  /// caller that writes the same structure many times from pieces rendered once (e.g. `,{"value":` before each
  /// number of a batch). The caller vouches that the pieces and the values between them make valid JSON.
  public mutating func writeFragment(_ fragment: [UInt8]) {
    fragment.withUnsafeBytes { writeFragment($0) }
  }

  /// ``writeFragment(_:)-([UInt8])`` of bytes the caller holds: a loop over many values then retains no array per
  /// value.
  public mutating func writeFragment(_ fragment: UnsafeRawBufferPointer) {
    append(fragment)
    needsComma = false
  }

  /// Writes an object key and the `:` after it; the member's value comes next.
  public mutating func writeKey(_ key: String) {
    // Fastest path: a key written before (responses repeat a few keys), copied from the cache.
    // (A string is two words on 64-bit platforms; elsewhere the cache is not used.)
    let identity =
      MemoryLayout<String>.size == 16 ? unsafeBitCast(key, to: (UInt64, UInt64).self) : (0, 0)
    let slot = Int(truncatingIfNeeded: ((identity.0 ^ identity.1) &* 0x9E37_79B9_7F4A_7C15) &>> 61)
    if slot < keyCache.count && keyCache[slot].identity == identity {
      let out = reserve(32)
      out[0] = UInt8(ascii: ",")
      let p = needsComma ? 1 : 0
      let raw = UnsafeMutableRawPointer(out + p)
      let text = keyCache[slot].text
      raw.storeBytes(of: text.0, as: UInt64.self)
      raw.storeBytes(of: text.1, toByteOffset: 8, as: UInt64.self)
      raw.storeBytes(of: text.2, toByteOffset: 16, as: UInt64.self)
      count &+= p &+ keyCache[slot].length
      needsComma = false
      return
    }
    var contiguous = key
    // Fast path: a short key without anything to escape, copied straight into the buffer (`,"key":`) while
    // checking it.
    let done = contiguous.withUTF8 { utf8 -> Bool in
      let n = utf8.count
      guard n <= 64, let source = utf8.baseAddress else { return false }
      let out = reserve(n &+ 28)  // (room to read 24 bytes from the key's opening quote)
      out[0] = UInt8(ascii: ",")
      var p = needsComma ? 1 : 0
      out[p] = UInt8(ascii: "\"")
      p &+= 1
      var special: UInt8 = 0
      for i in 0..<n {
        let c = source[i]
        out[p &+ i] = c
        special |= (c &- 0x20) | ((c ^ 0x22) &- 1) & ~(c ^ 0x22) | ((c ^ 0x5C) &- 1) & ~(c ^ 0x5C)
      }
      // Bit 7 of `special` is set by a control character (c - 0x20 wraps), a quote or a backslash (x - 1 wraps
      // for x = 0), and by most bytes >= 0x80 (harmless: the slow path copies them unchanged).
      if special & 0x80 != 0 { return false }
      let start = p &- 1
      p &+= n
      out[p] = UInt8(ascii: "\"")
      out[p &+ 1] = UInt8(ascii: ":")
      count &+= p &+ 2
      if n <= 21 && identity != (0, 0) && count > 256 {
        // `"key":` fits in three words: remember it (once the text is long enough for keys to repeat: a small
        // answer, of a few keys, is not worth the cache's allocation).
        if keyCache.isEmpty { keyCache = Array(repeating: RenderedKey(), count: 8) }
        let raw = UnsafeRawPointer(out + start)
        keyCache[slot] = RenderedKey(
          key: key, identity: identity,
          text: (
            raw.loadUnaligned(as: UInt64.self), raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
            raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
          ), length: n &+ 3)
      }
      return true
    }
    if !done {
      separate()
      appendString(key)
      append(UInt8(ascii: ":"))
    }
    needsComma = false
  }

  // MARK: Scalars

  /// Writes `null`.
  public mutating func writeNull() {
    separate()
    append("null")
  }

  /// Writes `true` or `false`.
  public mutating func write(_ value: Bool) {
    separate()
    if value { append("true") } else { append("false") }
  }

  /// Writes a number in the shortest round-trip form, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
  public mutating func write(_ value: Double) {
    guard value.isFinite else {
      separate()
      appendDouble(value)
      return
    }
    // The comma and the number straight into the buffer.
    let out = reserve(ShortestDouble.scratchLength &+ 1)
    out[0] = UInt8(ascii: ",")
    let p = needsComma ? 1 : 0
    count &+= p &+ ShortestDouble.format(value, into: out + p, buffer.tables)
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
    let done: Void? = json.withContiguousStorageIfAvailable { append(UnsafeRawBufferPointer($0)) }
    if done == nil {
      for byte in json { append(byte) }
    }
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
    var arrays = 0  // the number of '[' to write
    for d in shape {
      arrays = arrays.addingReportingOverflow(product).partialValue
      product = product.multipliedReportingOverflow(by: max(d, 0)).partialValue
    }
    precondition(product == doubles.count, "shape does not match the element count")
    if shape.isEmpty {
      write(doubles[0])
      return
    }
    separate()
    // Room for every number and its comma, and for every array's brackets and comma, reserved once: the numbers
    // are then formatted straight into the buffer.
    let out = reserve(doubles.count &* (ShortestDouble.maxLength &+ 1) &+ arrays &* 3 &+ ShortestDouble.scratchLength)
    var used = 0
    var offset = 0
    shape.withUnsafeBufferPointer { shape in
      JSONWriter.writeNested(doubles, shape, 0, &offset, out, &used)
    }
    count &+= used
  }

  /// Writes row-major `doubles` as nested arrays of the given shape.
  public mutating func write(doubles: [Double], shape: [Int]) {
    doubles.withUnsafeBufferPointer { write(doubles: $0, shape: shape) }
  }

  /// Writes `doubles` as a flat JSON array of numbers.
  public mutating func write(doubles: UnsafeBufferPointer<Double>) {
    write(doubles: doubles, shape: [doubles.count])
  }

  /// Writes the nested array of dimension `dim` at `out + used` (room reserved by the caller).
  private static func writeNested(
    _ data: UnsafeBufferPointer<Double>, _ shape: UnsafeBufferPointer<Int>, _ dim: Int, _ offset: inout Int,
    _ out: UnsafeMutablePointer<UInt8>, _ used: inout Int
  ) {
    out[used] = UInt8(ascii: "[")
    used &+= 1
    let n = shape[dim]
    if dim == shape.count &- 1 {
      if n > 0 {
        used &+= writeNumbers(data.baseAddress! + offset, n, out + used)
        offset &+= n
      }
    } else {
      for i in 0..<n {
        if i > 0 {
          out[used] = UInt8(ascii: ",")
          used &+= 1
        }
        writeNested(data, shape, dim &+ 1, &offset, out, &used)
      }
    }
    out[used] = UInt8(ascii: "]")
    used &+= 1
  }

  /// Writes `n` (> 0) comma-separated numbers at `out` (room reserved by the caller: `maxLength + 1` bytes per
  /// number, and `scratchLength` more); returns the byte count.
  private static func writeNumbers(_ numbers: UnsafePointer<Double>, _ n: Int, _ out: UnsafeMutablePointer<UInt8>)
    -> Int
  {
    let tables = ShortestDoubleTables.shared
    var used = 0
    for i in 0..<n {
      let d = numbers[i]
      if _fastPath(d.isFinite) {
        used &+= ShortestDouble.format(d, into: out + used, tables)
      } else {
        used &+= writeNonFinite(d, out + used)
      }
      out[used] = UInt8(ascii: ",")
      used &+= 1
    }
    return used &- 1  // all but the last comma
  }

  /// Writes `"NaN"`, `"Infinity"` or `"-Infinity"` at `out` (at most 11 bytes); returns the byte count.
  @inline(never)
  private static func writeNonFinite(_ d: Double, _ out: UnsafeMutablePointer<UInt8>) -> Int {
    let text: StaticString = d.isNaN ? "\"NaN\"" : d > 0 ? "\"Infinity\"" : "\"-Infinity\""
    out.update(from: text.utf8Start, count: text.utf8CodeUnitCount)
    return text.utf8CodeUnitCount
  }

  // MARK: Encoding primitives

  /// Appends a double without any separator.
  @inline(__always)
  mutating func appendDouble(_ d: Double) {
    let out = reserve(ShortestDouble.scratchLength)
    if !d.isFinite {
      count &+= JSONWriter.writeNonFinite(d, out)
    } else {
      count &+= ShortestDouble.format(d, into: out, buffer.tables)
    }
  }

  mutating func appendInteger(_ value: Int) {
    let out = reserve(24)
    var p = 0
    if value < 0 {
      out[0] = UInt8(ascii: "-")
      p = 1
    }
    count &+= p &+ ShortestDouble.writeDigits(UInt64(value.magnitude), out + p)
  }

  mutating func appendString(_ s: String) {
    append(UInt8(ascii: "\""))
    var s = s
    s.withUTF8 { utf8 in
      var runStart = 0
      for i in 0..<utf8.count {
        let c = utf8[i]
        guard c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") else { continue }
        append(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(utf8)[runStart..<i]))
        runStart = i + 1
        append(UInt8(ascii: "\\"))
        switch c {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): append(c)
        case 0x0A: append(UInt8(ascii: "n"))
        case 0x0D: append(UInt8(ascii: "r"))
        case 0x09: append(UInt8(ascii: "t"))
        case 0x08: append(UInt8(ascii: "b"))
        case 0x0C: append(UInt8(ascii: "f"))
        default:
          let hex: StaticString = "0123456789abcdef"
          let out = reserve(5)
          out[0] = UInt8(ascii: "u")
          out[1] = 0x30
          out[2] = 0x30
          out[3] = hex.utf8Start[Int(c >> 4)]
          out[4] = hex.utf8Start[Int(c & 0xF)]
          count &+= 5
        }
      }
      append(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(utf8)[runStart..<utf8.count]))
    }
    append(UInt8(ascii: "\""))
  }
}

/// A key as written (`"key":`, at most 24 bytes), found by the identity of the string: the raw bits of its two
/// words, which (while `key` keeps the string's storage alive) no other string with other contents has.
private struct RenderedKey {
  var key = ""
  var identity: (UInt64, UInt64) = (0, 0)  // matches no string: an empty one has a discriminator bit set
  var text: (UInt64, UInt64, UInt64) = (0, 0, 0)
  var length = 0
}

/// The storage of a ``JSONWriter``: an array kept at its full capacity, written through a pointer to its elements,
/// so numbers are formatted straight into it and the finished text is handed out without a copy.
final class JSONWriterBuffer: @unchecked Sendable {
  // Safe to send: only one (noncopyable) writer holds a buffer, and it copies the buffer before writing once the
  // array has been handed out, so a buffer that is shared with an array is never written.
  /// The storage: `count == capacity` while writable (the bytes past the writer's count are unused).
  private var array: [UInt8]
  /// The first element of `array`'s storage (stable: the array is never resized while writable).
  let base: UnsafeMutablePointer<UInt8>
  /// How many bytes may be written at `base`; 0 once the array has been handed out by ``take(count:)``.
  ///
  /// Read before every write, so not checked for exclusive access at run time (that check cost about a tenth of
  /// writing a batch's numbers): only the one writer that owns the buffer reads or sets it.
  @exclusivity(unchecked) private(set) var capacity: Int
  /// The number formatter's tables, fetched once per buffer rather than once per number.
  let tables = ShortestDoubleTables.shared

  init(capacity: Int) {
    var storage = [UInt8](unsafeUninitializedCapacity: capacity) { _, initialized in initialized = capacity }
    base = storage.withUnsafeMutableBufferPointer { $0.baseAddress! }
    array = storage
    self.capacity = capacity
  }

  /// The first `count` bytes, as an array sharing this buffer's storage; the buffer is read-only afterwards.
  func take(count: Int) -> [UInt8] {
    var storage = array
    array = []
    if storage.count != count { storage.removeSubrange(count...) }
    array = storage
    capacity = 0
    return storage
  }
}
