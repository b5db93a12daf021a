/// Runs `body(0)`, …, `body(count - 1)`, on as many threads as it likes, and returns when all have returned.
public typealias JSONParallelFor = @Sendable (_ count: Int, _ body: @escaping @Sendable (Int) -> Void) -> Void

/// A strict RFC 8259 JSON parser.
///
/// - No trailing commas, comments, leading zeros, `NaN`/`Infinity` literals, or byte order mark; strings must be
///   valid UTF-8 without raw control characters; `\u` escapes must pair surrogates; keys must be unique.
/// - Numbers become the correctly rounded double; a literal beyond the double range (`1e400`) is an error,
///   underflow to a subnormal or zero is not.
/// - Iterative (no recursion), with a nesting limit (``JSONLimits/maxDepth``, inclusive).
/// - Never reads outside the input buffer, whatever the input.
///
/// A rectangular nested array of numbers, such as a tensor `[[1, 2], [3, 4]]`, is parsed straight into one
/// contiguous `[Double]` with its shape (see ``JSONArray/numericTensor``); anything else inside an array
/// (a string, an object, a ragged row, ...) falls back to the general representation, with each rectangular
/// numeric sub-array still stored compactly.
public enum JSONParser {
  /// Parses one JSON document (surrounding whitespace allowed) from raw UTF-8 bytes.
  ///
  /// With `parallelFor`, an array of arrays (a matrix) of at least `parallelMinimumBytes` of text (256 KiB by
  /// default) is parsed in slices of its rows through it, so on several threads at once if it runs them so; the
  /// result and the errors are the same as without it.
  public static func parse(
    _ bytes: UnsafeRawBufferPointer, limits: JSONLimits = .default, parallelFor: JSONParallelFor? = nil,
    parallelMinimumBytes: Int = 1 << 18
  ) throws(JSONError) -> JSONValue {
    guard let base = bytes.baseAddress, bytes.count > 0 else {
      throw JSONError(kind: .syntax, offset: 0, message: "unexpected end of input, expected a value")
    }
    var parser = Parser(base: base.assumingMemoryBound(to: UInt8.self), count: bytes.count, limits: limits)
    parser.parallelFor = parallelFor
    parser.parallelMinimumBytes = max(16, parallelMinimumBytes)
    return try parser.parseDocument()
  }

  /// Parses one JSON document from raw UTF-8 bytes (`parallelFor` and `parallelMinimumBytes` as for an
  /// `UnsafeRawBufferPointer`).
  public static func parse(
    _ bytes: [UInt8], limits: JSONLimits = .default, parallelFor: JSONParallelFor? = nil,
    parallelMinimumBytes: Int = 1 << 18
  ) throws(JSONError) -> JSONValue {
    let result: Result<JSONValue, JSONError> = bytes.withUnsafeBytes { raw in
      do throws(JSONError) {
        return .success(
          try parse(raw, limits: limits, parallelFor: parallelFor, parallelMinimumBytes: parallelMinimumBytes))
      } catch {
        return .failure(error)
      }
    }
    return try result.get()
  }

  /// Parses one JSON document from a string.
  public static func parse(_ text: String, limits: JSONLimits = .default) throws(JSONError) -> JSONValue {
    var text = text
    let result: Result<JSONValue, JSONError> = text.withUTF8 { buffer in
      do throws(JSONError) {
        return .success(try parse(UnsafeRawBufferPointer(buffer), limits: limits))
      } catch {
        return .failure(error)
      }
    }
    return try result.get()
  }
}

/// One open array or object of the general (non-numeric) path.
private struct Frame {
  var isObject: Bool
  /// Where this container's elements start in `Parser.values` (an array), or its members in `Parser.members` (an
  /// object).
  var start: Int
  /// The number of elements (or members) so far.
  var count = 0
  /// The key whose value is being parsed (an object, between the key and the end of its value), else `nil`.
  var pendingKey: String? = nil
  /// The offset of `pendingKey`'s opening quote.
  var pendingKeyOffset = 0

  init(isObject: Bool, start: Int) {
    self.isObject = isObject
    self.start = start
  }
}

/// A key of at most 16 bytes and its bytes, packed into two words.
private struct KeyCacheEntry {
  var lo: UInt64
  var hi: UInt64
  var length: Int
  var key: String
}

/// A stack that hands its top elements over to a new array by moving them (one `memcpy`, no retain/release),
/// so closing a container costs one allocation.
///
/// It allocates on its first `append`, so a small document that never uses it (most of the parser's stacks, for a
/// request of a few fields) pays nothing for it.
private struct MoveStack<Element>: ~Copyable {
  /// The storage: `capacity` elements, the first `count` initialized; `nil` until the first `append`.
  private var storage: UnsafeMutablePointer<Element>?
  private var capacity = 0
  /// The number of elements.
  private(set) var count = 0

  init() {}

  deinit {
    if let storage {
      storage.deinitialize(count: count)
      storage.deallocate()
    }
  }

  /// The storage; only read when `count > 0` or just after `grow()`, so it exists.
  @inline(__always)
  private var base: UnsafeMutablePointer<Element> { storage.unsafelyUnwrapped }

  @inline(__always)
  mutating func append(_ element: consuming Element) {
    if count == capacity { grow() }
    (base + count).initialize(to: element)
    count &+= 1
  }

  @inline(never)
  private mutating func grow() {
    let newCapacity = max(16, capacity * 2)
    let newBase = UnsafeMutablePointer<Element>.allocate(capacity: newCapacity)
    if let storage {
      newBase.moveInitialize(from: storage, count: count)
      storage.deallocate()
    }
    storage = newBase
    capacity = newCapacity
  }

  /// The element at `i` (`0 <= i < count`).
  @inline(__always)
  subscript(i: Int) -> Element {
    precondition(i >= 0 && i < count)
    return base[i]
  }

  /// Removes every element.
  mutating func removeAll() {
    if count > 0 { base.deinitialize(count: count) }
    count = 0
  }

  /// Moves every element to `target` (uninitialized or of a trivial type), leaving none; returns how many.
  mutating func moveAll(to target: UnsafeMutablePointer<Element>) -> Int {
    let n = count
    if n == 0 { return 0 }
    target.moveInitialize(from: base, count: n)
    count = 0
    return n
  }

  /// Moves the elements `start..<count` into a new array, leaving `start` elements.
  @inline(__always)
  mutating func popArray(from start: Int) -> [Element] {
    precondition(start >= 0 && start <= count)
    let n = count &- start
    if n == 0 { return [] }
    let source = base + start
    let array = [Element](unsafeUninitializedCapacity: n) { buffer, initialized in
      buffer.baseAddress!.moveInitialize(from: source, count: n)
      initialized = n
    }
    count = start
    return array
  }
}

/// The offset of the first block of 32 bytes from `start` on in which `marks` flags a byte (or of the last, shorter,
/// block). Inlined into small functions of their own (below), where the vector comparisons compile to vector
/// instructions; their operands are vectors throughout, since the scalar-broadcasting operators are not
/// specialized as well.
@inline(__always)
private func skipBlocks(
  _ b: UnsafePointer<UInt8>, _ start: Int, _ count: Int, _ marks: (SIMD16<UInt8>) -> SIMDMask<SIMD16<Int8>>
) -> Int {
  var p = start
  while p &+ 32 <= count {
    let raw = UnsafeRawPointer(b + p)
    let found =
      marks(raw.loadUnaligned(as: SIMD16<UInt8>.self))
      .| marks(raw.loadUnaligned(fromByteOffset: 16, as: SIMD16<UInt8>.self))
    let words = unsafeBitCast(found, to: SIMD2<UInt64>.self)
    if words[0] | words[1] != 0 { break }
    p &+= 32
  }
  return p
}

/// The offset of the first block of 32 bytes from `start` on that holds a quote, a backslash, a control character
/// or a byte >= 0x80 (or of the last, shorter, block).
@inline(never)
private func skipPlainASCII(_ b: UnsafePointer<UInt8>, _ start: Int, _ count: Int) -> Int {
  let quote = SIMD16<UInt8>(repeating: 0x22)
  let backslash = SIMD16<UInt8>(repeating: 0x5C)
  let space = SIMD16<UInt8>(repeating: 0x20)
  let range = SIMD16<UInt8>(repeating: 0x60)
  // A control character or a byte >= 0x80 is outside 0x20 ..< 0x80.
  return skipBlocks(b, start, count) { v in ((v &- space) .>= range) .| (v .== quote) .| (v .== backslash) }
}

/// The offset of the first block of 32 bytes from `start` on that holds a `[`, `]`, `"` or `{` (or of the last,
/// shorter, block).
@inline(never)
private func skipToStructural(_ b: UnsafePointer<UInt8>, _ start: Int, _ count: Int) -> Int {
  let open = SIMD16<UInt8>(repeating: UInt8(ascii: "["))
  let close = SIMD16<UInt8>(repeating: UInt8(ascii: "]"))
  let quote = SIMD16<UInt8>(repeating: UInt8(ascii: "\""))
  let brace = SIMD16<UInt8>(repeating: UInt8(ascii: "{"))
  return skipBlocks(b, start, count) { v in (v .== open) .| (v .== close) .| (v .== quote) .| (v .== brace) }
}

@inline(__always)
private func isWhitespace(_ c: UInt8) -> Bool {
  c <= 0x20 && (c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09)
}

/// One slice's share of `Parser.tryLargeNumericArray`: pointers into the text and into the result that outlive
/// every slice (the call returns only when all have run), each slice writing only its own rows and flag.
private struct SliceTask: @unchecked Sendable {
  let text: UnsafePointer<UInt8>
  let count: Int
  let maxDepth: Int
  let rows: [Int]
  let bounds: [Int]
  let end: Int
  let rowShape: [Int]
  let rowCount: Int
  let out: UnsafeMutablePointer<Double>
  let parsed: UnsafeMutablePointer<Bool>

  func run(_ k: Int) {
    parsed[k] = Parser.parseRows(
      text, count, maxDepth, rows, bounds[k]..<bounds[k &+ 1], end: end, rowShape: rowShape,
      into: out + bounds[k] &* rowCount)
  }
}

private struct Parser: ~Copyable {
  let b: UnsafePointer<UInt8>
  let count: Int
  let maxDepth: Int
  var pos = 0

  // The general path keeps the elements of every open container on shared stacks (no nested copy-on-write).
  var frames: [Frame] = []
  /// The elements of the open arrays.
  var values = MoveStack<JSONValue>()
  /// The members of the open objects.
  var members = MoveStack<JSONObject.Member>()
  /// The offsets of the keys of `members` (the same indices).
  var keyOffsets: [Int] = []

  // The numeric fast path's scratch stacks, one entry per nesting level of the attempt.
  var fastCounts: [Int] = []
  var fastStarts: [Int] = []
  var fastDims: [Int] = []
  /// Offsets of `[` whose numeric attempt is known to fail (ascending); see `tryNumericArray`.
  var failedStarts: [Int] = []
  var failedCursor = 0
  /// The numbers of the numeric array being parsed (see `scanNumericArray`), reused from one array to the next.
  var numbers = MoveStack<Double>()

  var scratch: [UInt8] = []

  /// Recently seen object keys (see `cachedKey`): empty until the first key, then 16 entries.
  var keyCache: [KeyCacheEntry] = []

  /// Runs the slices of a large numeric array (see `tryLargeNumericArray`); `nil`: no slicing.
  var parallelFor: JSONParallelFor?
  /// `tryLargeNumericArray` is not tried below this offset: an attempt that covered it failed.
  var parallelBarrier = 0
  /// The smallest array (in bytes of text) that `tryLargeNumericArray` splits.
  var parallelMinimumBytes = 1 << 18
  /// The most slices `tryLargeNumericArray` makes (more than threads, so that a thread that turns idle late still
  /// finds some).
  static let maxSlices = 8

  init(base: UnsafePointer<UInt8>, count: Int, limits: JSONLimits) {
    self.b = base
    self.count = count
    self.maxDepth = limits.maxDepth
  }

  // MARK: Errors

  /// The pointer of the value being parsed, from the open containers.
  func currentPointer() -> JSONPointer {
    var components: [String] = []
    for frame in frames {
      if frame.isObject {
        if let key = frame.pendingKey {
          components.append(key)
        } else {
          break
        }
      } else {
        components.append(String(frame.count))
      }
    }
    return JSONPointer(components: components)
  }

  func error(_ kind: JSONError.Kind, _ offset: Int, _ message: String) -> JSONError {
    JSONError(kind: kind, offset: offset, message: message, pointer: currentPointer())
  }

  func error(_ offset: Int, _ message: String) -> JSONError {
    error(.syntax, offset, message)
  }

  func describeByte(at offset: Int) -> String {
    guard offset < count else { return "end of input" }
    let c = b[offset]
    if c >= 0x20 && c < 0x7F { return "'\(Character(Unicode.Scalar(c)))'" }
    let hex = String(c, radix: 16, uppercase: true)
    return "byte 0x\(hex.count == 1 ? "0" + hex : hex)"
  }

  func unexpected(_ offset: Int, expected: String) -> JSONError {
    if offset >= count { return error(offset, "unexpected end of input, \(expected)") }
    return error(offset, "unexpected \(describeByte(at: offset)), \(expected)")
  }

  // MARK: Document

  @inline(__always)
  mutating func skipWhitespace() {
    while pos < count && isWhitespace(b[pos]) { pos += 1 }
  }

  mutating func parseDocument() throws(JSONError) -> JSONValue {
    if count >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
      throw error(0, "a byte order mark is not allowed")
    }
    let value = try parseValue()
    skipWhitespace()
    if pos < count {
      throw error(pos, "unexpected \(describeByte(at: pos)) after the JSON value")
    }
    return value
  }

  mutating func depthError(_ offset: Int) -> JSONError {
    error(.tooDeep, offset, "nesting depth \(frames.count + 1) is over the limit of \(maxDepth)")
  }

  /// Parses a whole value (iteratively, however deeply nested).
  mutating func parseValue() throws(JSONError) -> JSONValue {
    parsing: while true {
      skipWhitespace()
      guard pos < count else { throw unexpected(pos, expected: "expected a value") }
      var value: JSONValue
      let c = b[pos]
      switch c {
      case UInt8(ascii: "["):
        if frames.count + 1 > maxDepth { throw depthError(pos) }
        if !isFailedStart(pos), let array = tryLargeNumericArray() ?? tryNumericArray() {
          value = .array(array)
        } else if let array = tryRecordArray() {
          value = .array(array)
        } else {
          frames.append(Frame(isObject: false, start: values.count))
          pos += 1
          skipWhitespace()
          if pos < count && b[pos] == UInt8(ascii: "]") {
            pos += 1
            frames.removeLast()
            value = .array(JSONArray())
          } else {
            continue parsing
          }
        }
      case UInt8(ascii: "{"):
        if frames.count + 1 > maxDepth { throw depthError(pos) }
        if let object = tryFlatObject() {
          value = .object(object)
          break
        }
        frames.append(Frame(isObject: true, start: members.count))
        pos += 1
        skipWhitespace()
        if pos < count && b[pos] == UInt8(ascii: "}") {
          pos += 1
          frames.removeLast()
          value = .object(JSONObject())
        } else {
          try parseKey(expected: "expected a string key or '}'")
          continue parsing
        }
      case UInt8(ascii: "\""):
        value = .string(try parseString())
      case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
        do {
          value = .number(try scanNumber(b, count, &pos))
        } catch {
          throw self.error(error.kind, error.offset, error.message)
        }
      case UInt8(ascii: "t"):
        try expectLiteral("true")
        value = .bool(true)
      case UInt8(ascii: "f"):
        try expectLiteral("false")
        value = .bool(false)
      case UInt8(ascii: "n"):
        try expectLiteral("null")
        value = .null
      default:
        throw unexpected(pos, expected: "expected a value")
      }

      // `value` is complete: attach it to the enclosing containers, closing those that end here.
      while true {
        let last = frames.count &- 1
        guard last >= 0 else { return value }
        let top = frames[last]
        if top.isObject {
          members.append(JSONObject.Member(key: frames[last].pendingKey.take()!, value: value))
          keyOffsets.append(top.pendingKeyOffset)
        } else {
          values.append(value)
        }
        frames[last].count &+= 1
        skipWhitespace()
        guard pos < count else {
          throw unexpected(
            pos,
            expected: top.isObject
              ? "expected ',' or '}' after object member" : "expected ',' or ']' after array element")
        }
        let c = b[pos]
        if top.isObject {
          if c == UInt8(ascii: ",") {
            pos += 1
            skipWhitespace()
            try parseKey(expected: "expected a string key after ','")
            continue parsing
          } else if c == UInt8(ascii: "}") {
            value = .object(try closeObject(top))
            pos += 1
          } else {
            throw unexpected(pos, expected: "expected ',' or '}' after object member")
          }
        } else {
          if c == UInt8(ascii: ",") {
            pos += 1
            skipWhitespace()
            if pos < count && b[pos] == UInt8(ascii: "]") {
              throw error(pos, "unexpected ']', expected a value (trailing commas are not allowed)")
            }
            continue parsing
          } else if c == UInt8(ascii: "]") {
            let elements = values.popArray(from: top.start)
            frames.removeLast()
            value = .array(JSONArray(elements))
            pos += 1
          } else {
            throw unexpected(pos, expected: "expected ',' or ']' after array element")
          }
        }
      }
    }
  }

  /// Parses `"key"` and the following `:` (whitespace skipped before the key already).
  mutating func parseKey(expected: String) throws(JSONError) {
    guard pos < count, b[pos] == UInt8(ascii: "\"") else {
      if pos < count && b[pos] == UInt8(ascii: "}") && expected.hasSuffix("','") {
        throw error(pos, "unexpected '}', expected a string key (trailing commas are not allowed)")
      }
      throw unexpected(pos, expected: expected)
    }
    let offset = pos
    let key = try parseString()
    frames[frames.count &- 1].pendingKey = key
    frames[frames.count &- 1].pendingKeyOffset = offset
    skipWhitespace()
    guard pos < count, b[pos] == UInt8(ascii: ":") else {
      throw unexpected(pos, expected: "expected ':' after object key")
    }
    pos += 1
  }

  mutating func closeObject(_ top: Frame) throws(JSONError) -> JSONObject {
    let start = top.start
    let end = members.count
    var index: [String: Int]? = nil
    if end - start > JSONObject.indexThreshold {
      var idx = [String: Int](minimumCapacity: end - start)
      for i in start..<end {
        let k = members[i].key
        if idx.updateValue(i - start, forKey: k) != nil {
          throw duplicateKey(k, at: keyOffsets[i])
        }
      }
      index = idx
    } else {
      for i in start..<end {
        let k = members[i].key
        for j in start..<i where members[j].key == k {
          throw duplicateKey(k, at: keyOffsets[i])
        }
      }
    }
    let object = JSONObject(uncheckedMembers: members.popArray(from: start), index: index)
    keyOffsets.removeSubrange(start...)
    frames.removeLast()
    return object
  }

  func duplicateKey(_ key: String, at offset: Int) -> JSONError {
    var pointer = currentPointer()
    pointer.components.append(key)
    return JSONError(kind: .duplicateKey, offset: offset, message: "duplicate key '\(key)'", pointer: pointer)
  }

  mutating func expectLiteral(_ literal: StaticString) throws(JSONError) {
    let n = literal.utf8CodeUnitCount
    let lit = literal.utf8Start
    for i in 0..<n {
      guard pos + i < count, b[pos + i] == lit[i] else {
        throw unexpected(pos + i, expected: i == 0 ? "expected a value" : "expected '\(literal)'")
      }
    }
    pos += n
  }

  // MARK: Strings

  /// Parses the string whose opening quote is at `pos`.
  mutating func parseString() throws(JSONError) -> String {
    let start = pos + 1
    var p = start
    while p < count {
      // 32 plain ASCII bytes at a time (two vectors, one test): long strings, such as base64 tensors.
      p = skipPlainASCII(b, p, count)
      // Eight plain ASCII bytes at a time (no quote, backslash, control character or byte >= 0x80): long strings,
      // such as base64 tensors, are scanned word by word. A word with anything else goes to the byte loop below.
      while p &+ 8 <= count {
        let v = UnsafeRawPointer(b + p).loadUnaligned(as: UInt64.self)
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        let quote = v ^ (ones &* 0x22)
        let backslash = v ^ (ones &* 0x5C)
        let special =
          ((v &- ones &* 0x20) & ~v) | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | v
        if special & high != 0 { break }
        p &+= 8
      }
      guard p < count else { break }
      let c = b[p]
      if c == UInt8(ascii: "\"") {
        pos = p + 1
        return String(decoding: UnsafeBufferPointer(start: b + start, count: p - start), as: UTF8.self)
      }
      if c == UInt8(ascii: "\\") {
        return try parseEscapedString(start: start, firstEscape: p)
      }
      if c < 0x20 {
        throw error(p, "unescaped control character \(describeByte(at: p)) in a string")
      }
      if c < 0x80 {
        p += 1
      } else {
        p = try validateUTF8Sequence(at: p)
      }
    }
    throw error(pos, "unterminated string")
  }

  /// Validates one multi-byte UTF-8 sequence starting at `p` (a byte >= 0x80); returns the offset after it.
  func validateUTF8Sequence(at p: Int) throws(JSONError) -> Int {
    let c0 = b[p]
    var length = 0
    var lower: UInt8 = 0x80
    var upper: UInt8 = 0xBF
    switch c0 {
    case 0xC2...0xDF: length = 2
    case 0xE0:
      length = 3
      lower = 0xA0
    case 0xE1...0xEC, 0xEE...0xEF: length = 3
    case 0xED:
      length = 3
      upper = 0x9F
    case 0xF0:
      length = 4
      lower = 0x90
    case 0xF1...0xF3: length = 4
    case 0xF4:
      length = 4
      upper = 0x8F
    default:
      throw error(p, "invalid UTF-8 in a string")
    }
    guard p + length <= count else { throw error(p, "invalid UTF-8 in a string (truncated sequence)") }
    let c1 = b[p + 1]
    guard c1 >= lower && c1 <= upper else { throw error(p, "invalid UTF-8 in a string") }
    for i in 2..<length where b[p + i] & 0xC0 != 0x80 {
      throw error(p, "invalid UTF-8 in a string")
    }
    return p + length
  }

  mutating func parseEscapedString(start: Int, firstEscape: Int) throws(JSONError) -> String {
    scratch.removeAll(keepingCapacity: true)
    scratch.append(contentsOf: UnsafeBufferPointer(start: b + start, count: firstEscape - start))
    var p = firstEscape
    while p < count {
      let c = b[p]
      if c == UInt8(ascii: "\"") {
        pos = p + 1
        return String(decoding: scratch, as: UTF8.self)
      }
      if c == UInt8(ascii: "\\") {
        guard p + 1 < count else { break }
        let e = b[p + 1]
        switch e {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scratch.append(e)
        case UInt8(ascii: "b"): scratch.append(0x08)
        case UInt8(ascii: "f"): scratch.append(0x0C)
        case UInt8(ascii: "n"): scratch.append(0x0A)
        case UInt8(ascii: "r"): scratch.append(0x0D)
        case UInt8(ascii: "t"): scratch.append(0x09)
        case UInt8(ascii: "u"):
          var scalar = try hex4(at: p + 2)
          var next = p + 6
          if scalar >= 0xD800 && scalar <= 0xDBFF {
            guard next + 1 < count, b[next] == UInt8(ascii: "\\"), b[next + 1] == UInt8(ascii: "u") else {
              throw error(p, "unpaired high surrogate in \\u escape")
            }
            let low = try hex4(at: next + 2)
            guard low >= 0xDC00 && low <= 0xDFFF else {
              throw error(p, "unpaired high surrogate in \\u escape")
            }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            next += 6
          } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
            throw error(p, "unpaired low surrogate in \\u escape")
          }
          appendUTF8(scalar)
          p = next
          continue
        default:
          throw error(p, "invalid escape '\\\(describeByte(at: p + 1).trimmingQuotes)' in a string")
        }
        p += 2
      } else if c < 0x20 {
        throw error(p, "unescaped control character \(describeByte(at: p)) in a string")
      } else if c < 0x80 {
        scratch.append(c)
        p += 1
      } else {
        let end = try validateUTF8Sequence(at: p)
        scratch.append(contentsOf: UnsafeBufferPointer(start: b + p, count: end - p))
        p = end
      }
    }
    throw error(start - 1, "unterminated string")
  }

  func hex4(at p: Int) throws(JSONError) -> UInt32 {
    guard p + 4 <= count else { throw error(p, "expected 4 hex digits after \\u") }
    var v: UInt32 = 0
    for i in 0..<4 {
      let c = b[p + i]
      var d: UInt8
      switch c {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
      case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
      default: throw error(p + i, "expected 4 hex digits after \\u")
      }
      v = v << 4 | UInt32(d)
    }
    return v
  }

  mutating func appendUTF8(_ s: UInt32) {
    if s < 0x80 {
      scratch.append(UInt8(s))
    } else if s < 0x800 {
      scratch.append(UInt8(0xC0 | s >> 6))
      scratch.append(UInt8(0x80 | s & 0x3F))
    } else if s < 0x10000 {
      scratch.append(UInt8(0xE0 | s >> 12))
      scratch.append(UInt8(0x80 | (s >> 6) & 0x3F))
      scratch.append(UInt8(0x80 | s & 0x3F))
    } else {
      scratch.append(UInt8(0xF0 | s >> 18))
      scratch.append(UInt8(0x80 | (s >> 12) & 0x3F))
      scratch.append(UInt8(0x80 | (s >> 6) & 0x3F))
      scratch.append(UInt8(0x80 | s & 0x3F))
    }
  }

  // MARK: Flat objects

  /// The key of `length` (<= 16) bytes at `start` as a string, from a small cache of recent keys (objects of a
  /// batch repeat the same keys), with its bytes packed into two words (zero-padded) for comparisons.
  @inline(__always)
  mutating func cachedKey(_ start: Int, _ length: Int) -> (key: String, lo: UInt64, hi: UInt64) {
    let (lo, hi) = packedKey(start, length)
    let slot = Int(truncatingIfNeeded: ((lo ^ hi &* 31 ^ UInt64(length)) &* 0x9E37_79B9_7F4A_7C15) &>> 60)
    if keyCache.isEmpty {
      keyCache = Array(repeating: KeyCacheEntry(lo: 0, hi: 0, length: -1, key: ""), count: 16)
    }
    if keyCache[slot].lo == lo && keyCache[slot].hi == hi && keyCache[slot].length == length {
      return (keyCache[slot].key, lo, hi)
    }
    let key = String(decoding: UnsafeBufferPointer(start: b + start, count: length), as: UTF8.self)
    keyCache[slot] = KeyCacheEntry(lo: lo, hi: hi, length: length, key: key)
    return (key, lo, hi)
  }

  /// The `length` (at most 16) bytes at `start`, packed little-endian into two words (zero past the key).
  @inline(__always)
  func packedKey(_ start: Int, _ length: Int) -> (lo: UInt64, hi: UInt64) {
    var lo: UInt64 = 0
    var hi: UInt64 = 0
    if start &+ 16 <= count {
      let raw = UnsafeRawPointer(b + start)
      let w0 = raw.loadUnaligned(as: UInt64.self)
      let w1 = raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
      if length >= 8 {
        lo = w0
        hi = length == 16 ? w1 : w1 & ((1 &<< UInt64(8 &* (length &- 8))) &- 1)
      } else {
        lo = w0 & ((1 &<< UInt64(8 &* length)) &- 1)
      }
      lo = UInt64(littleEndian: lo)
      hi = UInt64(littleEndian: hi)
    } else {
      for i in 0..<length {
        let byte = UInt64(b[start &+ i])
        if i < 8 { lo |= byte &<< UInt64(8 &* i) } else { hi |= byte &<< UInt64(8 &* (i &- 8)) }
      }
    }
    return (lo, hi)
  }

  /// The offset of the closing quote of the key whose text starts at `keyStart`, when that text is plain ASCII (no
  /// escape, no control character) of at most 16 bytes, as the fast paths take keys; else `nil`.
  @inline(__always)
  func shortPlainKeyEnd(_ keyStart: Int) -> Int? {
    var q = keyStart
    while q < count {
      let c = b[q]
      if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c < 0x20 || c >= 0x80 { break }
      q &+= 1
    }
    guard q < count, b[q] == UInt8(ascii: "\""), q &- keyStart <= 16 else { return nil }
    return q
  }

  /// Tries to parse the object at `pos` when it is small and flat: at most ``JSONObject/indexThreshold`` members
  /// with short plain ASCII keys (at most 16 bytes, no escapes) and scalar values (numbers, strings, literals),
  /// as the points of a batch are; with `nesting`, a value may also be such an object (as in a small request:
  /// `{"expr": "...", "at": {"x": 1.5}}`). Returns `nil` (with `pos` unchanged) for anything else, or invalid JSON;
  /// the general path then parses the object (and reports any error).
  mutating func tryFlatObject(nesting: Bool = true) -> JSONObject? {
    let start = pos
    var p = start &+ 1
    // The keys' packed bytes, for the duplicate check.
    var keyWords: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    var keyLengths: UInt64 = 0  // 8 bits per key
    var n = 0
    func bail(_ parser: inout Parser) -> JSONObject? { nil }
    while p < count && isWhitespace(b[p]) { p &+= 1 }
    if p < count && b[p] == UInt8(ascii: "}") { return nil }  // `{}`: the general path's quick case
    var object: [JSONObject.Member] = []
    object.reserveCapacity(4)  // a point {"x": ..., "y": ...} and then some
    while true {
      // A key: '"' plain ASCII '"'.
      guard p < count, b[p] == UInt8(ascii: "\""), n < JSONObject.indexThreshold else { return bail(&self) }
      let keyStart = p &+ 1
      guard let q = shortPlainKeyEnd(keyStart) else { return bail(&self) }
      let length = q &- keyStart
      let (key, lo, hi) = cachedKey(keyStart, length)
      // Duplicate keys: compare the packed bytes (exact for keys of at most 16 bytes).
      let folded = lo ^ hi &* 0x9E37_79B9_7F4A_7C15
      let duplicate = withUnsafeBytes(of: &keyWords) { words -> Bool in
        let w = words.bindMemory(to: UInt64.self)
        for i in 0..<n where w[i] == folded && (keyLengths &>> UInt64(8 &* i)) & 0xFF == UInt64(length) {
          return true  // maybe: the general path decides
        }
        return false
      }
      if duplicate { return bail(&self) }
      withUnsafeMutableBytes(of: &keyWords) { $0.storeBytes(of: folded, toByteOffset: 8 &* n, as: UInt64.self) }
      keyLengths |= UInt64(length) &<< UInt64(8 &* n)
      p = q &+ 1
      // (Whitespace is rare between a key, the colon and the value: test for it once.)
      if p < count && b[p] != UInt8(ascii: ":") {
        while p < count && isWhitespace(b[p]) { p &+= 1 }
      }
      guard p < count, b[p] == UInt8(ascii: ":") else { return bail(&self) }
      p &+= 1
      if p < count && isWhitespace(b[p]) {
        while p < count && isWhitespace(b[p]) { p &+= 1 }
      }
      guard p < count else { return bail(&self) }
      // A scalar value.
      let c = b[p]
      let value: JSONValue
      if c == UInt8(ascii: "-") || c &- 0x30 < 10 {
        do {
          value = .number(try scanNumber(b, count, &p))
        } catch {
          return bail(&self)
        }
      } else if c == UInt8(ascii: "\"") {
        pos = p
        do {
          value = .string(try parseString())
        } catch {
          pos = start
          return bail(&self)
        }
        p = pos
        pos = start
      } else if c == UInt8(ascii: "t") && p &+ 4 <= count && b[p &+ 1] == UInt8(ascii: "r")
        && b[p &+ 2] == UInt8(ascii: "u") && b[p &+ 3] == UInt8(ascii: "e")
      {
        value = .bool(true)
        p &+= 4
      } else if c == UInt8(ascii: "f") && p &+ 5 <= count && b[p &+ 1] == UInt8(ascii: "a")
        && b[p &+ 2] == UInt8(ascii: "l") && b[p &+ 3] == UInt8(ascii: "s") && b[p &+ 4] == UInt8(ascii: "e")
      {
        value = .bool(false)
        p &+= 5
      } else if c == UInt8(ascii: "n") && p &+ 4 <= count && b[p &+ 1] == UInt8(ascii: "u")
        && b[p &+ 2] == UInt8(ascii: "l") && b[p &+ 3] == UInt8(ascii: "l")
      {
        value = .null
        p &+= 4
      } else if c == UInt8(ascii: "{") && nesting && frames.count &+ 2 <= maxDepth {
        // A flat object one level down (a request's point, `"at": {"x": 1.5, "y": -0.5}`).
        pos = p
        guard let inner = tryFlatObject(nesting: false) else {
          pos = start
          return bail(&self)
        }
        value = .object(inner)
        p = pos
        pos = start
      } else {
        return bail(&self)  // another container (or invalid JSON)
      }
      object.append(JSONObject.Member(key: key, value: value))
      n &+= 1
      guard p < count else { return bail(&self) }
      if isWhitespace(b[p]) {
        while p < count && isWhitespace(b[p]) { p &+= 1 }
        guard p < count else { return bail(&self) }
      }
      if b[p] == UInt8(ascii: ",") {
        p &+= 1
        if p < count && isWhitespace(b[p]) {
          while p < count && isWhitespace(b[p]) { p &+= 1 }
        }
        continue
      }
      guard b[p] == UInt8(ascii: "}") else { return bail(&self) }
      pos = p &+ 1
      return JSONObject(uncheckedMembers: object, index: nil)
    }
  }

  // MARK: Records

  /// The most keys of one record (see ``tryRecordArray()``).
  static let maxRecordKeys = 16

  /// Tries to parse the array at `pos` as records: one or more flat objects that all have the same keys (at most
  /// ``maxRecordKeys``, each plain ASCII of at most 16 bytes, unique) in the same order, every value a number, as the
  /// points of a batch are. The numbers go straight into one column per key, with no object built. Returns `nil`
  /// (with `pos` unchanged) for anything else, or invalid JSON; the general path then parses the array (and reports
  /// any error). A failed attempt reads no further than the first element that does not fit, which the general path
  /// reads again: the work stays linear.
  mutating func tryRecordArray() -> JSONArray? {
    let start = pos
    guard frames.count + 2 <= maxDepth else { return nil }
    let b = self.b
    let count = self.count
    var p = start &+ 1
    while p < count && isWhitespace(b[p]) { p &+= 1 }
    guard p < count, b[p] == UInt8(ascii: "{") else { return nil }
    var keys: [String] = []
    var packed: [(lo: UInt64, hi: UInt64, length: Int)] = []
    var columns: [[Double]] = []
    var records = 0
    while true {
      // At the '{' of record number `records`.
      p &+= 1
      var k = 0
      while true {
        while p < count && isWhitespace(b[p]) { p &+= 1 }
        guard p < count, b[p] == UInt8(ascii: "\"") else { return nil }
        let keyStart = p &+ 1
        guard let q = shortPlainKeyEnd(keyStart) else { return nil }
        let length = q &- keyStart
        if records == 0 {
          guard k < Self.maxRecordKeys else { return nil }
          let (key, lo, hi) = cachedKey(keyStart, length)
          for other in packed where other.lo == lo && other.hi == hi && other.length == length {
            return nil  // a duplicate key: the general path reports it
          }
          keys.append(key)
          packed.append((lo, hi, length))
          columns.append([])
        } else {
          guard k < packed.count, packed[k].length == length else { return nil }
          let (lo, hi) = packedKey(keyStart, length)
          guard packed[k].lo == lo && packed[k].hi == hi else { return nil }
        }
        p = q &+ 1
        while p < count && isWhitespace(b[p]) { p &+= 1 }
        guard p < count, b[p] == UInt8(ascii: ":") else { return nil }
        p &+= 1
        while p < count && isWhitespace(b[p]) { p &+= 1 }
        guard p < count, b[p] == UInt8(ascii: "-") || b[p] &- 0x30 < 10 else { return nil }
        do {
          columns[k].append(try scanNumber(b, count, &p))
        } catch {
          return nil
        }
        k &+= 1
        while p < count && isWhitespace(b[p]) { p &+= 1 }
        guard p < count else { return nil }
        if b[p] == UInt8(ascii: ",") {
          p &+= 1
          continue
        }
        guard b[p] == UInt8(ascii: "}"), k == packed.count else { return nil }
        p &+= 1
        break
      }
      records &+= 1
      while p < count && isWhitespace(b[p]) { p &+= 1 }
      guard p < count else { return nil }
      if b[p] == UInt8(ascii: "]") {
        pos = p &+ 1
        return JSONArray(storage: .records(keys: keys, columns: columns, count: records))
      }
      guard b[p] == UInt8(ascii: ",") else { return nil }
      p &+= 1
      while p < count && isWhitespace(b[p]) { p &+= 1 }
      guard p < count, b[p] == UInt8(ascii: "{") else { return nil }
    }
  }

  // MARK: Numeric arrays

  /// For a large array of arrays, with a `parallelFor`: finds its rows with a quick scan of the brackets, then
  /// parses slices of the rows through `parallelFor` (each row with `scanNumericArray`), straight into one buffer.
  /// Returns `nil` (with `pos` unchanged) when the array is small, is not a rectangular array of numeric arrays, or
  /// is invalid; the sequential path then parses it (and reports any error). The scans of failed attempts cover
  /// disjoint ranges and no attempt starts inside one (`parallelBarrier`), so the total work stays linear (at most
  /// one extra parse of the text).
  mutating func tryLargeNumericArray() -> JSONArray? {
    guard let parallelFor, pos >= parallelBarrier, count &- pos >= parallelMinimumBytes else { return nil }
    let start = pos
    // What each row may still nest: the open containers, this array and the row itself count.
    let rowMaxDepth = maxDepth &- frames.count &- 1
    guard rowMaxDepth >= 1 else { return nil }
    let b = self.b
    let count = self.count

    // The rows: the offsets of the '[' at depth 2, and the ']' that closes the array. Blocks of 32 bytes are
    // skipped while none of them is a bracket, a quote or a brace; the block with one is read a byte at a time.
    var rows: [Int] = []
    var depth = 0
    var p = start
    var end = -1
    scan: while p < count {
      p = skipToStructural(b, p, count)
      let blockEnd = min(p &+ 32, count)
      while p < blockEnd {
        switch b[p] {
        case UInt8(ascii: "["):
          depth &+= 1
          if depth == 2 { rows.append(p) }
        case UInt8(ascii: "]"):
          depth &-= 1
          if depth == 0 {
            end = p
            break scan
          }
        case UInt8(ascii: "\""), UInt8(ascii: "{"):
          parallelBarrier = p
          return nil
        default:
          break
        }
        p &+= 1
      }
    }
    guard end >= 0 else {
      parallelBarrier = count
      return nil
    }
    parallelBarrier = end
    guard end &- start >= parallelMinimumBytes, rows.count >= 2 else { return nil }
    // Nothing but whitespace between the '[' and the first row.
    p = start &+ 1
    while p < count && isWhitespace(b[p]) { p &+= 1 }
    guard p == rows[0] else { return nil }

    // The first row gives the shape of every row.
    var first = Parser(base: b, count: count, maxDepth: rowMaxDepth)
    first.pos = rows[0]
    guard let rowShape = first.scanNumericArray() else { return nil }
    let rowCount = rowShape.reduce(1, *)
    let (total, overflow) = rows.count.multipliedReportingOverflow(by: rowCount)
    guard rowCount > 0, !overflow else { return nil }

    // Slices of rows with about equal bytes of text (at least an eighth of the minimum each: 32 KiB by default).
    let slices = min(Parser.maxSlices, rows.count, (end &- start) / (parallelMinimumBytes / 8))
    var bounds = [0]
    for k in 1..<slices {
      let target = start &+ (end &- start) / slices &* k
      var r = bounds[k &- 1]
      while r < rows.count && rows[r] < target { r &+= 1 }
      bounds.append(r)
    }
    bounds.append(rows.count)

    var allParsed = false
    let data = [Double](unsafeUninitializedCapacity: total) { buffer, initialized in
      let parsed = UnsafeMutableBufferPointer<Bool>.allocate(capacity: slices)
      defer { parsed.deallocate() }
      parsed.initialize(repeating: false)
      // Each slice reads the text and writes its own rows and its own flag.
      let shared = SliceTask(
        text: b, count: count, maxDepth: rowMaxDepth, rows: rows, bounds: bounds, end: end, rowShape: rowShape,
        rowCount: rowCount, out: buffer.baseAddress!, parsed: parsed.baseAddress!)
      parallelFor(slices) { k in shared.run(k) }
      allParsed = !parsed.contains(false)
      initialized = allParsed ? total : 0
    }
    guard allParsed else { return nil }
    pos = end &+ 1
    return JSONArray(storage: .numbers(shape: [rows.count] + rowShape, data: data))
  }

  /// Parses `rows[range]` (each followed by a comma and the next row, the last one by whitespace and the `]` at
  /// `end`), each of shape `rowShape`, into consecutive rows at `out`. Returns whether all were parsed.
  static func parseRows(
    _ b: UnsafePointer<UInt8>, _ count: Int, _ maxDepth: Int, _ rows: [Int], _ range: Range<Int>, end: Int,
    rowShape: [Int], into out: UnsafeMutablePointer<Double>
  ) -> Bool {
    var parser = Parser(base: b, count: count, maxDepth: maxDepth)
    var at = out
    for r in range {
      parser.pos = rows[r]
      guard let shape = parser.scanNumericArray(), shape == rowShape else { return false }
      at += parser.numbers.moveAll(to: at)
      var p = parser.pos
      while p < count && isWhitespace(b[p]) { p &+= 1 }
      if r &+ 1 == rows.count {
        guard p == end else { return false }
      } else {
        guard p < count, b[p] == UInt8(ascii: ","), rows[r &+ 1] > p else { return false }
        p &+= 1
        while p < count && isWhitespace(b[p]) { p &+= 1 }
        guard p == rows[r &+ 1] else { return false }
      }
    }
    return true
  }

  init(base: UnsafePointer<UInt8>, count: Int, maxDepth: Int) {
    self.b = base
    self.count = count
    self.maxDepth = maxDepth
  }

  mutating func isFailedStart(_ offset: Int) -> Bool {
    while failedCursor < failedStarts.count && failedStarts[failedCursor] < offset { failedCursor += 1 }
    return failedCursor < failedStarts.count && failedStarts[failedCursor] == offset
  }

  /// Tries to parse the array at `pos` as a rectangular nested array of numbers, straight into a flat
  /// `[Double]`. Returns `nil` (with `pos` unchanged) when the array is anything else, or is invalid JSON; the
  /// general path then parses it (and reports any error).
  ///
  /// To keep the total work linear, a failed attempt records the start offsets of the arrays that were open at
  /// the failure (they contain the offending byte, so their own attempts would fail the same way); the general
  /// path does not retry them. Arrays that closed before the failure are rectangular and numeric, so retrying
  /// them succeeds.
  mutating func tryNumericArray() -> JSONArray? {
    guard let shape = scanNumericArray() else { return nil }
    return JSONArray(storage: .numbers(shape: shape, data: numbers.popArray(from: 0)))
  }

  /// The leaf loop of `scanNumericArray`, `number (',' number)* ']'`, from `p` at the first number: appends the
  /// numbers to `numbers` and returns their count, `p` at the `]`; `nil` when the array is anything else.
  ///
  /// A function of its own, and small, so that `readNumber` inlines into it (it does not into `scanNumericArray`).
  @inline(never)
  mutating func leafNumbers(_ position: inout Int) -> Int? {
    let b = self.b
    let count = self.count
    var p = position
    var n = 0
    while true {
      guard let d = readNumber(b, count, &p) else { return nil }
      numbers.append(d)
      n &+= 1
      while p < count && isWhitespace(b[p]) { p &+= 1 }
      guard p < count else { return nil }
      let c = b[p]
      if c == UInt8(ascii: ",") {
        p &+= 1
        while p < count && isWhitespace(b[p]) { p &+= 1 }
        guard p < count, b[p] == UInt8(ascii: "-") || b[p] &- 0x30 < 10 else { return nil }
      } else if c == UInt8(ascii: "]") {
        position = p
        return n
      } else {
        return nil
      }
    }
  }

  /// `tryNumericArray` but for the result: the shape, the numbers being left in `numbers`.
  mutating func scanNumericArray() -> [Int]? {
    let start = pos
    let outerDepth = frames.count
    var p = start + 1
    var level = 1
    var rank = 0  // unknown until the first number or empty leaf array
    fastCounts.removeAll(keepingCapacity: true)
    fastStarts.removeAll(keepingCapacity: true)
    fastDims.removeAll(keepingCapacity: true)
    fastCounts.append(0)
    fastStarts.append(start)
    fastDims.append(-1)
    numbers.removeAll()
    let b = self.b
    let count = self.count

    // Marks the arrays open at levels 2...upTo as failing (level 1 is `start` itself).
    func fail(_ parser: inout Parser, upTo: Int) -> [Int]? {
      if upTo >= 2 {
        parser.failedStarts.append(contentsOf: parser.fastStarts[1..<upTo])
      }
      return nil
    }

    opened: while true {
      // Just after the '[' that opened `level`.
      while p < count && isWhitespace(b[p]) { p += 1 }
      guard p < count else { return fail(&self, upTo: level) }
      var c = b[p]
      var closedCount: Int
      if c == UInt8(ascii: "[") {
        if (rank != 0 && level >= rank) || outerDepth + level + 1 > maxDepth { return fail(&self, upTo: level) }
        level += 1
        if fastCounts.count < level {
          fastCounts.append(0)
          fastStarts.append(p)
          fastDims.append(-1)
        } else {
          fastCounts[level - 1] = 0
          fastStarts[level - 1] = p
        }
        p += 1
        continue opened
      } else if c == UInt8(ascii: "]") {
        if rank == 0 {
          rank = level
        } else if level != rank {
          return fail(&self, upTo: level)
        }
        closedCount = 0
      } else if c == UInt8(ascii: "-") || c &- 0x30 < 10 {
        if rank == 0 {
          rank = level
        } else if level != rank {
          return fail(&self, upTo: level)
        }
        guard let n = leafNumbers(&p) else { return fail(&self, upTo: level) }
        closedCount = n
      } else {
        return fail(&self, upTo: level)
      }

      // At the ']' closing `level`, which has `closedCount` elements.
      while true {
        p += 1
        let d = fastDims[level - 1]
        if d < 0 {
          fastDims[level - 1] = closedCount
        } else if d != closedCount {
          return fail(&self, upTo: level - 1)  // the array just closed is fine on its own
        }
        level -= 1
        if level == 0 {
          pos = p
          return Array(fastDims[0..<rank])
        }
        let parentCount = fastCounts[level - 1] + 1
        fastCounts[level - 1] = parentCount
        while p < count && isWhitespace(b[p]) { p += 1 }
        guard p < count else { return fail(&self, upTo: level) }
        c = b[p]
        if c == UInt8(ascii: ",") {
          p += 1
          while p < count && isWhitespace(b[p]) { p += 1 }
          guard p < count, b[p] == UInt8(ascii: "[") else { return fail(&self, upTo: level) }
          if outerDepth + level + 1 > maxDepth { return fail(&self, upTo: level) }
          level += 1
          fastCounts[level - 1] = 0
          fastStarts[level - 1] = p
          p += 1
          continue opened
        } else if c == UInt8(ascii: "]") {
          closedCount = parentCount
        } else {
          return fail(&self, upTo: level)
        }
      }
    }
  }
}

extension String {
  fileprivate var trimmingQuotes: String {
    if hasPrefix("'") && hasSuffix("'") && count >= 2 { return String(dropFirst().dropLast()) }
    return self
  }
}
