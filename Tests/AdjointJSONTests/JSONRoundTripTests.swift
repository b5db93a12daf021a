import AdjointJSON
import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Numbers against the C library and the standard library over random inputs: the writer's text is the shortest
/// round-trip form (`description`'s), and the parser's result is `strtod`'s.
final class JSONRoundTripTests: XCTestCase {
  /// A random finite double: any bit pattern, or one of the ranges real data lives in.
  private func randomDouble(_ i: Int, _ rng: inout SystemRandomNumberGenerator) -> Double {
    var d: Double
    switch i % 6 {
    case 0: d = Double.random(in: -3...3, using: &rng)  // S2-like points
    case 1: d = Double.random(in: -0.01...0.01, using: &rng)  // gradients
    case 2: d = Double(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng)))
    case 3: d = Double(Int64.random(in: -(1 << 54)...(1 << 54), using: &rng)) / 8
    default: d = Double(bitPattern: rng.next())
    }
    return d.isFinite ? d : 0.5
  }

  /// `strtod` on a literal, through a C string.
  private func strtod(_ text: String) -> Double {
    text.withCString { Foundation.strtod($0, nil) }
  }

  /// One write per number (the scalar path) and whole tensors (the bulk path): the text is `description`, one
  /// parse gives the same bits back, and `strtod` agrees.
  func testWrittenNumbersAreShortestAndRoundTrip() throws {
    var rng = SystemRandomNumberGenerator()
    let values = (0..<200_000).map { randomDouble($0, &rng) }
    var scalars = JSONWriter()
    scalars.beginArray()
    for d in values { scalars.write(d) }
    scalars.endArray()
    var tensor = JSONWriter()
    tensor.write(doubles: values, shape: [values.count / 8, 8])
    let texts = values.map(\.description)
    let expected = "[" + texts.joined(separator: ",") + "]"
    XCTAssertEqual(scalars.string, expected)
    let parsed = try XCTUnwrap(try JSONParser.parse(scalars.bytes).arrayValue?.numericTensor?.data)
    XCTAssertEqual(parsed.map(\.bitPattern), values.map(\.bitPattern))
    let parsedTensor = try XCTUnwrap(try JSONParser.parse(tensor.bytes).arrayValue?.numericTensor)
    XCTAssertEqual(parsedTensor.shape, [values.count / 8, 8])
    XCTAssertEqual(parsedTensor.data.map(\.bitPattern), values.map(\.bitPattern))
    var mismatches = 0
    for (d, text) in zip(values, texts) where strtod(text).bitPattern != d.bitPattern {
      mismatches += 1
      if mismatches < 5 { XCTFail("\(text) is not \(d.bitPattern) for strtod") }
    }
    XCTAssertEqual(mismatches, 0)
  }

  /// Random literals (short and long mantissas, all exponent ranges, as values and as object members of the flat
  /// object path) parse to `strtod`'s double.
  func testParsedNumbersMatchStrtod() throws {
    var rng = SystemRandomNumberGenerator()
    func digits(_ n: Int) -> String {
      String((0..<n).map { _ in Character(Unicode.Scalar(UInt8.random(in: 48...57, using: &rng))) })
    }
    var literals: [String] = []
    for i in 0..<100_000 {
      var s = Bool.random(using: &rng) ? "-" : ""
      var int = digits(Int.random(in: 1...(i % 10 == 0 ? 25 : 4), using: &rng))
      while int.count > 1 && int.first == "0" { int.removeFirst() }
      s += int
      if i % 4 != 0 { s += "." + digits(Int.random(in: 1...(i % 10 == 1 ? 30 : 17), using: &rng)) }
      if i % 3 == 0 {
        s += ["e", "E"].randomElement(using: &rng)! + ["", "+", "-"].randomElement(using: &rng)!
        s += String(Int.random(in: 0...(i % 9 == 0 ? 330 : 30), using: &rng))
      }
      literals.append(s)
    }
    // Shortest and 17-digit forms of random doubles too.
    for i in 0..<50_000 {
      let d = randomDouble(i, &rng)
      literals.append(i % 2 == 0 ? d.description : String(format: "%.17g", d))
    }
    var mismatches = 0
    for batch in stride(from: 0, to: literals.count, by: 500) {
      let chunk = literals[batch..<min(batch + 500, literals.count)]
      let references = chunk.map(strtod)
      let finite = zip(chunk, references).filter { $0.1.isFinite }
      // As a flat object per literal (the batch path) and as a numeric array.
      let objects = "[" + finite.map { "{\"x\":\($0.0),\"y\":1}" }.joined(separator: ",") + "]"
      let array = "[" + finite.map(\.0).joined(separator: ",") + "]"
      let fromObjects = try XCTUnwrap(try JSONParser.parse(objects).arrayValue).map { $0["x"]?.doubleValue }
      let fromArray = try XCTUnwrap(try JSONParser.parse(array).arrayValue?.numericTensor?.data)
      for (k, (text, reference)) in finite.enumerated() {
        if fromObjects[k]?.bitPattern != reference.bitPattern || fromArray[k].bitPattern != reference.bitPattern {
          mismatches += 1
          if mismatches < 5 { XCTFail("\(text): got \(String(describing: fromObjects[k])), expected \(reference)") }
        }
      }
      for (text, reference) in zip(chunk, references) where !reference.isFinite {
        XCTAssertThrowsError(try JSONParser.parse(text), text)
      }
    }
    XCTAssertEqual(mismatches, 0)
  }
}
