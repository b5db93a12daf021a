/// A parsed JSON document.
///
/// Arrays are ``JSONArray`` values rather than `[JSONValue]`: the parser stores a rectangular nested array of
/// numbers (the bulk of every request that carries tensors) as one contiguous `[Double]` plus its shape, and
/// ``JSONArray`` presents both representations as the same random-access collection of `JSONValue`.
/// `case .array(let items)` therefore matches every array, `items.count`, `items[i]`, `for item in items` and
/// `items.map` work as with a Swift array, and `JSONArray` is `ExpressibleByArrayLiteral`, so
/// `.array([.number(1), .null])` builds one. Use ``JSONArray/numericTensor`` (or ``JSONTensorDecoding``) to get the
/// flat data without touching each element.
public enum JSONValue: Sendable, Equatable {
  /// `null`.
  case null
  /// `true` or `false`.
  case bool(Bool)
  /// A number (always finite when it comes from the parser).
  case number(Double)
  /// A string.
  case string(String)
  /// An array.
  case array(JSONArray)
  /// An object, keys in document order.
  case object(JSONObject)
}

// MARK: - Convenience accessors

extension JSONValue {
  /// The number, when this is a `.number`.
  public var doubleValue: Double? {
    if case .number(let d) = self { return d }
    return nil
  }

  /// The number as an `Int`, when this is a `.number` holding an integral value that fits (exactly) in an `Int`.
  public var intValue: Int? {
    guard case .number(let d) = self, d.magnitude <= 9_007_199_254_740_992, Double(Int(d)) == d else {
      return nil
    }
    return Int(d)
  }

  /// The string, when this is a `.string`.
  public var stringValue: String? {
    if case .string(let s) = self { return s }
    return nil
  }

  /// The Boolean, when this is a `.bool`.
  public var boolValue: Bool? {
    if case .bool(let b) = self { return b }
    return nil
  }

  /// The array, when this is an `.array`.
  public var arrayValue: JSONArray? {
    if case .array(let a) = self { return a }
    return nil
  }

  /// The object, when this is an `.object`.
  public var objectValue: JSONObject? {
    if case .object(let o) = self { return o }
    return nil
  }

  /// Whether this is `null`.
  public var isNull: Bool {
    if case .null = self { return true }
    return false
  }

  /// The member named `key` when this is an object that has it, else `nil`.
  public subscript(key: String) -> JSONValue? {
    if case .object(let o) = self { return o[key] }
    return nil
  }

  /// The element at `index` when this is an array and the index is in range, else `nil`.
  public subscript(index: Int) -> JSONValue? {
    if case .array(let a) = self, index >= 0, index < a.count { return a[index] }
    return nil
  }

  /// A short name of the kind of value ("null", "a Boolean", "a number", "a string", "an array", "an object"),
  /// for error messages such as "expected a string, found an array".
  public var kindDescription: String {
    switch self {
    case .null: return "null"
    case .bool: return "a Boolean"
    case .number: return "a number"
    case .string: return "a string"
    case .array: return "an array"
    case .object: return "an object"
    }
  }
}

// MARK: - Literals

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
  ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
  /// `null`.
  public init(nilLiteral: ()) { self = .null }
  /// A Boolean.
  public init(booleanLiteral value: Bool) { self = .bool(value) }
  /// A number.
  public init(integerLiteral value: Int) { self = .number(Double(value)) }
  /// A number.
  public init(floatLiteral value: Double) { self = .number(value) }
  /// A string.
  public init(stringLiteral value: String) { self = .string(value) }
  /// An array.
  public init(arrayLiteral elements: JSONValue...) { self = .array(JSONArray(elements)) }
  /// An object; the keys must be unique.
  public init(dictionaryLiteral elements: (String, JSONValue)...) {
    self = .object(JSONObject(uniqueKeysWithValues: elements))
  }
}

extension JSONValue: CustomStringConvertible {
  /// The compact JSON text of the value (non-finite numbers as the strings "NaN", "Infinity", "-Infinity").
  public var description: String {
    var writer = JSONWriter()
    writer.write(self)
    return String(decoding: writer.bytes, as: UTF8.self)
  }
}

// MARK: - JSONArray

/// A JSON array: a random-access collection of ``JSONValue``.
///
/// Two storages hide behind the same interface: a plain `[JSONValue]`, or — what the parser produces for a
/// rectangular nested array of numbers such as `[[1, 2], [3, 4]]`, and `[]` — a row-major `[Double]` with a
/// shape (`[2, 2]`). In the second case, element `i` of a rank-1 array is `.number(data[i])`, and element `i` of a
/// higher-rank array is a new numeric `JSONArray` holding a copy of row `i` (cheap enough for small arrays; bulk
/// consumers should use ``numericTensor``). A third storage holds what the parser reads for an array of flat objects
/// that all have the same keys in the same order, each value a number (`[{"x": 1, "y": 2}, {"x": 3, "y": 4}]`, the
/// points of a batch): the keys once and one column of numbers per key; element `i` is a new object built from row
/// `i`, and bulk consumers use ``numericRecords``.
public struct JSONArray: Sendable, RandomAccessCollection, ExpressibleByArrayLiteral {
  @usableFromInline
  enum Storage: Sendable {
    case values([JSONValue])
    case numbers(shape: [Int], data: [Double])
    /// `count` objects with the same `keys`, in order; `columns[k][i]` is the value of `keys[k]` in object `i`.
    case records(keys: [String], columns: [[Double]], count: Int)
  }

  @usableFromInline
  var storage: Storage

  /// An empty array (numeric, shape `[0]`).
  public init() { storage = .numbers(shape: [0], data: []) }

  /// An array of the given elements.
  public init(_ elements: [JSONValue]) { storage = .values(elements) }

  /// An array of the given elements.
  public init(arrayLiteral elements: JSONValue...) { storage = .values(elements) }

  /// A nested array of numbers from row-major data, e.g. `shape: [2, 2], data: [1, 2, 3, 4]` is `[[1, 2], [3, 4]]`.
  ///
  /// - Precondition: `shape` is not empty, every entry is non-negative, and the product of `shape` is
  ///   `data.count`.
  public init(shape: [Int], data: [Double]) {
    precondition(!shape.isEmpty, "a JSON array has rank >= 1")
    var product = 1
    for d in shape {
      precondition(d >= 0, "negative dimension")
      product = product.multipliedReportingOverflow(by: d).partialValue
    }
    precondition(product == data.count, "shape does not match the element count")
    storage = .numbers(shape: shape, data: data)
  }

  /// The contiguous row-major numbers and the shape, when the array is stored as a rectangular array of numbers
  /// (every array the parser reads that is a rectangular nested array of numbers, `[]` included), else `nil`.
  ///
  /// An array built from `JSONValue` elements returns `nil` even if those are numbers; ``JSONTensorDecoding``
  /// handles both.
  public var numericTensor: (shape: [Int], data: [Double])? {
    if case .numbers(let shape, let data) = storage { return (shape, data) }
    return nil
  }

  /// The keys and the columns of numbers, when the array is stored as records: every array the parser reads whose
  /// elements are flat objects with the same keys in the same order (at least one key), each value a number; else
  /// `nil`. `columns[k][i]` is the value of `keys[k]` in element `i`.
  public var numericRecords: (keys: [String], columns: [[Double]])? {
    if case .records(let keys, let columns, _) = storage { return (keys, columns) }
    return nil
  }

  /// The elements as a Swift array (materializes the elements of a numeric array or of records).
  public var elements: [JSONValue] {
    switch storage {
    case .values(let v): return v
    case .numbers, .records: return Array(self)
    }
  }

  /// Always 0.
  @inlinable public var startIndex: Int { 0 }

  /// The number of elements.
  @inlinable public var endIndex: Int {
    switch storage {
    case .values(let v): return v.count
    case .numbers(let shape, _): return shape[0]
    case .records(_, _, let count): return count
    }
  }

  /// The element at `position`.
  public subscript(position: Int) -> JSONValue {
    switch storage {
    case .values(let v):
      return v[position]
    case .numbers(let shape, let data):
      precondition(position >= 0 && position < shape[0], "index out of range")
      if shape.count == 1 { return .number(data[position]) }
      let rowShape = Array(shape[1...])
      var stride = 1
      for d in rowShape { stride &*= d }
      return .array(
        JSONArray(storage: .numbers(shape: rowShape, data: Array(data[position * stride..<(position + 1) * stride]))))
    case .records(let keys, let columns, let count):
      precondition(position >= 0 && position < count, "index out of range")
      var members: [JSONObject.Member] = []
      members.reserveCapacity(keys.count)
      for (key, column) in zip(keys, columns) {
        members.append(JSONObject.Member(key: key, value: .number(column[position])))
      }
      return .object(JSONObject(uncheckedMembers: members, index: nil))
    }
  }

  init(storage: Storage) { self.storage = storage }

  /// Appends an element (a numeric array becomes a plain one first).
  public mutating func append(_ element: JSONValue) {
    if case .values(var v) = storage {
      storage = .values([])
      v.append(element)
      storage = .values(v)
    } else {
      var v = elements
      v.append(element)
      storage = .values(v)
    }
  }
}

extension JSONArray: Equatable {
  /// Element-wise equality, whatever the storages.
  public static func == (lhs: JSONArray, rhs: JSONArray) -> Bool {
    switch (lhs.storage, rhs.storage) {
    case (.numbers(let s1, let d1), .numbers(let s2, let d2)):
      if s1 == s2 { return d1 == d2 }
      // Shapes can differ only in trailing dimensions after a zero, e.g. [0] and [0, 3]: both are empty.
      return lhs.count == 0 && rhs.count == 0
    case (.values(let v1), .values(let v2)):
      return v1 == v2
    default:
      guard lhs.count == rhs.count else { return false }
      for i in 0..<lhs.count where lhs[i] != rhs[i] { return false }
      return true
    }
  }
}

// MARK: - JSONObject

/// A JSON object: unique keys in document order, with lookup by key.
///
/// The members are stored in one array of key-value pairs (one allocation per object). Small objects (at most 8
/// members) are searched linearly; larger ones keep a hash index, so lookups stay O(1) even for objects with many
/// members.
public struct JSONObject: Sendable, RandomAccessCollection, ExpressibleByDictionaryLiteral {
  /// One member.
  @usableFromInline
  struct Member: Sendable {
    @usableFromInline var key: String
    @usableFromInline var value: JSONValue

    @inlinable
    init(key: String, value: JSONValue) {
      self.key = key
      self.value = value
    }
  }

  /// The members, in document order.
  @usableFromInline
  private(set) var members: [Member]
  private var index: [String: Int]?

  static let indexThreshold = 8

  /// The keys, in order (a new array on each access; iterate the object itself to avoid it).
  public var keys: [String] { members.map(\.key) }
  /// The values, in the order of ``keys`` (a new array on each access; iterate the object itself to avoid it).
  public var values: [JSONValue] { members.map(\.value) }

  /// An empty object.
  public init() {
    members = []
    index = nil
  }

  /// An object with the given members, in order.
  ///
  /// - Precondition: the keys are unique.
  public init(uniqueKeysWithValues members: some Sequence<(String, JSONValue)>) {
    self.init()
    for (k, v) in members {
      precondition(self[k] == nil, "duplicate key '\(k)'")
      self[k] = v
    }
  }

  /// An object with the given members; the keys must be unique.
  public init(dictionaryLiteral elements: (String, JSONValue)...) {
    self.init(uniqueKeysWithValues: elements)
  }

  /// Builds an object from members whose keys are known to be unique (the parser checked), with the index the
  /// parser may already have built.
  init(uncheckedMembers members: [Member], index: [String: Int]?) {
    self.members = members
    self.index = index
    if index == nil && members.count > JSONObject.indexThreshold { rebuildIndex() }
  }

  private mutating func rebuildIndex() {
    if members.count > JSONObject.indexThreshold {
      var idx = [String: Int](minimumCapacity: members.count)
      for (i, m) in members.enumerated() { idx[m.key] = i }
      index = idx
    } else {
      index = nil
    }
  }

  /// The position of `key`, if present.
  public func position(of key: String) -> Int? {
    if let index { return index[key] }
    return members.withUnsafeBufferPointer { m -> Int? in
      for i in 0..<m.count where m[i].key == key { return i }
      return nil
    }
  }

  /// The value for `key`. Setting replaces the value in place (keeping the key's position), appends a new key at
  /// the end, or removes the member when set to `nil`.
  public subscript(key: String) -> JSONValue? {
    get {
      guard let i = position(of: key) else { return nil }
      return members[i].value
    }
    set {
      if let i = position(of: key) {
        if let newValue {
          members[i].value = newValue
        } else {
          members.remove(at: i)
          rebuildIndex()
        }
      } else if let newValue {
        members.append(Member(key: key, value: newValue))
        if index != nil {
          index![key] = members.count - 1
        } else if members.count > JSONObject.indexThreshold {
          rebuildIndex()
        }
      }
    }
  }

  /// Always 0.
  public var startIndex: Int { 0 }
  /// The number of members.
  public var endIndex: Int { members.count }
  /// The member at `position`.
  public subscript(position: Int) -> (key: String, value: JSONValue) {
    let m = members[position]
    return (m.key, m.value)
  }
}

extension JSONObject: Equatable {
  /// Two objects are equal when they have the same members, in any order.
  public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
    guard lhs.count == rhs.count else { return false }
    for m in lhs.members {
      guard let v = rhs[m.key], v == m.value else { return false }
    }
    return true
  }
}
