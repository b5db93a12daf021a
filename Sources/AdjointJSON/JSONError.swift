/// Limits the parser enforces. Every limit is inclusive: a value equal to it is accepted.
public struct JSONLimits: Sendable, Equatable {
  /// The maximum nesting depth of arrays and objects (`[[1]]` has depth 2; a scalar has depth 0).
  public var maxDepth: Int

  /// Creates limits; the default depth is 512, as in the wire contract.
  public init(maxDepth: Int = 512) {
    self.maxDepth = maxDepth
  }

  /// The defaults of the wire contract.
  public static let `default` = JSONLimits()
}

/// Why a document is not valid JSON (all of these are HTTP 400).
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The broad category of the error.
  public enum Kind: Sendable, Equatable {
    /// Not JSON: an unexpected byte, a truncated document, a bad escape, invalid UTF-8, trailing data…
    case syntax
    /// Nested deeper than ``JSONLimits/maxDepth``.
    case tooDeep
    /// A number literal outside the range of a float64 (e.g. `1e400`).
    case numberOutOfRange
    /// An object with the same key twice.
    case duplicateKey
  }

  /// The category.
  public var kind: Kind
  /// The 0-based byte offset in the input where the problem was found.
  public var offset: Int
  /// What is wrong, without the offset, e.g. "expected ',' or ']' after array element".
  public var message: String
  /// The JSON Pointer to the value being parsed when the error occurred (the innermost array element or
  /// object member), e.g. `/at/x/3`; the empty pointer for the document itself.
  public var pointer: JSONPointer

  /// Creates an error.
  public init(kind: Kind, offset: Int, message: String, pointer: JSONPointer = JSONPointer()) {
    self.kind = kind
    self.offset = offset
    self.message = message
    self.pointer = pointer
  }

  /// "message at byte offset", e.g. "expected ',' or ']' after array element at byte 17".
  public var description: String { "\(message) at byte \(offset)" }
}
