import AdjointJSON
import Foundation
import XCTest

/// Base64 against Foundation's encoder on every short length (the chunked and multi-byte loops have tails at
/// each length), and the offset of an invalid character at every position.
final class Base64Tests: XCTestCase {
  private func randomBytes(_ count: Int, _ rng: inout SystemRandomNumberGenerator) -> [UInt8] {
    (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
  }

  func testRoundTripMatchesFoundationAtEveryLength() throws {
    var rng = SystemRandomNumberGenerator()
    for n in Array(0...80) + [3071, 3072, 3073, 3074, 6144, 6150, 10_000] {
      let bytes = randomBytes(n, &rng)
      let expected = Data(bytes).base64EncodedString()
      XCTAssertEqual(Base64.encode(bytes), expected, "length \(n)")
      XCTAssertEqual(try Base64.decode(expected), bytes, "length \(n)")
      // Appending after existing text.
      var output: [UInt8] = Array("prefix".utf8)
      bytes.withUnsafeBytes { Base64.encode($0, into: &output) }
      XCTAssertEqual(output, Array("prefix".utf8) + Array(expected.utf8), "length \(n)")
    }
  }

  func testInvalidCharacterOffsetAtEveryPosition() {
    var rng = SystemRandomNumberGenerator()
    for n in [1, 2, 3, 5, 6, 7, 9, 12, 13, 24, 25, 30, 48, 61] {
      let text = Array(Data(randomBytes(n, &rng)).base64EncodedString().utf8)
      // Positions before the last quad can take '=' too; the last quad's padding rules are tested elsewhere.
      for position in 0..<text.count {
        var bads: [UInt8] = [UInt8(ascii: "!"), UInt8(ascii: "-"), UInt8(ascii: "_"), 0x20, 0x80, 0xFF, 0x00]
        if position < text.count - 4 { bads.append(UInt8(ascii: "=")) }
        if text[position] == UInt8(ascii: "=") { continue }
        for bad in bads {
          var corrupted = text
          corrupted[position] = bad
          XCTAssertThrowsError(try Base64.decode(String(decoding: corrupted, as: UTF8.self))) { error in
            if bad < 0x80 {
              XCTAssertEqual((error as? Base64.DecodingError)?.offset, position, "length \(n), byte \(bad)")
            }
          }
        }
      }
    }
  }

  func testPaddingRules() {
    XCTAssertEqual(try Base64.decode("QQ=="), [0x41])
    XCTAssertEqual(try Base64.decode("QUI="), [0x41, 0x42])
    XCTAssertEqual(try Base64.decode("QUJD"), [0x41, 0x42, 0x43])
    XCTAssertEqual((try? Base64.decode("QU=D")) == nil, true)
    XCTAssertEqual((try? Base64.decode("Q===")) == nil, true)
    XCTAssertEqual((try? Base64.decode("====")) == nil, true)
    XCTAssertEqual((try? Base64.decode("QUJDQQ==QUJD")) == nil, true)
    XCTAssertEqual((try? Base64.decode("QUJ")) == nil, true)
  }
}
