import Gzip
import XCTest

final class GzipTests: XCTestCase {
  /// Deterministic bytes that compress poorly.
  private func noise(_ count: Int, seed: UInt64 = 42) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return UInt8(truncatingIfNeeded: state >> 56)
    }
  }

  func testRoundTrip() throws {
    for input in [[], Array("hello, gzip".utf8), Array(repeating: UInt8(ascii: "x"), count: 1_000_000), noise(300_000)]
    {
      let packed = try Gzip.compress(input)
      XCTAssertEqual(Array(packed.prefix(2)), [0x1F, 0x8B], "gzip magic")
      XCTAssertEqual(try Gzip.decompress(packed, limit: input.count), input)
    }
  }

  func testCompressionLevels() throws {
    let input = Array(String(repeating: #"{"x":[1,2,3]},"#, count: 1000).utf8)
    let fast = try Gzip.compress(input, level: 1)
    let best = try Gzip.compress(input, level: 9)
    XCTAssertLessThan(best.count, input.count / 10)
    XCTAssertEqual(try Gzip.decompress(fast, limit: .max), input)
    XCTAssertEqual(try Gzip.decompress(best, limit: .max), input)
  }

  func testLimitIsInclusiveAndEnforced() throws {
    let input = Array(repeating: UInt8(7), count: 100_000)
    let packed = try Gzip.compress(input)
    XCTAssertEqual(try Gzip.decompress(packed, limit: 100_000).count, 100_000)
    XCTAssertThrowsError(try Gzip.decompress(packed, limit: 99_999)) {
      XCTAssertEqual($0 as? GzipError, .outputLimitExceeded)
    }
  }

  func testBombStopsEarly() throws {
    // 64 MiB of zeros compresses to ~64 KiB; a 1 MiB limit must stop long before inflating it all.
    let packed = try Gzip.compress(Array(repeating: 0, count: 64 << 20))
    XCTAssertThrowsError(try Gzip.decompress(packed, limit: 1 << 20)) {
      XCTAssertEqual($0 as? GzipError, .outputLimitExceeded)
    }
  }

  func testConcatenatedMembers() throws {
    let packed = try Gzip.compress(Array("abc".utf8)) + Gzip.compress(Array("def".utf8))
    XCTAssertEqual(try Gzip.decompress(packed, limit: 6), Array("abcdef".utf8))
  }

  func testCorruptAndTruncatedInput() throws {
    XCTAssertThrowsError(try Gzip.decompress(Array("not gzip at all".utf8), limit: 100)) {
      XCTAssertEqual($0 as? GzipError, .corruptData)
    }
    let packed = try Gzip.compress(noise(10_000))
    XCTAssertThrowsError(try Gzip.decompress(Array(packed.dropLast(20)), limit: .max)) {
      XCTAssertEqual($0 as? GzipError, .truncatedData)
    }
    XCTAssertThrowsError(try Gzip.decompress([], limit: 100)) {
      XCTAssertEqual($0 as? GzipError, .truncatedData)
    }
    var flipped = packed
    flipped[flipped.count - 6] ^= 0xFF  // the CRC-32 trailer
    XCTAssertThrowsError(try Gzip.decompress(flipped, limit: .max)) {
      XCTAssertEqual($0 as? GzipError, .corruptData)
    }
  }

  func testZlibVersion() {
    XCTAssertTrue(Gzip.zlibVersion.hasPrefix("1."), Gzip.zlibVersion)
  }
}
