import AdjointJSON
import XCTest

final class JSONParserTests: XCTestCase {
  private func parse(_ text: String, limits: JSONLimits = .default) throws(JSONError) -> JSONValue {
    try JSONParser.parse(text, limits: limits)
  }

  private func parseError(_ bytes: [UInt8], limits: JSONLimits = .default) -> JSONError? {
    do {
      _ = try JSONParser.parse(bytes, limits: limits)
      return nil
    } catch {
      return error
    }
  }

  func testValidDocuments() throws {
    let cases: [(String, JSONValue)] = [
      ("null", .null),
      ("true", .bool(true)),
      ("false", .bool(false)),
      ("0", .number(0)),
      ("1", .number(1)),
      ("-1", .number(-1)),
      ("1.5", .number(1.5)),
      ("1e3", .number(1000)),
      ("1E+3", .number(1000)),
      ("1e-3", .number(0.001)),
      ("0.1", .number(0.1)),
      ("-0.0e0", .number(-0.0)),
      ("5e-324", .number(Double(bitPattern: 1))),
      ("1.7976931348623157e308", .number(.greatestFiniteMagnitude)),
      ("2.2250738585072014e-308", .number(.leastNormalMagnitude)),
      ("1e-400", .number(0)),
      ("123456789012345678901234567890", .number(1.2345678901234568e29)),
      ("\"\"", .string("")),
      ("\"abc\"", .string("abc")),
      ("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", .string("\"\\/\u{8}\u{c}\n\r\t")),
      ("\"\\u00e9\\u00E9\"", .string("éé")),
      ("\"\\ud83d\\ude00\"", .string("😀")),
      ("\"é😀中\"", .string("é😀中")),
      ("\"a\u{7f}b\"", .string("a\u{7f}b")),
      (" \t\r\n[ ] \n", .array([])),
      ("{}", .object([:])),
      ("[1,2,3]", [1, 2, 3]),
      ("[[1,2],[3,4]]", [[1, 2], [3, 4]]),
      ("[[1,2],[3]]", [[1, 2], [3]]),
      ("[[], []]", [[], []]),
      ("[[1],[[2]]]", [[1], [[2]]]),
      ("[1, \"a\", null, true, {}]", [1, "a", nil, true, [:]]),
      ("{\"a\":1,\"b\":[true,null],\"c\":{\"d\":\"e\"}}", ["a": 1, "b": [true, nil], "c": ["d": "e"]]),
      ("[[1, 2], \"x\", [3, [4]]]", [[1, 2], "x", [3, [4]]]),
      ("[ -1.5e2 , 0 , 7 ]", [-150, 0, 7]),
    ]
    for (text, expected) in cases {
      do {
        let value = try parse(text)
        XCTAssertEqual(value, expected, text)
      } catch {
        XCTFail("\(text): \(error)")
      }
    }
    // -0.0 keeps its sign, top level and inside a numeric array.
    XCTAssertEqual(try parse("-0").doubleValue?.sign, .minus)
    XCTAssertEqual(try parse("[-0.0]")[0]?.doubleValue?.sign, .minus)
  }

  func testInvalidDocuments() {
    let cases: [([UInt8], String, Int?)] = [
      (Array("".utf8), "unexpected end of input, expected a value", 0),
      (Array("   ".utf8), "unexpected end of input", 3),
      (Array("[1,]".utf8), "trailing commas are not allowed", 3),
      (Array("{\"a\":1,}".utf8), "trailing commas are not allowed", 7),
      (Array("[1 2]".utf8), "expected ',' or ']' after array element", 3),
      (Array("[\"a\" \"b\"]".utf8), "expected ',' or ']' after array element", 5),
      (Array("{\"a\":1 \"b\":2}".utf8), "expected ',' or '}' after object member", 7),
      (Array("{\"a\" 1}".utf8), "expected ':' after object key", 5),
      (Array("{1:2}".utf8), "expected a string key or '}'", 1),
      (Array("01".utf8), "leading zeros are not allowed", 0),
      (Array("[-01]".utf8), "leading zeros are not allowed", 2),
      (Array("1.".utf8), "expected a digit after the decimal point", 2),
      (Array("1.e5".utf8), "expected a digit after the decimal point", 2),
      (Array(".5".utf8), "expected a value", 0),
      (Array("+1".utf8), "expected a value", 0),
      (Array("-".utf8), "expected a digit after '-'", 1),
      (Array("-a".utf8), "expected a digit after '-'", 1),
      (Array("1e".utf8), "expected a digit in the exponent", 2),
      (Array("1e+".utf8), "expected a digit in the exponent", 3),
      (Array("NaN".utf8), "expected a value", 0),
      (Array("Infinity".utf8), "expected a value", 0),
      (Array("-Infinity".utf8), "expected a digit after '-'", 1),
      (Array("[nan]".utf8), "unexpected 'a', expected 'null'", 2),
      (Array("nul".utf8), "unexpected end of input, expected 'null'", 3),
      (Array("tRue".utf8), "expected 'true'", 1),
      (Array("[".utf8), "unexpected end of input, expected a value", 1),
      (Array("[1,2".utf8), "expected ',' or ']' after array element", 4),
      (Array("[[1,2],[3,4]".utf8), "expected ',' or ']' after array element", 12),
      (Array("{".utf8), "expected a string key or '}'", 1),
      (Array("{\"a\"".utf8), "expected ':' after object key", 4),
      (Array("{\"a\":".utf8), "expected a value", 5),
      (Array("\"abc".utf8), "unterminated string", 0),
      (Array("\"ab\\".utf8), "unterminated string", 0),
      (Array("\"\\x\"".utf8), "invalid escape '\\x'", 1),
      (Array("\"\\u12\"".utf8), "expected 4 hex digits after \\u", 3),
      (Array("\"\\u12".utf8), "expected 4 hex digits after \\u", 3),
      (Array("\"\\ud800\"".utf8), "unpaired high surrogate", 1),
      (Array("\"\\ud800\\u0041\"".utf8), "unpaired high surrogate", 1),
      (Array("\"\\udc00\"".utf8), "unpaired low surrogate", 1),
      (Array("\"a\tb\"".utf8), "unescaped control character", 2),
      (Array("\"a\nb\"".utf8), "unescaped control character", 2),
      ([0x22, 0xC0, 0x80, 0x22], "invalid UTF-8", 1),  // overlong
      ([0x22, 0xED, 0xA0, 0x80, 0x22], "invalid UTF-8", 1),  // encoded surrogate
      ([0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], "invalid UTF-8", 1),  // beyond U+10FFFF
      ([0x22, 0xE2, 0x82], "invalid UTF-8", 1),  // truncated sequence at the end
      ([0x22, 0xE2, 0x82, 0x22], "invalid UTF-8", 1),  // truncated sequence before the quote
      ([0x22, 0x80, 0x22], "invalid UTF-8", 1),  // lone continuation byte
      ([0xEF, 0xBB, 0xBF, 0x31], "byte order mark", 0),
      (Array("1e400".utf8), "number out of range", 0),
      (Array("-1e400".utf8), "number out of range", 0),
      (Array("[1, 1e400]".utf8), "number out of range", 4),
      (Array("1.7976931348623159e308".utf8), "number out of range", 0),
      // More than 19 digits (the standard library's reading), alone and in a matrix's row.
      (Array("12345678901234567890123e400".utf8), "number out of range", 0),
      (Array("[[1.5, -12345678901234567890123e400]]".utf8), "number out of range", 7),
      // Errors inside a matrix's row come out of the general path, with their offsets.
      (Array("[[1.5, 2.25], [3, 04]]".utf8), "leading zeros are not allowed", 18),
      (Array("[[1.5, 2.25], [3, 4.]]".utf8), "expected a digit after the decimal point", 20),
      // The same with room after the point for 32 digits (read at once).
      (Array("[4., 1.25, 1.25, 1.25, 1.25, 1.25]".utf8), "expected a digit after the decimal point", 3),
      (Array("[4.e5, 1.25, 1.25, 1.25, 1.25, 1.25]".utf8), "expected a digit after the decimal point", 3),
      (Array("[-4.x, 1.25, 1.25, 1.25, 1.25, 1.25]".utf8), "expected a digit after the decimal point", 4),
      (Array("[4.0000000000000000000000000000005e, 1.25, 1.25, 1.25]".utf8), "expected a digit in the exponent", 35),
      (Array("[0.5, 4.25.5, 1.25, 1.25, 1.25, 1.25]".utf8), "expected ',' or ']'", 10),
      (Array("{\"a\":1,\"a\":2}".utf8), "duplicate key 'a'", 7),
      (Array("[1] x".utf8), "unexpected 'x' after the JSON value", 4),
      (Array("[1]]".utf8), "unexpected ']' after the JSON value", 3),
      (Array("1 2".utf8), "unexpected '2' after the JSON value", 2),
      (Array("//c\n1".utf8), "expected a value", 0),
      (Array("/*c*/1".utf8), "expected a value", 0),
      (Array("[1]//".utf8), "after the JSON value", 3),
      (Array("'a'".utf8), "expected a value", 0),
      ([0x5B, 0x00, 0x5D], "unexpected byte 0x00, expected a value", 1),
    ]
    XCTAssertGreaterThanOrEqual(cases.count, 40)
    for (bytes, message, offset) in cases {
      let text = String(decoding: bytes, as: UTF8.self)
      guard let error = parseError(bytes) else {
        XCTFail("\(text): parsed, expected an error containing \"\(message)\"")
        continue
      }
      XCTAssertTrue(error.message.contains(message), "\(text): got \"\(error.message)\", expected \"\(message)\"")
      if let offset { XCTAssertEqual(error.offset, offset, "\(text): \(error)") }
    }
  }

  func testErrorDescriptionAndPointer() {
    let error = parseError(Array("{\"at\": {\"x\": [1, 2 3]}}".utf8))
    XCTAssertEqual(error?.description, "unexpected '3', expected ',' or ']' after array element at byte 19")
    XCTAssertEqual(error?.pointer.description, "/at/x/2")
    XCTAssertEqual(parseError(Array("{\"a\": [1, 1e999]}".utf8))?.pointer.description, "/a/1")
    XCTAssertEqual(parseError(Array("{\"a\": [1, 1e999]}".utf8))?.kind, .numberOutOfRange)
    XCTAssertEqual(parseError(Array("{\"b\": {\"a\":1,\"a\":2}}".utf8))?.pointer.description, "/b/a")
    XCTAssertEqual(parseError(Array("{\"b\": {\"a\":1,\"a\":2}}".utf8))?.kind, .duplicateKey)
  }

  func testDuplicateKeysInLargeObjects() {
    var text = "{"
    for i in 0..<100 { text += "\"k\(i)\":\(i)," }
    text += "\"k57\":0}"
    let error = parseError(Array(text.utf8))
    XCTAssertEqual(error?.kind, .duplicateKey)
    XCTAssertEqual(error?.message, "duplicate key 'k57'")
    // And lookups in a large object.
    var ok = "{"
    for i in 0..<100 { ok += (i > 0 ? "," : "") + "\"k\(i)\":\(i)" }
    ok += "}"
    let value = try? JSONParser.parse(ok)
    XCTAssertEqual(value?["k0"], 0)
    XCTAssertEqual(value?["k99"], 99)
    XCTAssertNil(value?["k100"])
    XCTAssertEqual(value?.objectValue?.keys.first, "k0")
    XCTAssertEqual(value?.objectValue?.keys.last, "k99")
  }

  func testDepthLimit() {
    func nestedArrays(_ depth: Int, inner: String = "") -> [UInt8] {
      Array((String(repeating: "[", count: depth) + inner + String(repeating: "]", count: depth)).utf8)
    }
    XCTAssertNil(parseError(nestedArrays(512)))
    XCTAssertNil(parseError(nestedArrays(512, inner: "1")))
    for inner in ["", "1", "\"s\""] {
      let error = parseError(nestedArrays(513, inner: inner))
      XCTAssertEqual(error?.kind, .tooDeep, inner)
      XCTAssertEqual(error?.offset, 512, inner)
      XCTAssertTrue(error?.message.contains("over the limit of 512") ?? false, error?.message ?? "")
    }
    // Objects count too, and mixed nesting.
    func nestedObjects(_ depth: Int) -> [UInt8] {
      Array((String(repeating: "{\"a\":", count: depth) + "1" + String(repeating: "}", count: depth)).utf8)
    }
    XCTAssertNil(parseError(nestedObjects(512)))
    XCTAssertEqual(parseError(nestedObjects(513))?.kind, .tooDeep)
    let mixed = Array((String(repeating: "{\"a\":[", count: 256) + "1" + String(repeating: "]}", count: 256)).utf8)
    XCTAssertNil(parseError(mixed))
    let mixed513 = Array(
      ("[" + String(repeating: "{\"a\":[", count: 256) + "1" + String(repeating: "]}", count: 256) + "]").utf8)
    XCTAssertEqual(parseError(mixed513)?.kind, .tooDeep)
    // A custom limit.
    XCTAssertNil(parseError(nestedArrays(3), limits: JSONLimits(maxDepth: 3)))
    XCTAssertEqual(parseError(nestedArrays(4), limits: JSONLimits(maxDepth: 4 - 1))?.kind, .tooDeep)
    XCTAssertEqual(parseError(Array("[[1,2],[3,[4]]]".utf8), limits: JSONLimits(maxDepth: 2))?.kind, .tooDeep)
    // Very deep input fails fast, without recursion.
    XCTAssertEqual(parseError(nestedArrays(100_000))?.kind, .tooDeep)
  }

  func testNumericArraysAreStoredFlat() throws {
    let value = try parse("{\"x\": [[1, 2, 3], [4, 5, 6]], \"e\": [], \"m\": [1, \"a\"], \"r\": [[1,2],[3]]}")
    let x = try XCTUnwrap(value["x"]?.arrayValue?.numericTensor)
    XCTAssertEqual(x.shape, [2, 3])
    XCTAssertEqual(x.data, [1, 2, 3, 4, 5, 6])
    XCTAssertEqual(value["e"]?.arrayValue?.numericTensor?.shape, [0])
    XCTAssertNil(value["m"]?.arrayValue?.numericTensor)
    XCTAssertNil(value["r"]?.arrayValue?.numericTensor)
    // Rows of a ragged array are still numeric.
    XCTAssertEqual(value["r"]?[1]?.arrayValue?.numericTensor?.shape, [1])
    // Element access works on the flat storage.
    XCTAssertEqual(value["x"]?[1]?[2], 6)
    XCTAssertEqual(value["x"]?.arrayValue?.count, 2)
    XCTAssertEqual(value["x"]?[1], [4, 5, 6])
    let items = value["x"]?.arrayValue?.map { $0.arrayValue?.count }
    XCTAssertEqual(items, [3, 3])
    XCTAssertEqual(try parse("[[[]]]").arrayValue?.numericTensor?.shape, [1, 1, 0])
    XCTAssertEqual(try parse("[[],[]]").arrayValue?.numericTensor?.shape, [2, 0])
  }

  func testFailedNumericAttemptsStayLinear() {
    // A deep chain of arrays that are almost numeric: each level fails on the string at the end. Without the
    // "known failing" bookkeeping this would rescan the numbers once per level.
    let depth = 500
    var text = String(repeating: "[", count: depth)
    text += Array(repeating: "1", count: 200_000).joined(separator: ",")
    text += ",\"x\"" + String(repeating: "]", count: depth)
    let start = ContinuousClock.now
    XCTAssertNil(parseError(Array(text.utf8)))
    let elapsed = ContinuousClock.now - start
    XCTAssertLessThan(elapsed, .seconds(5))
  }

  func testNumbersMatchStandardLibraryOnDescriptions() throws {
    var rng = SystemRandomNumberGenerator()
    var text = "["
    var expected: [Double] = []
    for i in 0..<100_000 {
      var d: Double
      repeat {
        d = Double(bitPattern: rng.next())
      } while !d.isFinite
      if i % 4 == 0 { d = Double.random(in: -10...10) }
      if i % 4 == 1 { d = Double(Float.random(in: -1...1)) }
      expected.append(d)
      text += (i > 0 ? "," : "") + d.description
    }
    text += "]"
    let parsed = try XCTUnwrap(try parse(text).arrayValue?.numericTensor?.data)
    XCTAssertEqual(parsed.count, expected.count)
    var mismatches = 0
    for (a, b) in zip(parsed, expected) where a.bitPattern != b.bitPattern {
      mismatches += 1
      if mismatches < 5 { XCTFail("\(b.description) parsed as \(a.description)") }
    }
    XCTAssertEqual(mismatches, 0)
  }

  /// Numbers of the form d.ddd at every length of the fraction (when 34 bytes remain, its length is read from 32 bytes
  /// at once, its first sixteen digits at once, the next eight in one step, and any more one by one), with and
  /// without exponents, among separators of each kind: as the standard library reads them.
  func testOneDigitBeforeThePointAtEveryFractionLength() throws {
    var rng = SystemRandomNumberGenerator()
    var literals: [String] = []
    for fraction in 1...40 {
      for _ in 0..<100 {
        var s = Bool.random(using: &rng) ? "-" : ""
        s += String(Int.random(in: 0...9, using: &rng)) + "."
        s += String((0..<fraction).map { _ in Character(Unicode.Scalar(UInt8.random(in: 48...57, using: &rng))) })
        if Int.random(in: 0..<4, using: &rng) == 0 {
          s += ["e", "E"].randomElement(using: &rng)! + ["", "+", "-"].randomElement(using: &rng)!
          s += String(Int.random(in: 0...300, using: &rng))
        }
        literals.append(s)
      }
    }
    literals.shuffle(using: &rng)
    let separators = [",", ", ", " ,", ",\n", "\t,\r\n"]
    var text = "["
    for (i, s) in literals.enumerated() { text += (i > 0 ? separators.randomElement(using: &rng)! : "") + s }
    text += "]"
    let parsed = try XCTUnwrap(try parse(text).arrayValue?.numericTensor?.data)
    XCTAssertEqual(parsed.count, literals.count)
    var mismatches = 0
    for (a, s) in zip(parsed, literals) {
      let reference = Double(s)!
      // Exponents of at most 300 on d.ddd: all finite.
      XCTAssertTrue(reference.isFinite, s)
      if a.bitPattern != reference.bitPattern {
        mismatches += 1
        if mismatches < 5 { XCTFail("\(s): got \(a), expected \(reference)") }
      }
    }
    XCTAssertEqual(mismatches, 0)
  }

  func testNumbersMatchStandardLibraryOnRandomDecimals() throws {
    var rng = SystemRandomNumberGenerator()
    func digits(_ n: Int) -> String {
      String((0..<n).map { _ in Character(Unicode.Scalar(UInt8.random(in: 48...57, using: &rng))) })
    }
    var mismatches = 0
    for i in 0..<100_000 {
      var s = Bool.random(using: &rng) ? "-" : ""
      let intDigits = Int.random(in: 1...(i % 10 == 0 ? 30 : 12), using: &rng)
      var int = digits(intDigits)
      while int.count > 1 && int.first == "0" { int.removeFirst() }
      s += int
      if Bool.random(using: &rng) { s += "." + digits(Int.random(in: 1...(i % 10 == 1 ? 30 : 12), using: &rng)) }
      if Bool.random(using: &rng) {
        s += ["e", "E"].randomElement(using: &rng)! + ["", "+", "-"].randomElement(using: &rng)!
        s += String(Int.random(in: 0...(i % 3 == 0 ? 330 : 25), using: &rng))
      }
      let reference = Double(s)!
      do {
        let v = try parse(s).doubleValue!
        if v.bitPattern != reference.bitPattern {
          mismatches += 1
          if mismatches < 5 { XCTFail("\(s): got \(v), expected \(reference)") }
        }
      } catch {
        if reference.isFinite || error.kind != .numberOutOfRange {
          mismatches += 1
          if mismatches < 5 { XCTFail("\(s): \(error), expected \(reference)") }
        }
      }
    }
    XCTAssertEqual(mismatches, 0)
  }

  func testHardNumbers() throws {
    let cases = [
      "2.2250738585072011e-308", "2.2250738585072012e-308", "2.2250738585072014e-308", "4.9406564584124654e-324",
      "2.4703282292062327e-324", "2.4703282292062328e-324", "1.7976931348623158e308", "9007199254740993",
      "9007199254740992", "9007199254740995", "18014398509481985", "1e23", "8.41e21", "5e-324", "7e-324",
      "1e22", "1e-22", "123456789012345678", "1234567890123456789", "12345678901234567890",
      "0.000000000000000000000000000001234", "4.35679e-320", "3.9999999999999999999", "0.1e-9999999999999",
      "0e99999999999", "100000000000000000000000000000000000000000000000000000001e-56",
      "1797693134862315708145274237317043567980705675258449965989174768031572607800285387605895586327668781715404589535143824642343213268894641827684675467035375169860499105765512820762454900903893289440758685084551339423045832369032229481658085593321233482747978262041447231687381771809192998812504040261841248583680",
      "1797693134862315807937289714053034150799341327100378269361737789804449682927647509466490179775872070963302864166928879109465555478519404026306574886715058206819089020007083836762738548458177115317644757302700698555713669596228429148198608349364752927190741684443655107043427115596995080930428801779041744977919",
      "2.47032822920623272088284396434110686182529901307162382212792841250337753635104375932649918180817996189898282347722858865463328355177969898199387398005390939063150356595155702263922908583924491051844359318028499365361525003193704576782492193656236698636584807570015857692699037063119282795585513329278343384093519780155312465972635795746227664652728272200563740064854999770965994704540208281662262378573934507363390079677619305775067401763246736009689513405355374585166611342237666786041621596804619144672918403005300575308490487653917113865916462395249126236538818796362393732804238910186723484976682350898633885879256283027559956575244555072551893136908362547791869486679949683240497058210285131854513962138377228261454376934125320985913276672363281255e-324",
    ]
    for s in cases {
      let reference = Double(s)!
      if reference.isInfinite {
        XCTAssertThrowsError(try parse(s), s)
      } else {
        XCTAssertEqual(try parse(s).doubleValue?.bitPattern, reference.bitPattern, s)
        XCTAssertEqual(try parse("[" + s + "]")[0]?.doubleValue?.bitPattern, reference.bitPattern, s)
      }
    }
  }

  func testTruncatedInputsNeverCrash() {
    let documents = [
      "{\"at\": {\"x\": [[1.5, -2e-3], [3, 4]], \"s\": \"h\\u00e9llo\\ud83d\\ude00\"}, \"k\": [true, false, null]}",
      "[[[1,2],[3,4]],[[5,6],[7,8]]]",
      "[\"a\\\"b\", {\"c\": [1e5, -0.0, 12345678901234567890123]}]",
      "[{\"x\":-1.5,\"y\":2e-3,\"s\":\"t\",\"b\":true,\"n\":null,\"f\":false},{\"abcdefghijklmnop\":1,\"q\":{}}]",
    ]
    for doc in documents {
      let bytes = Array(doc.utf8)
      XCTAssertNil(parseError(bytes), doc)
      for n in 0..<bytes.count {
        // Copy into an exactly sized buffer so any overread would be outside the allocation.
        let prefix = Array(bytes[0..<n])
        XCTAssertNotNil(parseError(prefix), String(decoding: prefix, as: UTF8.self))
      }
    }
  }

  func testUnsafeBufferAPI() throws {
    let bytes: [UInt8] = Array("[1,2]".utf8)
    let value = try bytes.withUnsafeBytes { raw throws(JSONError) in try JSONParser.parse(raw) }
    XCTAssertEqual(value, [1, 2])
  }
}
