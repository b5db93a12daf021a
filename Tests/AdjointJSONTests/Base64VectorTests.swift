import AdjointJSON
import Foundation
import XCTest

/// The vector base64 decoder against the scalar one: the same bytes for tensors of many sizes, the same error at
/// every position of the vector blocks, and the tensor decoder's errors on top of them.
final class Base64VectorTests: XCTestCase {
  private func randomDoubles(_ count: Int, _ rng: inout SystemRandomNumberGenerator) -> [Double] {
    // Any bit pattern: NaN payloads, infinities, subnormals and negative zero included.
    (0..<count).map { _ in Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &rng)) }
  }

  private func decode(_ text: [UInt8], path: Base64.DecoderPath) -> Result<[UInt8], Base64.DecodingError> {
    text.withUnsafeBufferPointer { utf8 -> Result<[UInt8], Base64.DecodingError> in
      // A wrong length throws before the output size matters.
      let n = Base64.decodedLength(of: utf8) ?? 0
      var output = [UInt8](repeating: 0xAA, count: n)
      let result = output.withUnsafeMutableBytes { raw in
        Result { () throws(Base64.DecodingError) in try Base64.decode(utf8, into: raw, path: path) }
      }
      return result.map { output }
    }
  }

  private func tensorJSON(shape: [Int], data: [Double]) -> [UInt8] {
    var w = JSONWriter(capacity: 64)
    w.writeTensor(shape: shape, data: data, layout: .base64)
    return w.bytes
  }

  /// The comparisons below test the vector decoder only where it runs: on Linux x86-64, it must whenever the
  /// processor lists AVX2.
  func testVectorDecoderIsDetected() throws {
    #if arch(x86_64) && os(Linux)
      let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
      let flags = cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }
      XCTAssertEqual(Base64.hasVectorDecoder, flags?.split(separator: " ").contains("avx2") ?? false)
    #else
      throw XCTSkip("the vector decoder is for x86-64")
    #endif
  }

  func testTensorsRoundTripOnBothPaths() throws {
    var rng = SystemRandomNumberGenerator()
    for count in Array(0...1000) + [4093, 65_536, 262_147] {
      let data = randomDoubles(count, &rng)
      let bytes = data.withUnsafeBytes { Array($0) }
      let text = Array(Base64.encode(bytes).utf8)
      XCTAssertEqual(text, Array(Data(bytes).base64EncodedString().utf8), "\(count) elements")
      for path in Base64.DecoderPath.allCases {
        XCTAssertEqual(try decode(text, path: path).get(), bytes, "\(count) elements, \(path)")
      }
      // Through the writer, the parser and the tensor decoder (the fastest path).
      let shape = count % 2 == 0 && count > 0 ? [2, count / 2] : [count]
      let (decodedShape, decoded) = try JSONTensorDecoding.decode(
        JSONParser.parse(tensorJSON(shape: shape, data: data)), at: "/at/x")
      XCTAssertEqual(decodedShape, shape)
      XCTAssertEqual(decoded.map(\.bitPattern), data.map(\.bitPattern), "\(count) elements")
    }
  }

  func testInvalidCharacterAtEveryPositionGivesTheScalarError() {
    var rng = SystemRandomNumberGenerator()
    // 3 whole vector blocks and a tail; 32 characters are one block, the last quad is never vectorised.
    for byteCount in [24, 27, 48, 72, 100, 143] {
      let bytes = (0..<byteCount).map { _ in UInt8.random(in: 0...255, using: &rng) }
      let text = Array(Data(bytes).base64EncodedString().utf8)
      XCTAssertEqual(try decode(text, path: .fastest).get(), bytes)
      let bads: [UInt8] = [
        0x00, 0x09, 0x20, 0x21, 0x2A, 0x2C, 0x2D, 0x2E, 0x3A, 0x3D, 0x40, 0x5B, 0x5F, 0x60, 0x7B, 0x7F, 0x80, 0xAB,
        0xFF,
      ]
      for position in 0..<(text.count - 4) {
        for bad in bads {
          var corrupted = text
          corrupted[position] = bad
          let scalar = decode(corrupted, path: .scalar)
          let fastest = decode(corrupted, path: .fastest)
          guard case .failure(let error) = fastest else {
            XCTFail("\(byteCount) bytes: byte \(bad) at \(position) decoded")
            continue
          }
          XCTAssertEqual(error.offset, position, "\(byteCount) bytes, byte \(bad)")
          XCTAssertEqual(error.message, "invalid base64 character")
          XCTAssertEqual(fastest.failureValue, scalar.failureValue, "\(byteCount) bytes, byte \(bad) at \(position)")
          // A second bad character later in the text does not change which one is reported.
          if position + 5 < text.count - 4 {
            corrupted[position + 5] = UInt8(ascii: "!")
            XCTAssertEqual(decode(corrupted, path: .fastest).failureValue?.offset, position)
          }
        }
      }
    }
  }

  func testTensorErrorsFromTheVectorBlocks() throws {
    var rng = SystemRandomNumberGenerator()
    let data = randomDoubles(100, &rng)
    var text = Array(tensorJSON(shape: [100], data: data))
    // {"shape":[100],"base64":" is 25 bytes; put a '-' at base64 offset 70 (the third vector block).
    let start = 25
    XCTAssertEqual(Array(text[0..<start]), Array("{\"shape\":[100],\"base64\":\"".utf8))
    text[start + 70] = UInt8(ascii: "-")
    XCTAssertThrowsError(try JSONTensorDecoding.decode(JSONParser.parse(text), at: "/at/x")) { error in
      let error = error as? TensorDecodingError
      XCTAssertEqual(error?.pointer.description, "/at/x/base64")
      XCTAssertEqual(error?.message, "invalid base64: invalid base64 character at offset 70")
      XCTAssertEqual(error?.httpStatus, 400)
    }
  }

  func testWrongLengthForTheShape() throws {
    var rng = SystemRandomNumberGenerator()
    for (count, shape) in [(999, [1000]), (1001, [1000]), (0, [1]), (64, [8, 7])] {
      let json = tensorJSON(shape: [count], data: randomDoubles(count, &rng))
      // The same base64 text under another shape.
      let text = String(decoding: json, as: UTF8.self).replacingOccurrences(
        of: "\"shape\":[\(count)]", with: "\"shape\":\(shape)".replacingOccurrences(of: " ", with: ""))
      let needed = shape.reduce(1, *)
      XCTAssertThrowsError(try JSONTensorDecoding.decode(JSONParser.parse(text), at: "/at/x")) { error in
        let error = error as? TensorDecodingError
        XCTAssertEqual(error?.pointer.description, "/at/x/base64")
        XCTAssertEqual(
          error?.message, "'base64' holds \(count * 8) bytes, but shape \(shape) needs \(needed * 8) (float64)")
        XCTAssertEqual(error?.kind, .malformed)
      }
    }
  }
}

extension Result {
  fileprivate var failureValue: Failure? {
    if case .failure(let error) = self { return error }
    return nil
  }
}
