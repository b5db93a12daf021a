import AdjointExpressions
import XCTest

final class SHA256Tests: XCTestCase {
  private func hex(_ text: String) -> String { SHA256.hash(Array(text.utf8)).hexString }

  func testKnownVectors() {
    XCTAssertEqual(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    XCTAssertEqual(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    XCTAssertEqual(
      hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    XCTAssertEqual(
      hex(
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
      ),
      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
    XCTAssertEqual(
      SHA256.hash(repeatElement(UInt8(ascii: "a"), count: 1_000_000)).hexString,
      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
  }

  func testIncrementalUpdatesAgreeAtEveryBlockBoundary() {
    let message = (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    for split in [0, 1, 55, 56, 63, 64, 65, 128, 199, 200] {
      var hash = SHA256()
      hash.update(message[..<split])
      hash.update(message[split...])
      XCTAssertEqual(hash.finalize(), SHA256.hash(message), "split at \(split)")
    }
    // Lengths around the padding boundary (55, 56 and 64 bytes) against known digests.
    XCTAssertEqual(
      hex(String(repeating: "a", count: 55)), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318")
    XCTAssertEqual(
      hex(String(repeating: "a", count: 56)), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a")
    XCTAssertEqual(
      hex(String(repeating: "a", count: 64)), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb")
  }
}
