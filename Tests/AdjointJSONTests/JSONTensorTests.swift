import AdjointJSON
import XCTest

final class JSONTensorTests: XCTestCase {
  private func decode(
    _ text: String, maxElements: Int = JSONTensorDecoding.defaultMaxElements, at: JSONPointer = "/at/x"
  )
    throws -> (shape: [Int], data: [Double])
  {
    try JSONTensorDecoding.decode(JSONParser.parse(text), maxElements: maxElements, at: at)
  }

  private func decodeError(_ text: String, maxElements: Int = JSONTensorDecoding.defaultMaxElements)
    -> TensorDecodingError?
  {
    do {
      _ = try decode(text, maxElements: maxElements)
      return nil
    } catch let error as TensorDecodingError {
      return error
    } catch {
      XCTFail("\(text): unexpected \(error)")
      return nil
    }
  }

  private func decodeValue(_ value: JSONValue, maxElements: Int = 100) throws(TensorDecodingError) -> (
    shape: [Int], data: [Double]
  ) {
    try JSONTensorDecoding.decode(value, maxElements: maxElements, at: "/at/x")
  }

  func testNestedForms() throws {
    let cases: [(String, [Int], [Double])] = [
      ("3.5", [], [3.5]),
      ("\"NaN\"", [], [.nan]),
      ("\"-Infinity\"", [], [-.infinity]),
      ("[]", [0], []),
      ("[1, 2]", [2], [1, 2]),
      ("[[1, 2], [3, 4]]", [2, 2], [1, 2, 3, 4]),
      ("[[[1], [2]], [[3], [4]]]", [2, 2, 1], [1, 2, 3, 4]),
      ("[[], []]", [2, 0], []),
      ("[\"NaN\", 1, \"Infinity\"]", [3], [.nan, 1, .infinity]),
      ("[[1, \"NaN\"], [3, 4]]", [2, 2], [1, .nan, 3, 4]),
    ]
    for (text, shape, data) in cases {
      let t = try decode(text)
      XCTAssertEqual(t.shape, shape, text)
      XCTAssertEqual(t.data.map(\.bitPattern), data.map(\.bitPattern), text)
    }
    // Built from JSONValue elements rather than parsed.
    let built = try decodeValue([[1, 2], [3, 4]])
    XCTAssertEqual(built.shape, [2, 2])
    XCTAssertEqual(built.data, [1, 2, 3, 4])
    let mixed = try decodeValue(.array([.array(JSONArray(shape: [2], data: [1, 2])), [3, 4]]))
    XCTAssertEqual(mixed.shape, [2, 2])
    XCTAssertEqual(mixed.data, [1, 2, 3, 4])
  }

  func testRaggedPointers() {
    let cases: [(String, String)] = [
      ("[[1,2],[3]]", "/at/x/1"),
      ("[[1,2],3]", "/at/x/1"),
      ("[1,[2]]", "/at/x/1"),
      ("[[1],[2,3],[4]]", "/at/x/1"),
      ("[[[1],[2]],[[3],[4,5]]]", "/at/x/1/1"),
      ("[[[1],[2]],[[3]]]", "/at/x/1"),
      ("[[[1],[2]],[3,4]]", "/at/x/1/0"),
      ("[[1,2],[[3],[4]]]", "/at/x/1/0"),
      ("[[],[1]]", "/at/x/1"),
      ("[[1,\"NaN\"],[3,\"NaN\",5]]", "/at/x/1"),
      ("[[\"NaN\",2],[[3],4]]", "/at/x/1/0"),
    ]
    for (text, pointer) in cases {
      let error = decodeError(text)
      XCTAssertEqual(error?.pointer.description, pointer, "\(text): \(String(describing: error))")
      XCTAssertEqual(error?.kind, .malformed, text)
      XCTAssertEqual(error?.httpStatus, 400, text)
      XCTAssertTrue(error?.message.contains("ragged") ?? false, "\(text): \(String(describing: error))")
    }
  }

  func testWrongTypes() {
    let cases: [(String, String)] = [
      ("\"nan\"", "/at/x"),
      ("\"1\"", "/at/x"),
      ("null", "/at/x"),
      ("true", "/at/x"),
      ("[1, \"a\"]", "/at/x/1"),
      ("[[1, 2], [3, null]]", "/at/x/1/1"),
      ("[[1, 2], [3, {}]]", "/at/x/1/1"),
      ("{\"data\": [1]}", "/at/x"),
      ("{\"shape\": 2, \"data\": [1, 2]}", "/at/x/shape"),
      ("{\"shape\": [-1], \"data\": []}", "/at/x/shape/0"),
      ("{\"shape\": [1.5], \"data\": [1]}", "/at/x/shape/0"),
      ("{\"shape\": [2], \"data\": [1]}", "/at/x/data"),
      ("{\"shape\": [2], \"data\": [1, \"x\"]}", "/at/x/data/1"),
      ("{\"shape\": [2], \"data\": [[1], [2]]}", "/at/x/data/0"),
      ("{\"shape\": [2], \"data\": 1}", "/at/x/data"),
      ("{\"shape\": [2]}", "/at/x"),
      ("{\"shape\": [1], \"data\": [1], \"base64\": \"AAAAAAAA8D8=\"}", "/at/x"),
      ("{\"shape\": [1], \"data\": [1], \"dtype\": \"f32\"}", "/at/x/dtype"),
      ("{\"shape\": [1], \"base64\": \"AAAAAAAA8D\"}", "/at/x/base64"),
      ("{\"shape\": [1], \"base64\": \"AAAA*AAA8D8=\"}", "/at/x/base64"),
      ("{\"shape\": [2], \"base64\": \"AAAAAAAA8D8=\"}", "/at/x/base64"),
      ("{\"shape\": [1], \"base64\": 5}", "/at/x/base64"),
    ]
    for (text, pointer) in cases {
      let error = decodeError(text)
      XCTAssertEqual(error?.pointer.description, pointer, "\(text): \(String(describing: error))")
      XCTAssertEqual(error?.httpStatus, 400, text)
    }
  }

  func testElementLimit() throws {
    XCTAssertEqual(JSONTensorDecoding.defaultMaxElements, 1 << 24)
    XCTAssertEqual(try decode("[[1,2],[3,4]]", maxElements: 4).shape, [2, 2])
    XCTAssertEqual(decodeError("[[1,2],[3,4]]", maxElements: 3)?.httpStatus, 413)
    XCTAssertEqual(decodeError("[[1,2],[3,4]]", maxElements: 3)?.kind, .overLimit)
    XCTAssertEqual(decodeError("[[1,2],[3,4]]", maxElements: 3)?.pointer.description, "/at/x")
    XCTAssertEqual(try decode("[[1,\"NaN\"],[3,4]]", maxElements: 4).shape, [2, 2])
    XCTAssertEqual(decodeError("[[1,\"NaN\"],[3,4]]", maxElements: 3)?.httpStatus, 413)
    XCTAssertEqual(try decode("{\"shape\":[2,2],\"data\":[1,2,3,4]}", maxElements: 4).shape, [2, 2])
    XCTAssertEqual(decodeError("{\"shape\":[2,2],\"data\":[1,2,3,4]}", maxElements: 3)?.httpStatus, 413)
    XCTAssertEqual(decodeError("{\"shape\":[4294967296,4294967296],\"base64\":\"\"}")?.httpStatus, 413)
    XCTAssertEqual(try decode("{\"shape\":[4294967296,0],\"data\":[]}").shape, [4_294_967_296, 0])
    XCTAssertEqual(try decode("1", maxElements: 1).shape, [])
    XCTAssertEqual(decodeError("1", maxElements: 0)?.httpStatus, 413)
  }

  func testObjectForms() throws {
    let flat = try decode("{\"shape\": [2, 2], \"data\": [1, 2, \"NaN\", 4]}")
    XCTAssertEqual(flat.shape, [2, 2])
    XCTAssertEqual(flat.data.map(\.bitPattern), [1, 2, Double.nan, 4].map(\.bitPattern))
    let scalar = try decode("{\"shape\": [], \"data\": [5]}")
    XCTAssertEqual(scalar.shape, [])
    XCTAssertEqual(scalar.data, [5])
    // 1.0 little-endian is 00 00 00 00 00 00 F0 3F.
    let one = try decode("{\"shape\": [1], \"base64\": \"AAAAAAAA8D8=\"}")
    XCTAssertEqual(one.data, [1])
    let empty = try decode("{\"shape\": [0, 3], \"base64\": \"\"}")
    XCTAssertEqual(empty.shape, [0, 3])
    XCTAssertEqual(empty.data, [])
  }

  func testBase64RoundTripIsBitExact() throws {
    var rng = SystemRandomNumberGenerator()
    for count in [0, 1, 2, 3, 5, 64, 1001] {
      var data = (0..<count).map { _ in Double(bitPattern: rng.next()) }
      if count > 2 {
        data[0] = Double(bitPattern: 0x7FF8_0000_DEAD_BEEF)  // quiet NaN with a payload
        data[1] = Double(bitPattern: 0xFFF0_0000_0000_0001)  // signalling NaN, negative
        data[2] = -0.0
      }
      let shape = [count]
      var w = JSONWriter()
      w.writeTensor(shape: shape, data: data, layout: .base64)
      let decoded = try JSONTensorDecoding.decode(JSONParser.parse(w.bytes))
      XCTAssertEqual(decoded.shape, shape)
      XCTAssertEqual(decoded.data.map(\.bitPattern), data.map(\.bitPattern))
      // Through a JSONValue too.
      let value = JSONTensorDecoding.encode(shape: shape, data: data, layout: .base64)
      XCTAssertEqual(try JSONTensorDecoding.decode(value).data.map(\.bitPattern), data.map(\.bitPattern))
    }
  }

  func testBase64Codec() throws {
    let vectors: [(String, String)] = [
      ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="),
      ("foobar", "Zm9vYmFy"),
    ]
    for (plain, encoded) in vectors {
      XCTAssertEqual(Base64.encode(Array(plain.utf8)), encoded)
      XCTAssertEqual(try Base64.decode(encoded), Array(plain.utf8))
    }
    for bad in ["Zg=", "Zg", "Z===", "Zm9v\n", "Zm9-", "Zg=a", "=Zg=", "Zm=v"] {
      XCTAssertThrowsError(try Base64.decode(bad), bad)
    }
    var rng = SystemRandomNumberGenerator()
    for n in 0..<100 {
      let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
      XCTAssertEqual(try Base64.decode(Base64.encode(bytes)), bytes)
    }
  }

  func testEncodeLayouts() throws {
    let data: [Double] = [1, 2.5, .nan, -0.0]
    func written(_ layout: JSONTensorLayout, shape: [Int] = [2, 2], data: [Double] = data) -> String {
      var w = JSONWriter()
      w.writeTensor(shape: shape, data: data, layout: layout)
      return w.string
    }
    XCTAssertEqual(written(.nested), "[[1.0,2.5],[\"NaN\",-0.0]]")
    XCTAssertEqual(written(.flat), "{\"shape\":[2,2],\"data\":[1.0,2.5,\"NaN\",-0.0]}")
    XCTAssertTrue(written(.base64).hasPrefix("{\"shape\":[2,2],\"base64\":\""))
    XCTAssertEqual(written(.nested, shape: [], data: [3]), "3.0")
    XCTAssertEqual(written(.flat, shape: [], data: [3]), "{\"shape\":[],\"data\":[3.0]}")
    for layout in JSONTensorLayout.allCases {
      let decoded = try JSONTensorDecoding.decode(JSONParser.parse(written(layout)))
      XCTAssertEqual(decoded.shape, [2, 2])
      XCTAssertEqual(decoded.data.map(\.bitPattern), data.map(\.bitPattern))
      let value = JSONTensorDecoding.encode(shape: [2, 2], data: data, layout: layout)
      XCTAssertEqual(try JSONParser.parse(value.description), try JSONParser.parse(written(layout)))
    }
    XCTAssertEqual(JSONTensorLayout(rawValue: "flat"), .flat)
  }
}

final class JSONPointerTests: XCTestCase {
  func testEscaping() {
    XCTAssertEqual(JSONPointer().description, "")
    XCTAssertEqual(JSONPointer().appending("at").appending("x").appending(1).description, "/at/x/1")
    XCTAssertEqual(JSONPointer(components: ["a/b", "m~n", ""]).description, "/a~1b/m~0n/")
    XCTAssertEqual(JSONPointer(parsing: "/a~1b/m~0n/")?.components, ["a/b", "m~n", ""])
    XCTAssertEqual(JSONPointer(parsing: "/~01")?.components, ["~1"])
    XCTAssertNil(JSONPointer(parsing: "a"))
    XCTAssertNil(JSONPointer(parsing: "/~2"))
    XCTAssertEqual(JSONPointer.escape("~/"), "~0~1")
    let p: JSONPointer = "/batch/17"
    XCTAssertEqual(p.appending(JSONPointer(components: ["x"])).description, "/batch/17/x")
  }
}

final class JSONValueTests: XCTestCase {
  func testObjectEditing() {
    var o = JSONObject()
    for i in 0..<20 { o["k\(i)"] = .number(Double(i)) }
    XCTAssertEqual(o.count, 20)
    XCTAssertEqual(o["k13"], 13)
    o["k13"] = "x"
    XCTAssertEqual(o.keys[13], "k13")
    XCTAssertEqual(o["k13"], "x")
    o["k0"] = nil
    XCTAssertEqual(o.count, 19)
    XCTAssertNil(o["k0"])
    XCTAssertEqual(o["k19"], 19)
    XCTAssertEqual(o.first?.key, "k1")
    let a: JSONValue = ["b": 1, "a": 2]
    let b: JSONValue = ["a": 2, "b": 1]
    XCTAssertEqual(a, b)
    XCTAssertNotEqual(a, ["a": 2])
  }

  func testArrayStoragesCompareEqual() {
    let numeric = JSONValue.array(JSONArray(shape: [2, 2], data: [1, 2, 3, 4]))
    XCTAssertEqual(numeric, [[1, 2], [3, 4]])
    XCTAssertNotEqual(numeric, [[1, 2], [3, 5]])
    XCTAssertEqual(JSONValue.array(JSONArray()), [])
    XCTAssertEqual(JSONValue.array(JSONArray(shape: [2, 0], data: [])), [[], []])
    var a = JSONArray(shape: [2], data: [1, 2])
    a.append("x")
    XCTAssertEqual(JSONValue.array(a), [1, 2, "x"])
    XCTAssertNil(a.numericTensor)
  }

  func testAccessors() throws {
    let v = try JSONParser.parse("{\"i\": 3, \"f\": 3.5, \"s\": \"t\", \"b\": true, \"n\": null, \"a\": [1]}")
    XCTAssertEqual(v["i"]?.intValue, 3)
    XCTAssertNil(v["f"]?.intValue)
    XCTAssertEqual(v["f"]?.doubleValue, 3.5)
    XCTAssertEqual(v["s"]?.stringValue, "t")
    XCTAssertEqual(v["b"]?.boolValue, true)
    XCTAssertEqual(v["n"]?.isNull, true)
    XCTAssertEqual(v["a"]?[0], 1)
    XCTAssertNil(v["a"]?[1])
    XCTAssertEqual(v["a"]?.kindDescription, "an array")
  }
}
