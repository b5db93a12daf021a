import AdjointJSON
import Foundation
import XCTest

final class JSONWriterTests: XCTestCase {
  private func text(_ body: (inout JSONWriter) -> Void) -> String {
    var w = JSONWriter()
    body(&w)
    return w.string
  }

  func testScalarsAndStructure() {
    XCTAssertEqual(text { $0.writeNull() }, "null")
    XCTAssertEqual(text { $0.write(true) }, "true")
    XCTAssertEqual(text { $0.write(false) }, "false")
    XCTAssertEqual(text { $0.write(-42) }, "-42")
    XCTAssertEqual(
      text {
        $0.beginObject()
        $0.writeKey("a")
        $0.write(1.5)
        $0.writeKey("b")
        $0.beginArray()
        $0.write(1)
        $0.write("x")
        $0.beginObject()
        $0.endObject()
        $0.beginArray()
        $0.endArray()
        $0.endArray()
        $0.writeKey("c")
        $0.writeNull()
        $0.endObject()
      }, "{\"a\":1.5,\"b\":[1,\"x\",{},[]],\"c\":null}")
  }

  func testNumbers() {
    let cases: [(Double, String)] = [
      (0, "0.0"), (-0.0, "-0.0"), (2, "2.0"), (-3, "-3.0"), (0.1, "0.1"), (1e-5, "1e-05"), (1e16, "1e+16"),
      (123_456_789, "123456789.0"), (9_007_199_254_740_991, "9007199254740991.0"),
      (Double(bitPattern: 1), "5e-324"), (.greatestFiniteMagnitude, "1.7976931348623157e+308"),
      (.nan, "\"NaN\""), (.infinity, "\"Infinity\""), (-.infinity, "\"-Infinity\""),
    ]
    for (d, expected) in cases {
      XCTAssertEqual(text { $0.write(d) }, expected)
    }
  }

  func testNumbersMatchDescriptionAndRoundTrip() throws {
    var rng = SystemRandomNumberGenerator()
    var values: [Double] = []
    for i in 0..<50_000 {
      var d = Double(bitPattern: rng.next())
      switch i % 5 {
      case 0: d = Double.random(in: -1...1)
      case 1: d = Double(Int.random(in: -1_000_000_000...1_000_000_000))
      case 2: d = Double(Int64.random(in: -(1 << 53)...(1 << 53)))
      case 3: d = Double(Float(bitPattern: UInt32.random(in: 0...UInt32.max)))
      default: break
      }
      if !d.isFinite { d = 1 }
      values.append(d)
    }
    var w = JSONWriter()
    w.write(doubles: values, shape: [values.count])
    let expected = "[" + values.map(\.description).joined(separator: ",") + "]"
    XCTAssertEqual(w.string, expected)
    let parsed = try XCTUnwrap(try JSONParser.parse(w.bytes).arrayValue?.numericTensor?.data)
    XCTAssertEqual(parsed.map(\.bitPattern), values.map(\.bitPattern))
  }

  func testExtremeNumbersMatchDescription() throws {
    var values: [Double] = []
    for e in -1074...1023 {
      let d = Double(sign: .plus, exponent: e, significand: 1)
      values += [d, d.nextUp, d.nextDown, -d]
    }
    for t in 1..<2000 { values.append(Double(bitPattern: UInt64(t))) }
    values += [
      0.0001, 0.00009999, 9.999999999999999e-05, 1e-4.nextDown, 1e-4.nextUp, 4503599627370495.5,
      9_007_199_254_740_992, 9_007_199_254_740_994, 1e16, 1e17, 123456.789e3, 0.3, 2.0 / 3.0, 1e21, 1e22, 1e23,
    ]
    for d in values where d.isFinite {
      var w = JSONWriter()
      w.write(d)
      XCTAssertEqual(w.string, d.description, "\(d.bitPattern)")
      XCTAssertEqual(try JSONParser.parse(w.bytes).doubleValue?.bitPattern, d.bitPattern, d.description)
    }
  }

  func testStringEscaping() throws {
    XCTAssertEqual(
      text { $0.write("a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1f}/é😀") }, "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f/é😀\"")
    var rng = SystemRandomNumberGenerator()
    let alphabet: [Character] = ["a", "\"", "\\", "\n", "\u{0}", "\u{1f}", "é", "😀", "/", " ", "\u{2028}"]
    for _ in 0..<500 {
      let s = String((0..<Int.random(in: 0...20, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
      var w = JSONWriter()
      w.write(s)
      XCTAssertEqual(try JSONParser.parse(w.bytes), .string(s))
      // Foundation agrees.
      let decoded = try JSONSerialization.jsonObject(with: Data(w.bytes), options: [.fragmentsAllowed]) as? String
      XCTAssertEqual(decoded, s)
    }
  }

  func testNestedDoublesFromShape() {
    let data: [Double] = [1, 2, 3, 4, 5, 6]
    XCTAssertEqual(text { $0.write(doubles: data, shape: [2, 3]) }, "[[1.0,2.0,3.0],[4.0,5.0,6.0]]")
    XCTAssertEqual(text { $0.write(doubles: data, shape: [3, 2, 1]) }, "[[[1.0],[2.0]],[[3.0],[4.0]],[[5.0],[6.0]]]")
    XCTAssertEqual(text { $0.write(doubles: [7], shape: []) }, "7.0")
    XCTAssertEqual(text { $0.write(doubles: [], shape: [0]) }, "[]")
    XCTAssertEqual(text { $0.write(doubles: [], shape: [2, 0]) }, "[[],[]]")
    XCTAssertEqual(text { $0.write(doubles: [.nan, -.infinity], shape: [2]) }, "[\"NaN\",\"-Infinity\"]")
  }

  func testValueRoundTrip() throws {
    let doc =
      "{\"a\":[1.0,\"x\",null,true,false,{\"b\":[]}],\"t\":[[1.0,2.0],[3.0,4.0]],\"e\":{},\"s\":\"\\u0000\\\"\",\"n\":-0.0}"
    let value = try JSONParser.parse(doc)
    var w = JSONWriter()
    w.write(value)
    XCTAssertEqual(w.string, doc)
    XCTAssertEqual(value.description, doc)
    XCTAssertEqual(try JSONParser.parse(w.bytes), value)
  }

  /// The buffer handed out by `bytes` is not written again: writing after reading it (and after setting it) goes on
  /// in a copy, whatever the sizes (the buffer grows several times here).
  func testReadingBytesThenWritingMore() throws {
    var w = JSONWriter(capacity: 4)
    w.beginArray()
    w.write(1.5)
    let first = w.bytes
    XCTAssertEqual(first, Array("[1.5".utf8))
    let big = (0..<5000).map { Double($0) / 7 }
    w.write(doubles: big, shape: [50, 100])
    w.writeTensor(shape: [5000], data: big, layout: .base64)
    w.writeTensor(shape: [2], data: [1, 2], layout: .base64)
    w.endArray()
    XCTAssertEqual(first, Array("[1.5".utf8))
    let second = w.bytes
    let again = w.bytes
    XCTAssertEqual(second, again)
    let parsed = try XCTUnwrap(try JSONParser.parse(second).arrayValue)
    XCTAssertEqual(parsed.count, 4)
    XCTAssertEqual(parsed[1].arrayValue?.numericTensor?.data, big)
    XCTAssertEqual(try JSONTensorDecoding.decode(parsed[2]).data, big)
    XCTAssertEqual(try JSONTensorDecoding.decode(parsed[3]).data, [1, 2])
    w.bytes = Array("[1".utf8)  // the text only: a comma still comes before the next value
    w.write(true)
    w.endArray()
    XCTAssertEqual(w.string, "[1,true]")
    XCTAssertEqual(second, again)
  }

  /// Keys are remembered by the writer: repeated, colliding, freed and rebuilt keys (with other contents at the
  /// same length) are still written as themselves.
  func testRepeatedKeys() throws {
    var rng = SystemRandomNumberGenerator()
    let pool = [
      "x", "y", "value", "gradient", "twenty-one bytes key.", "twenty-two bytes key..", "é", "a\"b", "", "tab\t",
    ]
    var w = JSONWriter()
    var expected = "{"
    w.beginObject()
    for i in 0..<2000 {
      // Half the keys are built afresh each time (heap strings that come and go, same lengths, other contents).
      let key =
        i % 2 == 0
        ? pool.randomElement(using: &rng)!
        : String(repeating: "k", count: 13) + String(UInt8.random(in: 10...99, using: &rng)) + "\(i % 7)"
      w.writeKey(key)
      w.write(i)
      var escaped = JSONWriter()
      escaped.write(key)
      expected += (i > 0 ? "," : "") + escaped.string + ":\(i)"
    }
    w.endObject()
    expected += "}"
    XCTAssertEqual(w.string, expected)
  }
}
