// Header fields in order, with case-insensitive lookup that never allocates.

/// One header field: a name and a value, as sent (names keep their case).
public struct HTTPField: Hashable, Sendable, CustomStringConvertible {
  /// The field name, e.g. `"Content-Type"`. Compared case-insensitively by ``HTTPHeaders``.
  public var name: String
  /// The field value with surrounding whitespace removed.
  public var value: String

  /// Creates a field.
  public init(name: String, value: String) {
    self.name = name
    self.value = value
  }

  public var description: String { "\(name): \(value)" }
}

/// The header fields of a request or response, in the order they were sent or added.
///
/// Lookup by name is ASCII case-insensitive. Repeated fields are kept as separate entries.
///
/// ```swift
/// var headers: HTTPHeaders = ["Content-Type": "application/json"]
/// headers.add(name: "Vary", value: "Accept-Encoding")
/// headers["content-type"]  // "application/json"
/// ```
public struct HTTPHeaders: Hashable, Sendable, RandomAccessCollection, ExpressibleByDictionaryLiteral,
  CustomStringConvertible
{
  private var fields: [HTTPField]

  /// Creates an empty header list.
  public init() { fields = [] }

  /// Creates a header list from fields in order.
  public init(_ fields: [HTTPField]) { self.fields = fields }

  /// Creates a header list from `name: value` pairs in order; repeated names are kept.
  public init(dictionaryLiteral elements: (String, String)...) {
    fields = elements.map { HTTPField(name: $0.0, value: $0.1) }
  }

  public var startIndex: Int { fields.startIndex }
  public var endIndex: Int { fields.endIndex }
  public subscript(position: Int) -> HTTPField { fields[position] }

  public var description: String { fields.map(\.description).joined(separator: "\n") }

  /// The value of the first field named `name` (case-insensitive), or `nil`.
  public subscript(name: String) -> String? {
    for field in fields where HTTPHeaders.namesEqual(field.name, name) { return field.value }
    return nil
  }

  /// Every value of the fields named `name` (case-insensitive), in order.
  public func values(for name: String) -> [String] {
    fields.filter { HTTPHeaders.namesEqual($0.name, name) }.map(\.value)
  }

  /// Whether a field named `name` is present.
  public func contains(name: String) -> Bool { self[name] != nil }

  /// Appends a field, keeping any others of the same name.
  public mutating func add(name: String, value: String) { fields.append(HTTPField(name: name, value: value)) }

  /// Replaces every field named `name` by one field with `value`, or appends it.
  public mutating func replaceOrAdd(name: String, value: String) {
    if let first = fields.firstIndex(where: { HTTPHeaders.namesEqual($0.name, name) }) {
      fields[first].value = value
      var index = fields.index(after: first)
      while index < fields.endIndex {
        if HTTPHeaders.namesEqual(fields[index].name, name) { fields.remove(at: index) } else { index += 1 }
      }
    } else {
      add(name: name, value: value)
    }
  }

  /// Removes every field named `name`.
  public mutating func remove(name: String) { fields.removeAll { HTTPHeaders.namesEqual($0.name, name) } }

  /// Whether any field named `name` holds `token` in its comma-separated list (both case-insensitive), as in
  /// `Connection: keep-alive, Upgrade`.
  public func containsToken(_ token: String, inField name: String) -> Bool {
    for field in fields where HTTPHeaders.namesEqual(field.name, name) {
      for element in field.value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: true)
      where ASCII.equalsIgnoringCase(ASCII.trimmed(element), token.utf8) {
        return true
      }
    }
    return false
  }

  /// ASCII case-insensitive comparison of two field names.
  @inlinable
  public static func namesEqual(_ lhs: String, _ rhs: String) -> Bool {
    var lhs = lhs
    var rhs = rhs
    return lhs.withUTF8 { l in rhs.withUTF8 { r in ASCII.equalsIgnoringCase(l, r) } }
  }
}

/// ASCII helpers shared by the parser and the headers.
@usableFromInline
enum ASCII {
  @usableFromInline static let cr: UInt8 = 13
  @usableFromInline static let lf: UInt8 = 10
  @usableFromInline static let space: UInt8 = 32
  @usableFromInline static let tab: UInt8 = 9
  @usableFromInline static let colon: UInt8 = 58

  @inlinable
  static func lowercased(_ byte: UInt8) -> UInt8 { byte &- 65 < 26 ? byte | 0x20 : byte }

  @inlinable
  static func equalsIgnoringCase<L: Collection<UInt8>, R: Collection<UInt8>>(_ lhs: L, _ rhs: R) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var r = rhs.makeIterator()
    for l in lhs {
      guard let rb = r.next(), lowercased(l) == lowercased(rb) else { return false }
    }
    return true
  }

  /// `lhs` compared to an already-lowercase ASCII `lowercase` name.
  @inlinable
  static func equalsLowercase(_ lhs: UnsafeBufferPointer<UInt8>, _ lowercase: StaticString) -> Bool {
    guard lhs.count == lowercase.utf8CodeUnitCount else { return false }
    let r = lowercase.utf8Start
    for i in 0..<lhs.count where lowercased(lhs[i]) != r[i] { return false }
    return true
  }

  /// `bytes` without leading and trailing spaces and tabs.
  @inlinable
  static func trimmed<C: BidirectionalCollection<UInt8>>(_ bytes: C) -> C.SubSequence {
    var start = bytes.startIndex
    var end = bytes.endIndex
    while start < end, bytes[start] == space || bytes[start] == tab { start = bytes.index(after: start) }
    while end > start {
      let before = bytes.index(before: end)
      guard bytes[before] == space || bytes[before] == tab else { break }
      end = before
    }
    return bytes[start..<end]
  }

  /// RFC 9110 `tchar`: the characters of a token (method, field name).
  @inlinable
  static func isTokenChar(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"):
      return true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
      UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
      UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
      return true
    default:
      return false
    }
  }

  /// A byte allowed inside a field value: visible ASCII, obs-text, space and tab.
  @inlinable
  static func isFieldValueChar(_ byte: UInt8) -> Bool {
    byte >= 0x21 && byte != 0x7F || byte == space || byte == tab
  }
}
