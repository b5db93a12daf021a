// A swift-log handler that writes one JSON object per line, for log collectors.

import AdjointCompute
import AdjointJSON
import Foundation
import HTTPCore
import HTTPServer
import Locking
import Logging

/// A `LogHandler` that writes each message as one JSON object on one line:
///
/// ```json
/// {"ts":"2026-11-30T06:38:38.123Z","level":"info","label":"adjoint.http","msg":"GET /healthz 200","status":"200"}
/// ```
///
/// `ts` is the time in RFC 3339 form (UTC, milliseconds), `level` the swift-log level, `label` the logger's label and
/// `msg` the message; then every metadata entry (the handler's, its metadata provider's, then the message's own,
/// later ones winning) as a string member, nested dictionaries and arrays written as their description. A metadata
/// key that collides with one of the four fixed members is written with a `meta.` prefix. An error attached to the
/// message becomes an `error` member. Strings are escaped, so a line never contains a raw line break.
///
/// ```swift
/// LoggingSystem.bootstrap { JSONLogHandler(label: $0) }
/// ```
public struct JSONLogHandler: LogHandler {
  /// The logger's label.
  public let label: String
  /// The least severe level written.
  public var logLevel: Logger.Level = .info
  /// Metadata written with every message of this handler.
  public var metadata: Logger.Metadata = [:]
  /// Metadata computed when each message is written.
  public var metadataProvider: Logger.MetadataProvider?
  private let sink: @Sendable ([UInt8]) -> Void

  /// Creates a handler.
  /// - Parameters:
  ///   - label: The logger's label, written as `label`.
  ///   - metadataProvider: Metadata to add to every message when it is written.
  ///   - sink: Receives each line, its final `\n` included; by default ``writeToStandardError(_:)``.
  public init(
    label: String, metadataProvider: Logger.MetadataProvider? = nil,
    sink: @escaping @Sendable ([UInt8]) -> Void = JSONLogHandler.writeToStandardError
  ) {
    self.label = label
    self.metadataProvider = metadataProvider
    self.sink = sink
  }

  public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  public func log(event: LogEvent) {
    var merged = metadata
    if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
    if let own = event.metadata { merged.merge(own) { $1 } }

    var writer = JSONWriter(capacity: 256)
    writer.beginObject()
    writer.writeKey("ts")
    writer.write(JSONLogHandler.timestamp(millisecondsSince1970: JSONLogHandler.nowMilliseconds()))
    writer.writeKey("level")
    writer.write(event.level.rawValue)
    writer.writeKey("label")
    writer.write(label)
    writer.writeKey("msg")
    writer.write(event.message.description)
    if let error = event.error {
      writer.writeKey(merged["error"] == nil ? "error" : "meta.error")
      writer.write(String(describing: error))
    }
    // Sorted, so that lines are stable and easy to compare.
    for key in merged.keys.sorted() {
      writer.writeKey(JSONLogHandler.reservedKeys.contains(key) ? "meta.\(key)" : key)
      writer.write(merged[key]!.description)
    }
    writer.endObject()
    var line = writer.bytes
    line.append(UInt8(ascii: "\n"))
    sink(line)
  }

  private static let reservedKeys: Set<String> = ["ts", "level", "label", "msg"]

  /// Writes `line` to the standard error stream in one piece: lines written from several threads do not interleave.
  public static func writeToStandardError(_ line: [UInt8]) {
    standardErrorLock.withLock { _ in FileHandle.standardError.write(Data(line)) }
  }

  private static let standardErrorLock = Locked(())

  private static func nowMilliseconds() -> Int64 {
    Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
  }

  /// The RFC 3339 form of a time in UTC with milliseconds, e.g. `"2026-11-30T06:38:38.123Z"`.
  /// - Parameter milliseconds: Milliseconds since 1970-01-01T00:00:00Z (negative before it); times outside the years
  ///   0000 to 9999 are clamped to them.
  public static func timestamp(millisecondsSince1970 milliseconds: Int64) -> String {
    let clamped = Swift.min(Swift.max(milliseconds, -62_167_219_200_000), 253_402_300_799_999)
    let (days, millisOfDay) = clamped.floorDivided(by: 86_400_000)
    let (year, month, day) = HTTPDate.civilDate(daysSince1970: Int(days))

    var text: [UInt8] = []
    text.reserveCapacity(24)
    func append(_ value: Int64, digits: Int) {
      var divisor: Int64 = 1
      for _ in 1..<digits { divisor *= 10 }
      var rest = value
      while divisor > 0 {
        text.append(UInt8(ascii: "0") + UInt8(rest / divisor))
        rest %= divisor
        divisor /= 10
      }
    }
    append(Int64(year), digits: 4)
    text.append(UInt8(ascii: "-"))
    append(Int64(month), digits: 2)
    text.append(UInt8(ascii: "-"))
    append(Int64(day), digits: 2)
    text.append(UInt8(ascii: "T"))
    append(millisOfDay / 3_600_000, digits: 2)
    text.append(UInt8(ascii: ":"))
    append(millisOfDay / 60_000 % 60, digits: 2)
    text.append(UInt8(ascii: ":"))
    append(millisOfDay / 1000 % 60, digits: 2)
    text.append(UInt8(ascii: "."))
    append(millisOfDay % 1000, digits: 3)
    text.append(UInt8(ascii: "Z"))
    return String(decoding: text, as: UTF8.self)
  }
}

extension Int64 {
  /// The quotient rounded toward minus infinity, and the remainder (never negative for a positive divisor).
  fileprivate func floorDivided(by divisor: Int64) -> (quotient: Int64, remainder: Int64) {
    let quotient = self / divisor
    let remainder = self % divisor
    return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
  }
}
