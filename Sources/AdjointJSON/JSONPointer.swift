/// An RFC 6901 JSON Pointer such as `/at/x/1`, built from path components.
///
/// Components are stored unescaped; ``description`` escapes `~` as `~0` and `/` as `~1`.
public struct JSONPointer: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
  /// The unescaped reference tokens, outermost first (array indices as decimal strings).
  public var components: [String]

  /// The empty pointer (the whole document).
  public init() { components = [] }

  /// A pointer with the given unescaped components.
  public init(components: [String]) { self.components = components }

  /// Parses an escaped pointer such as `/a~1b/0`; returns `nil` when it is not a valid pointer (non-empty and not
  /// starting with `/`, or a `~` not followed by `0` or `1`).
  public init?(parsing text: String) {
    if text.isEmpty {
      components = []
      return
    }
    guard text.first == "/" else { return nil }
    var result: [String] = []
    for token in text.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
      var s = ""
      var it = token.makeIterator()
      while let c = it.next() {
        if c == "~" {
          switch it.next() {
          case "0": s.append("~")
          case "1": s.append("/")
          default: return nil
          }
        } else {
          s.append(c)
        }
      }
      result.append(s)
    }
    components = result
  }

  /// Parses a pointer literal; traps if it is not a valid pointer.
  public init(stringLiteral value: String) {
    guard let p = JSONPointer(parsing: value) else { preconditionFailure("invalid JSON Pointer '\(value)'") }
    self = p
  }

  /// The pointer extended by an object key.
  public func appending(_ key: String) -> JSONPointer {
    var p = self
    p.components.append(key)
    return p
  }

  /// The pointer extended by an array index.
  public func appending(_ index: Int) -> JSONPointer {
    var p = self
    p.components.append(String(index))
    return p
  }

  /// The pointer extended by all components of `other`.
  public func appending(_ other: JSONPointer) -> JSONPointer {
    var p = self
    p.components.append(contentsOf: other.components)
    return p
  }

  /// Escapes one reference token: `~` becomes `~0` and `/` becomes `~1`.
  public static func escape(_ token: String) -> String {
    guard token.utf8.contains(where: { $0 == UInt8(ascii: "~") || $0 == UInt8(ascii: "/") }) else { return token }
    var s = ""
    for c in token.unicodeScalars {
      switch c {
      case "~": s += "~0"
      case "/": s += "~1"
      default: s.unicodeScalars.append(c)
      }
    }
    return s
  }

  /// The escaped pointer text, e.g. `/at/x/1`; the empty string for the whole document.
  public var description: String {
    var s = ""
    for c in components {
      s += "/"
      s += JSONPointer.escape(c)
    }
    return s
  }
}
