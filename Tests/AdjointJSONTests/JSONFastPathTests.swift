import AdjointJSON
import Foundation
import XCTest

/// The word-at-a-time and single-append fast paths agree with the byte-by-byte definitions.
final class JSONFastPathTests: XCTestCase {
  /// Every special byte (quote, backslash, control character, non-ASCII) at every offset of a long string, so the
  /// string scan (32 bytes, then 8, then one at a time) meets it in every lane and at every distance from the end
  /// of the input.
  func testStringScanFindsSpecialBytesInEveryLane() throws {
    let specials: [(raw: String, expected: String?)] = [
      ("\\\"", "\""), ("\\\\", "\\"), ("\\n", "\n"), ("\\u00e9", "é"), ("é", "é"), ("😀", "😀"), ("\u{1}", nil),
      ("\u{1f}", nil), ("\u{7f}", "\u{7f}"), (" ", " "),
    ]
    for length in [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65] {
      for offset in 0...length {
        for (raw, expected) in specials {
          let prefix = String(repeating: "a", count: offset)
          let suffix = String(repeating: "b", count: length - offset)
          let text = "\"" + prefix + raw + suffix + "\""
          if let expected {
            XCTAssertEqual(try JSONParser.parse(text), .string(prefix + expected + suffix), text)
          } else {
            XCTAssertThrowsError(try JSONParser.parse(text), text)
          }
          // Unterminated: the scan must stop at the end of the input.
          XCTAssertThrowsError(try JSONParser.parse("\"" + prefix + raw + suffix), text)
        }
      }
    }
  }

  /// Small flat objects (the batch path) and everything that makes it give up (containers, long or escaped or
  /// non-ASCII keys, many members, duplicates, invalid JSON) parse like the general path, errors included.
  func testFlatObjectsMatchTheGeneralPath() throws {
    let valid: [(String, JSONValue)] = [
      ("{\"x\":1.5,\"y\":-2}", ["x": 1.5, "y": -2]),
      (
        "{ \"x\" : 1 , \"s\" : \"t\\n\" , \"b\":true,\"f\":false,\"n\":null }",
        ["x": 1, "s": "t\n", "b": true, "f": false, "n": nil]
      ),
      ("{\"x\":1,\"a\":[1,2],\"y\":2}", ["x": 1, "a": [1, 2], "y": 2]),
      ("{\"x\":1,\"o\":{\"p\":{}},\"y\":2}", ["x": 1, "o": ["p": [:]], "y": 2]),
      ("{\"sixteen_bytes__\":1,\"seventeen_bytes__\":2}", ["sixteen_bytes__": 1, "seventeen_bytes__": 2]),
      ("{\"k\\u00e9\":1,\"é\":2}", ["ké": 1, "é": 2]),
      (
        "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9}",
        ["a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7, "h": 8, "i": 9]
      ),
      ("{\"ab\":1,\"ba\":2,\"abc\":3,\"\":4}", ["ab": 1, "ba": 2, "abc": 3, "": 4]),
      ("[{\"x\":1},{\"x\":2,\"y\":3},{}]", [["x": 1], ["x": 2, "y": 3], [:]]),
      // One level of flat objects inside (a small request), and what makes that give up: an empty or deeper
      // object, an array, a nested object that is not flat.
      (#"{"expr":"x*y","at":{"x":1.5,"y":-0.5}}"#, ["expr": "x*y", "at": ["x": 1.5, "y": -0.5]]),
      (#"{ "at" : { "x" : 1 } , "b" : { "s" : "t", "n" : null } }"#, ["at": ["x": 1], "b": ["s": "t", "n": nil]]),
      (#"{"at":{},"y":2}"#, ["at": [:], "y": 2]),
      (#"{"at":{"x":{"y":1}},"z":2}"#, ["at": ["x": ["y": 1]], "z": 2]),
      (#"{"at":{"x":[1,2]},"z":2}"#, ["at": ["x": [1, 2]], "z": 2]),
      (#"{"at":{"\u0078":1},"z":2}"#, ["at": ["x": 1], "z": 2]),
      (#"[{"at":{"x":1}},{"at":{"x":2}}]"#, [["at": ["x": 1]], ["at": ["x": 2]]]),
    ]
    for (text, expected) in valid {
      XCTAssertEqual(try JSONParser.parse(text), expected, text)
      let object = try XCTUnwrap(try JSONParser.parse(text).objectValue ?? JSONParser.parse(text)[0]?.objectValue)
      XCTAssertEqual(object.keys, expected.objectValue?.keys ?? expected[0]?.objectValue?.keys, text)
    }
    // Same keys in many objects (the key cache), with a different key at each position too.
    let batch = "[" + (0..<300).map { "{\"x\":\($0),\"k\($0 % 40)\":\($0)}" }.joined(separator: ",") + "]"
    let points = try XCTUnwrap(try JSONParser.parse(batch).arrayValue)
    for (i, p) in points.enumerated() {
      XCTAssertEqual(p.objectValue?.keys, ["x", "k\(i % 40)"])
      XCTAssertEqual(p["k\(i % 40)"]?.doubleValue, Double(i))
    }
    let invalid: [(String, JSONError.Kind, String)] = [
      ("[{\"x\":1,\"x\":2}]", .duplicateKey, "/0/x"),
      ("{\"a\":1,\"b\":2,\"a\":3}", .duplicateKey, "/a"),
      ("{\"x\":1,}", .syntax, ""),
      ("{\"x\":1 \"y\":2}", .syntax, ""),
      ("{\"x\":01}", .syntax, "/x"),
      ("{\"x\":1e999}", .numberOutOfRange, "/x"),
      ("{\"x\":tru}", .syntax, "/x"),
      ("{\"x\":\"a\u{1}\"}", .syntax, "/x"),
      ("{\"x\":1", .syntax, ""),
      ("{\"x\"1}", .syntax, "/x"),
      (#"{"at":{"x":1,"x":2}}"#, .duplicateKey, "/at/x"),
      (#"{"at":{"x":1},"at":{"x":2}}"#, .duplicateKey, "/at"),
      (#"{"at":{"x":01}}"#, .syntax, "/at/x"),
      (#"{"at":{"x":1,}}"#, .syntax, "/at"),
      (#"{"at":{"x":1}"#, .syntax, ""),
    ]
    for (text, kind, pointer) in invalid {
      XCTAssertThrowsError(try JSONParser.parse(text), text) { error in
        XCTAssertEqual((error as? JSONError)?.kind, kind, text)
        XCTAssertEqual((error as? JSONError)?.pointer.description, pointer, text)
      }
    }
    // The depth limit holds for the nested object as for the general path.
    let nested = #"{"at":{"x":1}}"#
    XCTAssertEqual(try JSONParser.parse(nested, limits: JSONLimits(maxDepth: 2)), ["at": ["x": 1]])
    XCTAssertThrowsError(try JSONParser.parse(nested, limits: JSONLimits(maxDepth: 1))) { error in
      XCTAssertEqual((error as? JSONError)?.kind, .tooDeep)
      XCTAssertEqual((error as? JSONError)?.pointer.description, "/at")
    }
  }

  /// Arrays of flat numeric objects with the same keys in the same order (a batch's points) are stored as columns;
  /// the same values through every way the fast path gives up (another key order, a missing or extra key, a
  /// non-number, a nested value, an empty object, a duplicate key, long or escaped keys, too many keys, invalid
  /// JSON) parse as the general path would, errors and their pointers included.
  func testRecordArraysMatchTheGeneralPath() throws {
    let records = "[ {\"x\": 1.5, \"y\":-2} ,{\"x\":3e2,\"y\":0}\n,{ \"x\" :-0.25 , \"y\": 7 } ]"
    let parsed = try XCTUnwrap(try JSONParser.parse(records).arrayValue)
    let (keys, columns) = try XCTUnwrap(parsed.numericRecords)
    XCTAssertEqual(keys, ["x", "y"])
    XCTAssertEqual(columns, [[1.5, 300, -0.25], [-2, 0, 7]])
    XCTAssertEqual(parsed.count, 3)
    XCTAssertEqual(parsed[2], ["x": -0.25, "y": 7])
    XCTAssertEqual(parsed[1].objectValue?.keys, ["x", "y"])
    XCTAssertEqual(
      JSONValue.array(parsed).description, #"[{"x":1.5,"y":-2.0},{"x":300.0,"y":0.0},{"x":-0.25,"y":7.0}]"#)
    let sixteen = (0..<16).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
    XCTAssertNotNil(try JSONParser.parse("[{\(sixteen)},{\(sixteen)}]").arrayValue?.numericRecords)

    // Each of these is not stored as records, and parses to exactly what its elements say.
    let seventeen = (0..<17).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
    let general: [(String, JSONValue)] = [
      (#"[{"x":1,"y":2},{"y":3,"x":4}]"#, [["x": 1, "y": 2], ["y": 3, "x": 4]]),
      (#"[{"x":1,"y":2},{"x":3}]"#, [["x": 1, "y": 2], ["x": 3]]),
      (#"[{"x":1},{"x":3,"y":4}]"#, [["x": 1], ["x": 3, "y": 4]]),
      (#"[{"x":1},{"x":"s"}]"#, [["x": 1], ["x": "s"]]),
      (#"[{"x":1},{"x":[1,2]}]"#, [["x": 1], ["x": [1, 2]]]),
      (#"[{"x":1},{}]"#, [["x": 1], [:]]),
      (#"[{}]"#, [[:]]),
      (#"[{"x":1},2]"#, [["x": 1], 2]),
      (#"[{"x":true}]"#, [["x": true]]),
      (#"[{"seventeen_bytes__":1}]"#, [["seventeen_bytes__": 1]]),
      (#"[{"k\u00e9":1}]"#, [["ké": 1]]),
      (
        "[{\(seventeen)}]",
        .array([.object(JSONObject(uniqueKeysWithValues: (0..<17).map { ("k\($0)", .number(Double($0))) }))])
      ),
    ]
    for (text, expected) in general {
      let value = try JSONParser.parse(text)
      XCTAssertEqual(value, expected, text)
      XCTAssertNil(value.arrayValue?.numericRecords, text)
      for (element, wanted) in zip(try XCTUnwrap(value.arrayValue), try XCTUnwrap(expected.arrayValue)) {
        XCTAssertEqual(element.objectValue?.keys, wanted.objectValue?.keys, text)
      }
    }
    let invalid: [(String, JSONError.Kind, String)] = [
      (#"[{"x":1,"x":2}]"#, .duplicateKey, "/0/x"),
      (#"[{"x":1,"y":2},{"x":1,"y":2,"x":3}]"#, .duplicateKey, "/1/x"),
      (#"[{"x":1},{"x":01}]"#, .syntax, "/1/x"),
      (#"[{"x":1},{"x":1e999}]"#, .numberOutOfRange, "/1/x"),
      (#"[{"x":1},{"x":1,}]"#, .syntax, "/1"),
      (#"[{"x":1},{"x":1}"#, .syntax, "/2"),
      (#"[{"x":1},]"#, .syntax, "/1"),
      (#"[{"x":1} {"x":2}]"#, .syntax, "/1"),
      (#"[{"x":-}]"#, .syntax, "/0/x"),
    ]
    for (text, kind, pointer) in invalid {
      XCTAssertThrowsError(try JSONParser.parse(text), text) { error in
        XCTAssertEqual((error as? JSONError)?.kind, kind, text)
        XCTAssertEqual((error as? JSONError)?.pointer.description, pointer, text)
      }
    }
    // The nesting limit counts the array and its objects.
    XCTAssertThrowsError(try JSONParser.parse(#"{"a":[{"x":1}]}"#, limits: JSONLimits(maxDepth: 2)))
    XCTAssertNotNil(
      try JSONParser.parse(#"{"a":[{"x":1}]}"#, limits: JSONLimits(maxDepth: 3))["a"]?.arrayValue?.numericRecords)
    // Random batches: records and the general path (objects built one by one) agree on every value.
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<50 {
      let names = ["x", "y", "w_1", "longer_name_16b_"].shuffled(using: &generator).prefix(
        Int.random(in: 1...4, using: &generator))
      let count = Int.random(in: 1...40, using: &generator)
      var rows: [[Double]] = []
      var text = "["
      for i in 0..<count {
        let row = names.map { _ in Double.random(in: -1e6...1e6, using: &generator) }
        rows.append(row)
        text += (i == 0 ? "" : ",") + "{" + zip(names, row).map { "\"\($0)\":\($1)" }.joined(separator: ",") + "}"
      }
      text += "]"
      let array = try XCTUnwrap(try JSONParser.parse(text).arrayValue)
      let (keys, columns) = try XCTUnwrap(array.numericRecords, text)
      XCTAssertEqual(keys, Array(names))
      for (k, column) in columns.enumerated() { XCTAssertEqual(column, rows.map { $0[k] }) }
    }
  }

  func testInvalidUTF8IsFoundAfterLongASCIIRuns() {
    for offset in 0..<20 {
      var bytes = [UInt8](repeating: UInt8(ascii: "x"), count: 40)
      bytes[0] = UInt8(ascii: "\"")
      bytes[39] = UInt8(ascii: "\"")
      bytes[1 + offset] = 0xFF
      XCTAssertThrowsError(try JSONParser.parse(bytes), "\(offset)")
      bytes[1 + offset] = 0x00
      XCTAssertThrowsError(try JSONParser.parse(bytes), "\(offset)")
    }
  }

  func testKeysWithAndWithoutEscapes() throws {
    let keys = [
      "", "x", "gradient", String(repeating: "k", count: 60), String(repeating: "k", count: 61),
      String(repeating: "é", count: 40), "a\"b", "back\\slash", "tab\t", "\u{0}", "😀",
    ]
    var w = JSONWriter()
    w.beginObject()
    for (i, k) in keys.enumerated() {
      w.writeKey(k)
      w.write(Double(i) + 0.5)
    }
    w.endObject()
    let parsed = try XCTUnwrap(try JSONParser.parse(w.bytes).objectValue)
    XCTAssertEqual(parsed.keys, keys)
    XCTAssertEqual(parsed.values, keys.indices.map { .number(Double($0) + 0.5) })
    let foundation = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(w.bytes)) as? [String: Double])
    XCTAssertEqual(foundation.count, keys.count)
  }

  /// Scalars written one by one match `description` (commas included), around every layout boundary.
  func testScalarDoublesMatchDescription() throws {
    var values: [Double] = [0, -0.0, 1, -1, 0.5, 1e-4, 9.99e-5, 1e-5, 0.001, 0.01, 0.1, 1.5, 12.25, 1e15 + 0.5]
    for e in -30...30 {
      let p = pow(10.0, Double(e))
      values += [p, p.nextUp, p.nextDown, -p, 1.2345678901234567 * p, 3 * p]
    }
    values += [9_007_199_254_740_992, 9_007_199_254_740_993.0.nextUp, 4_503_599_627_370_495.5, .leastNormalMagnitude]
    var w = JSONWriter()
    w.beginArray()
    for d in values { w.write(d) }
    w.write(Double.nan)
    w.write(-Double.infinity)
    w.endArray()
    let expected = "[" + values.map(\.description).joined(separator: ",") + ",\"NaN\",\"-Infinity\"]"
    XCTAssertEqual(w.string, expected)
  }

  /// Large tensors (many flushes of the writer's chunk buffer) with non-finite values mixed in.
  func testLargeTensorWithNonFiniteValues() throws {
    var values = (0..<20_000).map { Double($0) * 0.001 - 3.7 }
    for i in stride(from: 3, to: values.count, by: 997) { values[i] = i % 2 == 0 ? .nan : .infinity }
    var w = JSONWriter()
    w.write(doubles: values, shape: [100, 200])
    var expected = "["
    for r in 0..<100 {
      if r > 0 { expected += "," }
      let row = values[r * 200..<(r + 1) * 200].map { d -> String in
        if d.isNaN { return "\"NaN\"" }
        if d.isInfinite { return d > 0 ? "\"Infinity\"" : "\"-Infinity\"" }
        return d.description
      }
      expected += "[" + row.joined(separator: ",") + "]"
    }
    expected += "]"
    XCTAssertEqual(w.string, expected)
  }
}
