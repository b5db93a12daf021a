// Request ids: the client's `X-Request-Id` when it is sane, else one made up here, cheaply and uniquely per process.

import Synchronization

/// The `X-Request-Id` of requests: how a request is named in logs and in the response that answers it.
///
/// ``HTTPConnectionStateMachine`` gives every request an id as soon as its header section is parsed: the client's
/// `X-Request-Id` when it is valid (see ``isValid(_:)``), else a generated one (``generate()``). The request the
/// application sees carries it as its only `X-Request-Id` field, and every response to it echoes it.
public enum HTTPRequestID {
  /// The header field that carries the id.
  public static let fieldName = "X-Request-Id"

  /// The longest id accepted from a client, in bytes.
  public static let maxLength = 128

  /// Whether `value` may serve as a request id: 1 to 128 visible ASCII characters (`!` to `~`, no spaces).
  public static func isValid(_ value: String) -> Bool {
    let utf8 = value.utf8
    guard !utf8.isEmpty && utf8.count <= maxLength else { return false }
    return utf8.allSatisfy { $0 >= 0x21 && $0 <= 0x7E }
  }

  /// A new id, unique within the process: a random 30-bit prefix chosen once per process and a counter, both in
  /// base 32 (`0`-`9`, `a`-`v`), e.g. `"k3j9q2-1a"`. Up to the trillionth id it fits in 15 bytes, which Swift keeps
  /// inline: making one costs an atomic increment and no allocation, and copying it no reference counting.
  public static func generate() -> String {
    let number = counter.add(1, ordering: .relaxed).newValue
    var digits = 1
    while digits < 13 && number >> (5 * UInt64(digits)) != 0 { digits += 1 }
    let prefixDigits = 6
    return String(unsafeUninitializedCapacity: prefixDigits + 1 + digits) { buffer in
      for index in 0..<prefixDigits { buffer[index] = digit(prefix >> (5 * UInt64(prefixDigits - 1 - index))) }
      buffer[prefixDigits] = UInt8(ascii: "-")
      for index in 0..<digits {
        buffer[prefixDigits + 1 + index] = digit(number >> (5 * UInt64(digits - 1 - index)))
      }
      return prefixDigits + 1 + digits
    }
  }

  /// Gives `fields` exactly one valid `X-Request-Id` field and returns its value: the first one's when it is valid,
  /// else a generated id. `first` is the index of the first such field and `count` the number of them (the parser
  /// counts them as it goes, so the common cases cost no second pass).
  static func assign(_ fields: inout [HTTPField], first: Int?, count: Int) -> String {
    if let first, isValid(fields[first].value) {
      if count > 1 { removeRequestIDFields(&fields, keeping: first) }
      return fields[first].value
    }
    if first != nil { removeRequestIDFields(&fields, keeping: nil) }
    let id = generate()
    fields.append(HTTPField(name: fieldName, value: id))
    return id
  }

  private static func removeRequestIDFields(_ fields: inout [HTTPField], keeping kept: Int?) {
    var index = 0
    fields.removeAll { field in
      defer { index += 1 }
      return index != kept && HTTPHeaders.namesEqual(field.name, fieldName)
    }
  }

  private static let prefix = UInt64.random(in: 0..<(1 << 30))
  private static let counter = Atomic<UInt64>(0)

  /// The base-32 digit of the low 5 bits of `value`.
  private static func digit(_ value: UInt64) -> UInt8 {
    let bits = UInt8(truncatingIfNeeded: value & 0x1F)
    return bits < 10 ? UInt8(ascii: "0") + bits : UInt8(ascii: "a") + bits - 10
  }
}
