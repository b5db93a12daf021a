// gzip (RFC 1952) compression and bounded decompression over zlib. The only Swift file that calls zlib.

import CZlib

/// Why compressing or decompressing failed.
public struct GzipError: Error, Hashable, Sendable, CustomStringConvertible {
  private enum Base: Hashable, Sendable {
    case corruptData
    case truncatedData
    case outputLimitExceeded
    case zlibFailure
  }

  private let base: Base
  /// A human-readable explanation (zlib's message where it gave one).
  public let message: String

  private init(_ base: Base, _ message: String) {
    self.base = base
    self.message = message
  }

  public static func == (lhs: GzipError, rhs: GzipError) -> Bool { lhs.base == rhs.base }
  public func hash(into hasher: inout Hasher) { hasher.combine(base) }
  public var description: String { "GzipError(\(message))" }

  /// The input is not valid gzip data.
  public static let corruptData = GzipError(.corruptData, "invalid gzip data")
  /// The input ended before the end of the gzip stream.
  public static let truncatedData = GzipError(.truncatedData, "truncated gzip data")
  /// The decompressed output would be larger than the limit.
  public static let outputLimitExceeded = GzipError(.outputLimitExceeded, "decompressed data exceeds the limit")
  /// zlib failed for another reason (out of memory, bad parameters).
  public static let zlibFailure = GzipError(.zlibFailure, "zlib failure")

  fileprivate static func corrupt(_ message: String?) -> GzipError {
    GzipError(.corruptData, message.map { "invalid gzip data: \($0)" } ?? corruptData.message)
  }

  fileprivate static func failure(_ code: Int32, _ function: String) -> GzipError {
    GzipError(.zlibFailure, "\(function) failed with zlib code \(code)")
  }
}

/// gzip compression and decompression.
///
/// ```swift
/// let packed = try Gzip.compress(Array("hello".utf8))
/// let unpacked = try Gzip.decompress(packed, limit: 1 << 20)
/// ```
public enum Gzip {
  /// The version of the zlib library linked at run time, e.g. `"1.2.13"`.
  public static var zlibVersion: String { String(cString: CZlib.zlibVersion()) }

  /// Compresses `bytes` into the gzip format.
  /// - Parameters:
  ///   - bytes: The data.
  ///   - level: The zlib compression level, 0 (none) to 9 (best); default 6.
  /// - Returns: A complete gzip member.
  /// - Throws: ``GzipError/zlibFailure`` if zlib cannot initialize.
  public static func compress(_ bytes: [UInt8], level: Int = 6) throws(GzipError) -> [UInt8] {
    let stream = try ZStream(mode: .deflate(level: Int32(max(0, min(9, level)))))
    defer { stream.end() }
    let bound = Int(stream.withUnsafeStream { deflateBound($0, uLong(bytes.count)) }) + 32
    var output = [UInt8](repeating: 0, count: bound)
    var produced = 0
    var code: Int32 = Z_OK
    bytes.withUnsafeBufferPointer { input in
      output.withUnsafeMutableBufferPointer { out in
        stream.withUnsafeStream { z in
          z.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
          z.pointee.avail_in = uInt(input.count)
          z.pointee.next_out = out.baseAddress
          z.pointee.avail_out = uInt(out.count)
          code = deflate(z, Z_FINISH)
          produced = out.count - Int(z.pointee.avail_out)
        }
      }
    }
    guard code == Z_STREAM_END else { throw .failure(code, "deflate") }
    output.removeSubrange(produced...)
    return output
  }

  /// Decompresses gzip data (one or more concatenated members), refusing to produce more than `limit` bytes.
  /// - Parameters:
  ///   - bytes: The gzip data.
  ///   - limit: The largest output accepted, inclusive.
  /// - Returns: The decompressed bytes.
  /// - Throws: ``GzipError/outputLimitExceeded`` as soon as the output would exceed `limit`;
  ///   ``GzipError/corruptData`` or ``GzipError/truncatedData`` for bad input.
  public static func decompress(_ bytes: [UInt8], limit: Int) throws(GzipError) -> [UInt8] {
    let stream = try ZStream(mode: .inflate)
    defer { stream.end() }
    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    var consumed = 0
    while true {
      var code: Int32 = Z_OK
      var produced = 0
      var message: String?
      bytes.withUnsafeBufferPointer { input in
        chunk.withUnsafeMutableBufferPointer { out in
          stream.withUnsafeStream { z in
            z.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress.map { $0 + consumed })
            z.pointee.avail_in = uInt(input.count - consumed)
            z.pointee.next_out = out.baseAddress
            z.pointee.avail_out = uInt(out.count)
            code = inflate(z, Z_NO_FLUSH)
            produced = out.count - Int(z.pointee.avail_out)
            consumed = input.count - Int(z.pointee.avail_in)
            message = z.pointee.msg.map { String(cString: $0) }
          }
        }
      }
      if produced > limit - output.count { throw .outputLimitExceeded }
      output.append(contentsOf: chunk[0..<produced])
      switch code {
      case Z_STREAM_END:
        // Another gzip member may follow (RFC 1952 §2.2).
        guard consumed < bytes.count else { return output }
        let reset = stream.withUnsafeStream { inflateReset($0) }
        guard reset == Z_OK else { throw .failure(reset, "inflateReset") }
      case Z_OK:
        continue
      case Z_BUF_ERROR:
        // No progress possible: the input ended before the end of the stream.
        if produced == 0 { throw consumed == bytes.count ? .truncatedData : .corruptData }
      case Z_DATA_ERROR, Z_NEED_DICT:
        throw .corrupt(message)
      default:
        throw .failure(code, "inflate")
      }
    }
  }
}

/// Owns one heap-allocated `z_stream` (zlib keeps a pointer back to it, so it must not move) from its
/// `deflateInit2`/`inflateInit2` to its `deflateEnd`/`inflateEnd`.
final class ZStream {
  enum Mode {
    case deflate(level: Int32)
    case inflate
  }

  private let stream: UnsafeMutablePointer<z_stream>
  private let mode: Mode
  private var ended = false

  /// gzip wrapper, 32 KiB window (RFC 1952).
  private static let gzipWindowBits: Int32 = 15 + 16

  init(mode: Mode) throws(GzipError) {
    self.mode = mode
    stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    let size = Int32(MemoryLayout<z_stream>.size)
    let code: Int32
    switch mode {
    case .deflate(let level):
      code = deflateInit2_(
        stream, level, Z_DEFLATED, ZStream.gzipWindowBits, 8, Z_DEFAULT_STRATEGY, CZlib.zlibVersion(), size)
    case .inflate:
      code = inflateInit2_(stream, ZStream.gzipWindowBits, CZlib.zlibVersion(), size)
    }
    guard code == Z_OK else {
      ended = true
      stream.deinitialize(count: 1)
      stream.deallocate()
      throw .failure(code, "inflateInit2")
    }
  }

  /// Runs `body` with the stream; the pointer must not escape.
  func withUnsafeStream<R>(_ body: (UnsafeMutablePointer<z_stream>) throws -> R) rethrows -> R {
    precondition(!ended, "z_stream used after end()")
    return try body(stream)
  }

  /// Releases zlib's state and the stream's memory. Must be called exactly once.
  func end() {
    guard !ended else { return }
    ended = true
    switch mode {
    case .deflate: _ = deflateEnd(stream)
    case .inflate: _ = inflateEnd(stream)
    }
    stream.deinitialize(count: 1)
    stream.deallocate()
  }

  deinit {
    assert(ended, "leak of a z_stream: end() was not called")
    if !ended { end() }
  }
}
