/// Why a JSON value is not an acceptable tensor.
public struct TensorDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
  /// Whether the value is malformed (HTTP 400) or over a limit (HTTP 413).
  public enum Kind: Sendable, Equatable {
    /// Not a tensor: wrong type, ragged, bad shape, bad base64, wrong element count... (400).
    case malformed
    /// More elements than allowed (413).
    case overLimit
  }

  /// The category.
  public var kind: Kind
  /// Where the problem is: the base pointer given to the decoder followed by the path inside the tensor (for a
  /// ragged array, the first sub-array whose shape differs, e.g. `/at/x/1` for `[[1,2],[3]]` at `/at/x`).
  public var pointer: JSONPointer
  /// What is wrong, e.g. "ragged array: expected 2 elements, found 1".
  public var message: String

  /// Creates an error.
  public init(kind: Kind, pointer: JSONPointer, message: String) {
    self.kind = kind
    self.pointer = pointer
    self.message = message
  }

  /// 400 for ``Kind/malformed``, 413 for ``Kind/overLimit``.
  public var httpStatus: Int { kind == .malformed ? 400 : 413 }

  /// "pointer: message".
  public var description: String { "\(pointer): \(message)" }
}

/// How a tensor is written in a response (the request's `"layout"`).
public enum JSONTensorLayout: String, Sendable, CaseIterable {
  /// Nested arrays (`[[1.0,2.0],[3.0,4.0]]`), or a bare number for rank 0. The default.
  case nested
  /// `{"shape":[2,2],"data":[1.0,2.0,3.0,4.0]}`.
  case flat
  /// `{"shape":[2,2],"base64":"..."}`: the little-endian float64 bytes, base64-encoded (bit-exact).
  case base64
}

/// Turns JSON values into tensors (shape and row-major float64 data) and back, per the wire contract:
///
/// - a number (rank 0), or one of the strings `"NaN"`, `"Infinity"`, `"-Infinity"`;
/// - rectangular nested arrays of those (`[]` has shape `[0]`);
/// - `{"shape": [...], "data": [...]}` (flat row-major) or `{"shape": [...], "base64": "..."}` (little-endian
///   float64 bytes).
public enum JSONTensorDecoding {
  /// The default element limit, 2^24 (inclusive).
  public static let defaultMaxElements = 1 << 24

  /// The number a JSON scalar stands for: a number, or `"NaN"`, `"Infinity"`, `"-Infinity"` (exactly); else `nil`.
  @inline(__always)
  public static func number(from value: JSONValue) -> Double? {
    switch value {
    case .number(let d): return d
    case .string(let s):
      switch s {
      case "NaN": return .nan
      case "Infinity": return .infinity
      case "-Infinity": return -.infinity
      default: return nil
      }
    default: return nil
    }
  }

  /// Decodes a tensor.
  ///
  /// - Parameters:
  ///   - value: the JSON value.
  ///   - maxElements: the largest element count accepted (inclusive); more is an ``TensorDecodingError/Kind/overLimit`` error.
  ///   - pointer: where `value` sits in the request (e.g. `/at/x`); error pointers start with it.
  public static func decode(
    _ value: JSONValue, maxElements: Int = defaultMaxElements, at pointer: JSONPointer = JSONPointer()
  ) throws(TensorDecodingError) -> (shape: [Int], data: [Double]) {
    switch value {
    case .number, .string:
      guard let d = number(from: value) else {
        throw malformed(
          pointer, [],
          "expected a tensor (a number, an array of numbers or an object with 'shape'), found \(describe(value))")
      }
      if maxElements < 1 { throw overLimit(pointer, 1, maxElements) }
      return ([], [d])
    case .array(let array):
      return try decodeNested(array, maxElements: maxElements, at: pointer)
    case .object(let object):
      return try decodeObject(object, maxElements: maxElements, at: pointer)
    case .null, .bool:
      throw malformed(
        pointer, [],
        "expected a tensor (a number, an array of numbers or an object with 'shape'), found \(value.kindDescription)")
    }
  }

  // MARK: Nested arrays

  private static func decodeNested(_ array: JSONArray, maxElements: Int, at pointer: JSONPointer)
    throws(TensorDecodingError) -> (shape: [Int], data: [Double])
  {
    if let (shape, data) = array.numericTensor {
      if data.count > maxElements { throw overLimit(pointer, data.count, maxElements) }
      return (shape, data)
    }
    // The expected shape, from the first element at each level.
    var shape: [Int] = []
    var current = JSONValue.array(array)
    descend: while case .array(let a) = current {
      if let (s, _) = a.numericTensor {
        shape.append(contentsOf: truncatedAfterZero(s))
        break descend
      }
      shape.append(a.count)
      if a.isEmpty { break descend }
      current = a[0]
    }
    var total = 1
    for d in shape {
      let (p, overflow) = total.multipliedReportingOverflow(by: d)
      total = overflow ? Int.max : p
    }
    if total > maxElements { throw overLimit(pointer, total, maxElements) }
    var data: [Double] = []
    data.reserveCapacity(total)
    var path: [Int] = []
    try fill(.array(array), shape, 0, &data, &path, pointer)
    return (shape, data)
  }

  /// `s` cut after its first 0 (the dimensions after it describe no element, and nested JSON cannot show them).
  private static func truncatedAfterZero(_ s: [Int]) -> [Int] {
    if let z = s.firstIndex(of: 0) { return Array(s[...z]) }
    return s
  }

  private static func fill(
    _ value: JSONValue, _ shape: [Int], _ dim: Int, _ data: inout [Double], _ path: inout [Int],
    _ base: JSONPointer
  ) throws(TensorDecodingError) {
    if dim == shape.count {
      if let d = number(from: value) {
        data.append(d)
        return
      }
      if case .array = value {
        throw malformed(base, path, "ragged array: expected a number, found an array")
      }
      throw malformed(base, path, "expected a number, found \(describe(value))")
    }
    guard case .array(let a) = value else {
      if number(from: value) != nil {
        throw malformed(base, path, "ragged array: expected an array of \(shape[dim]) elements, found a number")
      }
      throw malformed(base, path, "expected an array of numbers, found \(describe(value))")
    }
    if let (s0, d) = a.numericTensor {
      let s = truncatedAfterZero(s0)
      let expected = shape[dim...]
      if s.elementsEqual(expected) {
        data.append(contentsOf: d)
        return
      }
      // Report the first sub-array (depth-first, i.e. the one reached through leading zeros) that differs.
      var k = 0
      while k < s.count && dim + k < shape.count && s[k] == shape[dim + k] { k += 1 }
      let zeros = [Int](repeating: 0, count: k)
      if k < s.count && dim + k < shape.count {
        throw malformed(base, path + zeros, "ragged array: expected \(shape[dim + k]) elements, found \(s[k])")
      } else if k < s.count {
        throw malformed(base, path + zeros + [0], "ragged array: expected a number, found an array")
      } else {
        throw malformed(
          base, path + zeros + [0], "ragged array: expected an array of \(shape[dim + k]) elements, found a number")
      }
    }
    guard a.count == shape[dim] else {
      throw malformed(base, path, "ragged array: expected \(shape[dim]) elements, found \(a.count)")
    }
    for i in 0..<a.count {
      path.append(i)
      try fill(a[i], shape, dim + 1, &data, &path, base)
      path.removeLast()
    }
  }

  // MARK: Objects

  private static func decodeObject(_ object: JSONObject, maxElements: Int, at pointer: JSONPointer)
    throws(TensorDecodingError) -> (shape: [Int], data: [Double])
  {
    for key in object.keys where key != "shape" && key != "data" && key != "base64" {
      throw TensorDecodingError(
        kind: .malformed, pointer: pointer.appending(key),
        message: "unexpected key '\(key)' in a tensor object (allowed: 'shape', and 'data' or 'base64')")
    }
    guard let shapeValue = object["shape"] else {
      throw malformed(pointer, [], "a tensor object needs 'shape' and either 'data' or 'base64'")
    }
    let shapePointer = pointer.appending("shape")
    guard case .array(let shapeArray) = shapeValue else {
      throw TensorDecodingError(
        kind: .malformed, pointer: shapePointer,
        message: "'shape' must be an array of non-negative integers, found \(describe(shapeValue))")
    }
    var shape: [Int] = []
    shape.reserveCapacity(shapeArray.count)
    for (i, entry) in shapeArray.enumerated() {
      guard case .number(let d) = entry, d >= 0, d <= 9_007_199_254_740_992, Double(Int(d)) == d else {
        throw TensorDecodingError(
          kind: .malformed, pointer: shapePointer.appending(i),
          message: "'shape' entries must be non-negative integers, found \(describe(entry))")
      }
      shape.append(Int(d))
    }
    var total = 1
    if !shape.contains(0) {
      for d in shape {
        let (p, overflow) = total.multipliedReportingOverflow(by: d)
        total = overflow ? Int.max : p
      }
    } else {
      total = 0
    }
    let dataValue = object["data"]
    let base64Value = object["base64"]
    if dataValue != nil && base64Value != nil {
      throw malformed(pointer, [], "a tensor object has either 'data' or 'base64', not both")
    }
    if total > maxElements { throw overLimit(pointer, total, maxElements) }
    if let dataValue {
      let dataPointer = pointer.appending("data")
      guard case .array(let a) = dataValue else {
        throw TensorDecodingError(
          kind: .malformed, pointer: dataPointer,
          message: "'data' must be a flat array of numbers, found \(describe(dataValue))")
      }
      var data: [Double]
      if let (s, d) = a.numericTensor {
        guard s.count == 1 else {
          throw TensorDecodingError(
            kind: .malformed, pointer: dataPointer.appending(0),
            message: "'data' must be a flat array of numbers, found an array")
        }
        data = d
      } else {
        data = []
        data.reserveCapacity(min(a.count, maxElements))
        for i in 0..<a.count {
          guard let d = number(from: a[i]) else {
            throw TensorDecodingError(
              kind: .malformed, pointer: dataPointer.appending(i),
              message: "expected a number, found \(describe(a[i]))")
          }
          data.append(d)
        }
      }
      guard data.count == total else {
        throw TensorDecodingError(
          kind: .malformed, pointer: dataPointer,
          message: "'data' has \(data.count) elements, but shape \(shape) needs \(total)")
      }
      return (shape, data)
    }
    if let base64Value {
      let b64Pointer = pointer.appending("base64")
      guard case .string(var text) = base64Value else {
        throw TensorDecodingError(
          kind: .malformed, pointer: b64Pointer, message: "'base64' must be a string, found \(describe(base64Value))")
      }
      let result: Result<[Double], TensorDecodingError> = text.withUTF8 { utf8 in
        guard let byteCount = Base64.decodedLength(of: utf8) else {
          return .failure(
            TensorDecodingError(
              kind: .malformed, pointer: b64Pointer,
              message: "invalid base64: length \(utf8.count) is not a multiple of 4"))
        }
        guard byteCount == total * 8 else {
          return .failure(
            TensorDecodingError(
              kind: .malformed, pointer: b64Pointer,
              message: "'base64' holds \(byteCount) bytes, but shape \(shape) needs \(total * 8) (float64)"))
        }
        var failure: Base64.DecodingError?
        // The decoder writes every byte (or fails, and the array is dropped), so no zero-filling first.
        let data = [Double](unsafeUninitializedCapacity: total) { buffer, initialized in
          initialized = total
          do throws(Base64.DecodingError) {
            try Base64.decode(utf8, into: UnsafeMutableRawBufferPointer(buffer))
          } catch {
            failure = error
          }
        }
        if let failure {
          return .failure(
            TensorDecodingError(
              kind: .malformed, pointer: b64Pointer,
              message: "invalid base64: \(failure.message) at offset \(failure.offset)"))
        }
        #if _endian(big)
          return .success(data.map { Double(bitPattern: $0.bitPattern.byteSwapped) })
        #else
          return .success(data)
        #endif
      }
      return (shape, try result.get())
    }
    throw malformed(pointer, [], "a tensor object needs 'data' or 'base64' next to 'shape'")
  }

  // MARK: Encoding

  /// The JSON value of a tensor in the given layout (a numeric ``JSONArray`` for `.nested`, so writing it is fast).
  ///
  /// - Precondition: the product of `shape` is `data.count`.
  public static func encode(shape: [Int], data: [Double], layout: JSONTensorLayout = .nested) -> JSONValue {
    switch layout {
    case .nested:
      if shape.isEmpty { return .number(data[0]) }
      return .array(JSONArray(shape: shape, data: data))
    case .flat:
      return .object(
        JSONObject(uniqueKeysWithValues: [
          ("shape", .array(JSONArray(shape.map { .number(Double($0)) }))),
          ("data", .array(JSONArray(shape: [data.count], data: data))),
        ]))
    case .base64:
      var bytes: [UInt8] = []
      writeLittleEndian(data, base64Into: &bytes)
      return .object(
        JSONObject(uniqueKeysWithValues: [
          ("shape", .array(JSONArray(shape.map { .number(Double($0)) }))),
          ("base64", .string(String(decoding: bytes, as: UTF8.self))),
        ]))
    }
  }

  static func writeLittleEndian(_ data: UnsafeBufferPointer<Double>, base64Into output: inout [UInt8]) {
    #if _endian(little)
      Base64.encode(UnsafeRawBufferPointer(data), into: &output)
    #else
      let swapped = data.map { Double(bitPattern: $0.bitPattern.byteSwapped) }
      swapped.withUnsafeBytes { Base64.encode($0, into: &output) }
    #endif
  }

  static func writeLittleEndian(_ data: [Double], base64Into output: inout [UInt8]) {
    data.withUnsafeBufferPointer { writeLittleEndian($0, base64Into: &output) }
  }

  // MARK: Helpers

  private static func malformed(_ base: JSONPointer, _ path: [Int], _ message: String) -> TensorDecodingError {
    var p = base
    for i in path { p.components.append(String(i)) }
    return TensorDecodingError(kind: .malformed, pointer: p, message: message)
  }

  private static func overLimit(_ pointer: JSONPointer, _ count: Int, _ limit: Int) -> TensorDecodingError {
    let shown = count == Int.max ? "more than \(limit)" : "\(count)"
    return TensorDecodingError(
      kind: .overLimit, pointer: pointer, message: "tensor has \(shown) elements, over the limit of \(limit)")
  }

  private static func describe(_ value: JSONValue) -> String {
    if case .string(let s) = value {
      let shown = s.count > 20 ? String(s.prefix(20)) + "..." : s
      return "the string \"\(shown)\""
    }
    return value.kindDescription
  }
}

extension JSONWriter {
  /// Writes a tensor in the given layout (see ``JSONTensorLayout``).
  ///
  /// - Precondition: the product of `shape` is `data.count`.
  public mutating func writeTensor(shape: [Int], data: UnsafeBufferPointer<Double>, layout: JSONTensorLayout = .nested)
  {
    switch layout {
    case .nested:
      write(doubles: data, shape: shape)
    case .flat:
      beginObject()
      writeKey("shape")
      writeShape(shape)
      writeKey("data")
      write(doubles: data, shape: [data.count])
      endObject()
    case .base64:
      beginObject()
      writeKey("shape")
      writeShape(shape)
      writeKey("base64")
      writeBase64String(data)
      endObject()
    }
  }

  /// Writes a tensor in the given layout (see ``JSONTensorLayout``).
  public mutating func writeTensor(shape: [Int], data: [Double], layout: JSONTensorLayout = .nested) {
    data.withUnsafeBufferPointer { writeTensor(shape: shape, data: $0, layout: layout) }
  }

  /// Writes the little-endian bytes of `data` as a base64 string, straight into the buffer.
  private mutating func writeBase64String(_ data: UnsafeBufferPointer<Double>) {
    let length = Base64.encodedLength(of: data.count &* 8)
    let out = reserve(length &+ 2)
    out[0] = UInt8(ascii: "\"")
    #if _endian(little)
      _ = Base64.encode(UnsafeRawBufferPointer(data), to: UnsafeMutableRawPointer(out + 1))
    #else
      let swapped = data.map { Double(bitPattern: $0.bitPattern.byteSwapped) }
      swapped.withUnsafeBytes { _ = Base64.encode($0, to: UnsafeMutableRawPointer(out + 1)) }
    #endif
    out[length &+ 1] = UInt8(ascii: "\"")
    advance(by: length &+ 2)
  }

  private mutating func writeShape(_ shape: [Int]) {
    beginArray()
    for d in shape { write(d) }
    endArray()
  }
}
