import AdjointJSON
import Foundation
import XCTest

/// Bad requests against the real `adjoint serve` subprocess, one row each: the request, and the status,
/// `errors[0].pointer`, `errors[0].position` and exact `errors[0].message` (or `detail` when there is no entry)
/// that the server must answer.
///
/// Every row is what API.md requires and the server does; a few rows are requests that must succeed with an exact
/// body (the accepted side of a limit, the response layouts).
final class BadRequestTableTests: LiveServerTestCase {
  func testEveryRowGetsTheAnswerAPIRequires() throws {
    let port = try serverPort()
    XCTAssertGreaterThanOrEqual(Self.rows.filter { $0.expected.status >= 400 }.count, 60)
    for row in Self.rows {
      XCTAssertTrue(row.expected.isExact, "[\(row.label)] a row that conforms must fix every field")
      guard let response = sendTableRow(port: port, row) else {
        XCTFail("[\(row.label)] no response to \(Self.shown(row))")
        continue
      }
      let found = tableMismatches(response, row.expected)
      XCTAssertTrue(
        found.isEmpty,
        "[\(row.label)] \(Self.shown(row)): \(found.joined(separator: "; ")) — got \(response.status) \(response.body)")
    }
    try assertServerStillServes(port: port)
  }

  func testLabelsAreUnique() {
    let labels = Self.rows.map(\.label)
    XCTAssertEqual(Set(labels).count, labels.count)
  }

  private func assertServerStillServes(port: Int) throws {
    XCTAssertTrue(try server().process.isRunning, "the server exited")
    let health = TableRow(
      label: "healthz", method: "GET", path: "/healthz", body: [], contentType: nil,
      expected: TableExpectation(status: 200, body: .exactly(#"{"status":"ok"}"#)))
    XCTAssertEqual(sendTableRow(port: port, health)?.status, 200, "the server stopped answering")
  }

  private static func shown(_ row: TableRow) -> String {
    let text = String(decoding: row.body.prefix(160), as: UTF8.self)
    return "\(row.method) \(row.path) \(text)\(row.body.count > 160 ? "… (\(row.body.count) bytes)" : "")"
  }

  // MARK: Row builders

  private static let notJSON = "the body is not valid JSON: "
  private static let notATensor = "expected a tensor (a number, an array of numbers or an object with 'shape'), found "
  private static let exactlyOne = "the request must give the function as exactly one of 'expr', 'graph' or 'graph_id'"

  /// A problem with one entry.
  private static func bad(
    _ label: String, path: String = "/gradient", _ body: String, _ status: Int, _ pointer: String,
    _ message: String, at position: Int? = nil
  ) -> TableRow {
    bad(label, path: path, Array(body.utf8), status, pointer, message, at: position)
  }

  private static func bad(
    _ label: String, path: String = "/gradient", _ body: [UInt8], _ status: Int, _ pointer: String,
    _ message: String, at position: Int? = nil
  ) -> TableRow {
    TableRow(
      label: label, path: path, body: body,
      expected: TableExpectation(
        status: status, pointer: .exactly(pointer), position: position.map { .exactly($0) } ?? .absent,
        message: .exactly(message), detail: .exactly(message)))
  }

  /// An `expr` problem: pointer `/expr`, with a position.
  private static func expr(
    _ label: String, path: String = "/gradient", _ source: String, point: String = #"{"x": 1}"#, _ status: Int,
    _ message: String, at position: Int
  ) -> TableRow {
    bad(
      label, path: path, #"{"expr": \#(jsonString(source)), "at": \#(point)}"#, status, "/expr", message, at: position)
  }

  /// A problem with no entries, only a detail.
  private static func plain(
    _ label: String, _ method: String, _ path: String, body: String = #"{"expr": "x", "at": {"x": 1}}"#,
    contentType: String? = "application/json", _ status: Int, _ detail: String, allow: String? = nil
  ) -> TableRow {
    TableRow(
      label: label, method: method, path: path, body: Array(body.utf8), contentType: contentType,
      expected: TableExpectation(status: status, detail: .exactly(detail), allow: allow.map { .exactly($0) } ?? .absent)
    )
  }

  /// A request that must succeed with exactly this body (the accepted side of a limit).
  private static func ok(
    _ label: String, path: String = "/gradient", _ body: String, contentType: String = "application/json",
    _ response: String
  ) -> TableRow {
    TableRow(
      label: label, path: path, body: Array(body.utf8), contentType: contentType,
      expected: TableExpectation(status: 200, body: .exactly(response)))
  }

  /// A JSON array of `count` zeros.
  private static func zeros(_ count: Int) -> String {
    "[" + Array(repeating: "0", count: count).joined(separator: ",") + "]"
  }

  /// `text` as a JSON string, escaped by the project's own writer.
  private static func jsonString(_ text: String) -> String {
    var writer = JSONWriter()
    writer.write(text)
    return String(decoding: writer.bytes, as: UTF8.self)
  }

  /// A request with the function as a JSON `graph`.
  private static func graph(_ graph: String, at: String = #"{"x": 1}"#) -> String {
    #"{"graph": \#(graph), "at": \#(at)}"#
  }

  /// `{"expr": "sum(x)", "at": {"x": [[…1…]]}}` nested `depth` deep in all (the two objects count).
  private static func deepTensor(_ depth: Int) -> String {
    let n = depth - 2
    return #"{"expr": "sum(x)", "at": {"x": "# + String(repeating: "[", count: n) + "1"
      + String(repeating: "]", count: n) + "}}"
  }

  /// An unknown field `pad` holding objects nested so that the document is `depth` deep.
  private static func deepObject(_ depth: Int) -> String {
    let n = depth - 1
    return #"{"expr": "x", "at": {"x": 1}, "pad": "# + String(repeating: #"{"a": "#, count: n) + "1"
      + String(repeating: "}", count: n) + "}"
  }

  // MARK: The table

  static let rows: [TableRow] =
    malformedJSON + limits + function + types + ragged + tensorObjects + strings + inputs
    + syntax + semantics + graphs + http + unknownFields

  private static let malformedJSON: [TableRow] = [
    bad(
      "truncated object", #"{"expr": "x", "at": {"x": 1}"#, 400, "",
      notJSON + "unexpected end of input, expected ',' or '}' after object member at byte 28"),
    bad(
      "truncated array", #"{"expr": "x", "at": {"x": [1, 2"#, 400, "/at/x/2",
      notJSON + "unexpected end of input, expected ',' or ']' after array element at byte 31"),
    bad("truncated string", #"{"expr": "x"#, 400, "/expr", notJSON + "unterminated string at byte 9"),
    bad(
      "truncated after '{'", "{", 400, "",
      notJSON + "unexpected end of input, expected a string key or '}' at byte 1"),
    bad("empty body", "", 400, "", notJSON + "unexpected end of input, expected a value at byte 0"),
    bad("only whitespace", " \n", 400, "", notJSON + "unexpected end of input, expected a value at byte 2"),
    bad(
      "trailing comma in object", #"{"expr": "x", "at": {"x": 1},}"#, 400, "",
      notJSON + "unexpected '}', expected a string key (trailing commas are not allowed) at byte 29"),
    bad(
      "trailing comma in array", #"{"expr": "x", "at": {"x": [1,2,]}}"#, 400, "/at/x/2",
      notJSON + "unexpected ']', expected a value (trailing commas are not allowed) at byte 31"),
    bad(
      "missing comma", #"{"expr": "x" "at": {"x": 1}}"#, 400, "",
      notJSON + "unexpected '\"', expected ',' or '}' after object member at byte 13"),
    bad(
      "single quotes", "{'expr': 'x'}", 400, "", notJSON + "unexpected ''', expected a string key or '}' at byte 1"),
    bad(
      "bad escape", #"{"expr": "x\q", "at": {"x": 1}}"#, 400, "/expr",
      notJSON + "invalid escape '\\q' in a string at byte 11"),
    bad(
      "bad \\u escape", #"{"expr": "x\u12G4", "at": {"x": 1}}"#, 400, "/expr",
      notJSON + "expected 4 hex digits after \\u at byte 15"),
    bad(
      "unpaired surrogate escape", #"{"expr": "x\ud800", "at": {"x": 1}}"#, 400, "/expr",
      notJSON + "unpaired high surrogate in \\u escape at byte 11"),
    bad(
      "raw tab in a string", "{\"expr\": \"x\ty\", \"at\": {\"x\": 1}}", 400, "/expr",
      notJSON + "unescaped control character byte 0x09 in a string at byte 11"),
    bad(
      "leading zero", #"{"expr": "x", "at": {"x": 01}}"#, 400, "/at/x",
      notJSON + "leading zeros are not allowed in numbers at byte 26"),
    bad(
      "leading dot", #"{"expr": "x", "at": {"x": .5}}"#, 400, "/at/x",
      notJSON + "unexpected '.', expected a value at byte 26"),
    bad(
      "trailing dot", #"{"expr": "x", "at": {"x": 1.}}"#, 400, "/at/x",
      notJSON + "expected a digit after the decimal point at byte 28"),
    bad(
      "plus sign", #"{"expr": "x", "at": {"x": +1}}"#, 400, "/at/x",
      notJSON + "unexpected '+', expected a value at byte 26"),
    bad(
      "NaN literal", #"{"expr": "x", "at": {"x": NaN}}"#, 400, "/at/x",
      notJSON + "unexpected 'N', expected a value at byte 26"),
    bad(
      "Infinity literal", #"{"expr": "x", "at": {"x": Infinity}}"#, 400, "/at/x",
      notJSON + "unexpected 'I', expected a value at byte 26"),
    bad(
      "misspelled true", #"{"expr": "x", "at": {"x": tru}}"#, 400, "/at/x",
      notJSON + "unexpected '}', expected 'true' at byte 29"),
    bad(
      "block comment", #"{"expr": "x", /* c */ "at": {"x": 1}}"#, 400, "",
      notJSON + "unexpected '/', expected a string key after ',' at byte 14"),
    bad(
      "line comment", #"{"expr": "x", "at": {"x": 1}} // c"#, 400, "",
      notJSON + "unexpected '/' after the JSON value at byte 30"),
    bad(
      "trailing value", #"{"expr": "x", "at": {"x": 1}} x"#, 400, "",
      notJSON + "unexpected 'x' after the JSON value at byte 30"),
    bad(
      "invalid UTF-8 byte in a string", Array(#"{"expr": "x"#.utf8) + [0xFF] + Array(#"", "at": {"x": 1}}"#.utf8), 400,
      "/expr", notJSON + "invalid UTF-8 in a string at byte 11"),
    bad(
      "overlong UTF-8 in a string", Array(#"{"expr": "x"#.utf8) + [0xC0, 0xAF] + Array(#"", "at": {"x": 1}}"#.utf8),
      400, "/expr", notJSON + "invalid UTF-8 in a string at byte 11"),
    bad(
      "UTF-8 surrogate in a string",
      Array(#"{"expr": "x"#.utf8) + [0xED, 0xA0, 0x80] + Array(#"", "at": {"x": 1}}"#.utf8), 400, "/expr",
      notJSON + "invalid UTF-8 in a string at byte 11"),
    bad(
      "invalid UTF-8 in a key", Array(#"{"expr": "x", "at": {"x"#.utf8) + [0xFE] + Array(#"": 1}}"#.utf8), 400, "/at",
      notJSON + "invalid UTF-8 in a string at byte 23"),
    bad(
      "invalid byte as a value", Array(#"{"expr": "x", "at": {"x": "#.utf8) + [0xFF] + Array("}}".utf8), 400, "/at/x",
      notJSON + "unexpected byte 0xFF, expected a value at byte 26"),
    bad(
      "byte order mark", [0xEF, 0xBB, 0xBF] + Array(#"{"expr": "x", "at": {"x": 1}}"#.utf8), 400, "",
      notJSON + "a byte order mark is not allowed at byte 0"),
    bad("bare array", "[1, 2]", 400, "", "the body must be a JSON object, not an array"),
    bad("bare number", "3", 400, "", "the body must be a JSON object, not a number"),
    bad("bare string", #""x""#, 400, "", "the body must be a JSON object, not a string"),
    bad("bare null", "null", 400, "", "the body must be a JSON object, not null"),
    bad(
      "duplicate top-level key", #"{"expr": "x", "at": {"x": 1}, "at": {"x": 2}}"#, 400, "/at",
      notJSON + "duplicate key 'at' at byte 30"),
    bad(
      "duplicate input", #"{"expr": "x", "at": {"x": 1, "x": 2}}"#, 400, "/at/x",
      notJSON + "duplicate key 'x' at byte 29"),
  ]

  private static let limits: [TableRow] = [
    ok("nesting of exactly 512", path: "/evaluate", deepTensor(512), #"{"values":{"out":1.0}}"#),
    bad(
      "nesting of 513 arrays", path: "/evaluate", deepTensor(513), 400, "/at/x" + String(repeating: "/0", count: 510),
      notJSON + "nesting depth 513 is over the limit of 512 at byte 541"),
    bad("objects nested 512 deep parse", path: "/evaluate", deepObject(512), 400, "/pad", "unknown field 'pad'"),
    bad(
      "objects nested 513 deep", path: "/evaluate", deepObject(513), 400, "/pad" + String(repeating: "/a", count: 511),
      notJSON + "nesting depth 513 is over the limit of 512 at byte 3103"),
    bad(
      "1e400", #"{"expr": "x", "at": {"x": 1e400}}"#, 400, "/at/x", notJSON + "number out of range at byte 26"),
    bad(
      "-1E400", #"{"expr": "x", "at": {"x": -1E400}}"#, 400, "/at/x", notJSON + "number out of range at byte 26"),
    bad(
      "1.8e308 in an array", #"{"expr": "x", "at": {"x": [1e308, 1.8e308]}}"#, 400, "/at/x/1",
      notJSON + "number out of range at byte 34"),
    bad(
      "1e400 as an extent", #"{"expr": "x", "at": {"x": {"shape": [1e400], "data": []}}}"#, 400, "/at/x/shape/0",
      notJSON + "number out of range at byte 37"),
    ok("1e-400 underflows to zero", #"{"expr": "x", "at": {"x": 1e-400}}"#, #"{"value":0.0,"gradient":{"x":1.0}}"#),
    ok(
      "expr of exactly 1 MiB", path: "/evaluate",
      #"{"expr": "x"# + String(repeating: " ", count: (1 << 20) - 1) + #"", "at": {"x": 2}}"#,
      #"{"values":{"out":2.0}}"#),
  ]

  private static let function: [TableRow] = [
    bad("no function", #"{"at": {"x": 1}}"#, 400, "", exactlyOne),
    bad("empty object", "{}", 400, "", exactlyOne),
    bad("expr is a number", #"{"expr": 1, "at": {"x": 1}}"#, 400, "/expr", "'expr' must be a string"),
    bad("expr is null", #"{"expr": null, "at": {"x": 1}}"#, 400, "/expr", "'expr' must be a string"),
    bad("expr is an array", #"{"expr": ["x"], "at": {"x": 1}}"#, 400, "/expr", "'expr' must be a string"),
  ]

  private static let types: [TableRow] = [
    bad("no at", #"{"expr": "x"}"#, 400, "", "the request must give the point as 'at' (or the points as 'batch')"),
    bad(
      "at is an array", #"{"expr": "x", "at": [1]}"#, 400, "/at",
      "'at' must be an object mapping input names to tensors"),
    bad(
      "at is a number", #"{"expr": "x", "at": 1}"#, 400, "/at", "'at' must be an object mapping input names to tensors"),
    bad(
      "at is null", #"{"expr": "x", "at": null}"#, 400, "/at", "'at' must be an object mapping input names to tensors"),
    bad(
      "wrt is a string", #"{"expr": "x", "at": {"x": 1}, "wrt": "x"}"#, 400, "/wrt",
      "'wrt' must be an array of input names"),
    bad(
      "wrt is an object", #"{"expr": "x", "at": {"x": 1}, "wrt": {}}"#, 400, "/wrt",
      "'wrt' must be an array of input names"),
    bad(
      "wrt holds a number", #"{"expr": "x", "at": {"x": 1}, "wrt": [1]}"#, 400, "/wrt/0",
      "'wrt' must be an array of input names"),
    bad(
      "wrt holds null", #"{"expr": "x", "at": {"x": 1}, "wrt": ["x", null]}"#, 400, "/wrt/1",
      "'wrt' must be an array of input names"),
    bad("tensor is true", #"{"expr": "x", "at": {"x": true}}"#, 400, "/at/x", notATensor + "a Boolean"),
    bad("tensor is null", #"{"expr": "x", "at": {"x": null}}"#, 400, "/at/x", notATensor + "null"),
    bad(
      "element is null", #"{"expr": "sum(x)", "at": {"x": [1, null]}}"#, 400, "/at/x/1", "expected a number, found null"
    ),
    bad(
      "element is an object", #"{"expr": "sum(x)", "at": {"x": [1, {}]}}"#, 400, "/at/x/1",
      "expected a number, found an object"),
    bad(
      "element is true", #"{"expr": "sum(x)", "at": {"x": [1, true]}}"#, 400, "/at/x/1",
      "expected a number, found a Boolean"),
  ]

  private static let ragged: [TableRow] = [
    bad(
      "ragged [[1,2],[3]]", #"{"expr": "sum(x)", "at": {"x": [[1, 2], [3]]}}"#, 400, "/at/x/1",
      "ragged array: expected 2 elements, found 1"),
    bad(
      "ragged [[1,2],[3,4,5]]", #"{"expr": "sum(x)", "at": {"x": [[1, 2], [3, 4, 5]]}}"#, 400, "/at/x/1",
      "ragged array: expected 2 elements, found 3"),
    bad(
      "ragged [[],[1]]", #"{"expr": "sum(x)", "at": {"x": [[], [1]]}}"#, 400, "/at/x/1",
      "ragged array: expected 0 elements, found 1"),
    bad(
      "ragged at depth 3", #"{"expr": "sum(x)", "at": {"x": [[[1, 2], [3, 4]], [[5, 6], [7]]]}}"#, 400, "/at/x/1/1",
      "ragged array: expected 2 elements, found 1"),
    bad(
      "ragged first inner row", #"{"expr": "sum(x)", "at": {"x": [[[1, 2]], [[3]]]}}"#, 400, "/at/x/1/0",
      "ragged array: expected 2 elements, found 1"),
    bad(
      "array where a number belongs", #"{"expr": "sum(x)", "at": {"x": [[1, 2], [[3], 4]]}}"#, 400, "/at/x/1/0",
      "ragged array: expected a number, found an array"),
    bad(
      "array after a number", #"{"expr": "sum(x)", "at": {"x": [1, [2]]}}"#, 400, "/at/x/1",
      "ragged array: expected a number, found an array"),
    bad(
      "number where a row belongs", #"{"expr": "sum(x)", "at": {"x": [[1, 2], 3]}}"#, 400, "/at/x/1",
      "ragged array: expected an array of 2 elements, found a number"),
    bad(
      "number deep where a row belongs", #"{"expr": "sum(x)", "at": {"x": [[[1], [2]], [[3], 4]]}}"#, 400,
      "/at/x/1/1", "ragged array: expected an array of 1 elements, found a number"),
  ]

  private static let tensorObjects: [TableRow] = [
    bad(
      "data count mismatch", #"{"expr": "sum(x)", "at": {"x": {"shape": [2, 2], "data": [1, 2, 3]}}}"#, 400,
      "/at/x/data", "'data' has 3 elements, but shape [2, 2] needs 4"),
    bad(
      "negative extent", #"{"expr": "sum(x)", "at": {"x": {"shape": [2, -1], "data": [1, 2]}}}"#, 400,
      "/at/x/shape/1", "'shape' entries must be non-negative integers, found a number"),
    bad(
      "negative extent with base64", #"{"expr": "sum(x)", "at": {"x": {"shape": [-2], "base64": ""}}}"#, 400,
      "/at/x/shape/0", "'shape' entries must be non-negative integers, found a number"),
    bad(
      "fractional extent", #"{"expr": "sum(x)", "at": {"x": {"shape": [1.5], "data": [1]}}}"#, 400,
      "/at/x/shape/0", "'shape' entries must be non-negative integers, found a number"),
    bad(
      "shape is a string", #"{"expr": "sum(x)", "at": {"x": {"shape": "2", "data": [1, 2]}}}"#, 400, "/at/x/shape",
      "'shape' must be an array of non-negative integers, found the string \"2\""),
    bad(
      "no shape", #"{"expr": "sum(x)", "at": {"x": {"data": [1, 2]}}}"#, 400, "/at/x",
      "a tensor object needs 'shape' and either 'data' or 'base64'"),
    bad(
      "empty tensor object", #"{"expr": "x", "at": {"x": {}}}"#, 400, "/at/x",
      "a tensor object needs 'shape' and either 'data' or 'base64'"),
    bad(
      "shape without data", #"{"expr": "sum(x)", "at": {"x": {"shape": [2]}}}"#, 400, "/at/x",
      "a tensor object needs 'data' or 'base64' next to 'shape'"),
    bad(
      "data and base64", #"{"expr": "sum(x)", "at": {"x": {"shape": [2], "data": [1, 2], "base64": ""}}}"#, 400,
      "/at/x", "a tensor object has either 'data' or 'base64', not both"),
    bad(
      "nested data", #"{"expr": "sum(x)", "at": {"x": {"shape": [2], "data": [[1], [2]]}}}"#, 400, "/at/x/data/0",
      "'data' must be a flat array of numbers, found an array"),
    bad(
      "data is a number", #"{"expr": "sum(x)", "at": {"x": {"shape": [2], "data": 1}}}"#, 400, "/at/x/data",
      "'data' must be a flat array of numbers, found a number"),
    bad(
      "data holds a string", #"{"expr": "sum(x)", "at": {"x": {"shape": [2], "data": [1, "x"]}}}"#, 400,
      "/at/x/data/1", "expected a number, found the string \"x\""),
    bad(
      "extra key in a tensor object",
      #"{"expr": "sum(x)", "at": {"x": {"shape": [2], "data": [1, 2], "dtype": "f8"}}}"#,
      400, "/at/x/dtype", "unexpected key 'dtype' in a tensor object (allowed: 'shape', and 'data' or 'base64')"),
    bad(
      "base64 without padding", #"{"expr": "sum(x)", "at": {"x": {"shape": [1], "base64": "AAAAAAAA8D8"}}}"#, 400,
      "/at/x/base64", "invalid base64: length 11 is not a multiple of 4"),
    bad(
      "base64 bad character", #"{"expr": "sum(x)", "at": {"x": {"shape": [1], "base64": "AAAAAAAA8D!="}}}"#, 400,
      "/at/x/base64", "invalid base64: invalid base64 character at offset 10"),
    bad(
      "base64 byte count mismatch", #"{"expr": "sum(x)", "at": {"x": {"shape": [2], "base64": "AAAAAAAA8D8="}}}"#, 400,
      "/at/x/base64", "'base64' holds 8 bytes, but shape [2] needs 16 (float64)"),
    bad(
      "base64 is a number", #"{"expr": "sum(x)", "at": {"x": {"shape": [1], "base64": 5}}}"#, 400, "/at/x/base64",
      "'base64' must be a string, found a number"),
  ]

  private static let strings: [TableRow] = [
    bad("string Inf", #"{"expr": "x", "at": {"x": "Inf"}}"#, 400, "/at/x", notATensor + "the string \"Inf\""),
    bad(
      "string infinity", #"{"expr": "x", "at": {"x": "infinity"}}"#, 400, "/at/x",
      notATensor + "the string \"infinity\""),
    bad("string -NaN", #"{"expr": "x", "at": {"x": "-NaN"}}"#, 400, "/at/x", notATensor + "the string \"-NaN\""),
    bad(
      "string with a space", #"{"expr": "x", "at": {"x": " NaN"}}"#, 400, "/at/x", notATensor + "the string \" NaN\""),
    bad("numeric string", #"{"expr": "x", "at": {"x": "1.5"}}"#, 400, "/at/x", notATensor + "the string \"1.5\""),
    bad(
      "string nan in an array", #"{"expr": "sum(x)", "at": {"x": [1, "nan"]}}"#, 400, "/at/x/1",
      "expected a number, found the string \"nan\""),
  ]

  private static let inputs: [TableRow] = [
    bad(
      "missing input", #"{"expr": "x + y", "at": {"x": 1}}"#, 422, "/at", "no value is given for the input 'y'"),
    bad(
      "missing first input", #"{"expr": "x + y", "at": {"y": 1}}"#, 422, "/at", "no value is given for the input 'x'"),
    bad(
      "missing input after one out of order", #"{"expr": "x + y + z", "at": {"z": 1, "x": 2}}"#, 422, "/at",
      "no value is given for the input 'y'"),
    bad("extra input", #"{"expr": "x", "at": {"x": 1, "z": 2}}"#, 422, "/at/z", "'z' is not an input of the function"),
    bad(
      "extra input needing escapes", #"{"expr": "x", "at": {"a/b": 1, "x": 1}}"#, 422, "/at/a~1b",
      "'a/b' is not an input of the function"),
    bad(
      "wrt names a non-input", #"{"expr": "x", "at": {"x": 1}, "wrt": ["q"]}"#, 422, "/wrt/0",
      "'q' is not an input of the function"),
    bad(
      "wrt names a non-input second", #"{"expr": "x", "at": {"x": 1}, "wrt": ["x", "q"]}"#, 422, "/wrt/1",
      "'q' is not an input of the function"),
  ]

  private static let syntax: [TableRow] = [
    expr("ends after an operator", "x +", 400, "the expression ends where a value was expected", at: 3),
    expr("unexpected token", "x + * y", 400, "unexpected '*' where a value was expected", at: 4),
    expr("double @", "x @@ y", 400, "unexpected '@' where a value was expected", at: 3),
    expr(
      "unclosed paren", "(x + 1", 400, "expected ')' to close the '(' at 0, found the end of the expression", at: 6),
    expr("stray close paren", "x)", 400, "unexpected ')' after the end of an expression", at: 1),
    expr("chained comparison", "a < b < c", 400, "comparisons cannot be chained; use parentheses", at: 6),
    expr("chained equality", "x == y == z", 400, "comparisons cannot be chained; use parentheses", at: 7),
    expr("empty expr", "", 400, "the expression is empty", at: 0),
    expr("only separators", " ;\n; ", 400, "the expression is empty", at: 0),
    expr("two decimal points", "1.2.3", 400, "unexpected '.' in a number", at: 3),
    expr("exponent without digits", "1e", 400, "the exponent of a number has no digits", at: 2),
    expr("signed exponent without digits", "x * 1e+", 400, "the exponent of a number has no digits", at: 7),
    expr("letter after a number", "3x", 400, "unexpected 'x' in a number", at: 1),
    expr("number out of range", "x + 1e400", 400, "the number 1e400 is outside the range of a double", at: 4),
    expr("true as a value", "true", 400, "'true' is only allowed as a keyword argument", at: 0),
    expr("assignment without a value", "x = ", 400, "the expression ends where a value was expected", at: 4),
    expr("missing comma in a call", "sin(x y)", 400, "expected ',' or ')' in the call of 'sin', found 'y'", at: 6),
    expr(
      "empty keyword value", "sum(x, axis=)", 400,
      "a keyword value must be a number, a list of numbers, true or false", at: 12),
    expr(
      "name as a keyword value", "sum(x, keepdims=maybe)", 400,
      "a keyword value must be a number, a list of numbers, true or false", at: 16),
    expr("unclosed list", "sum(x, axis=[1, 2)", 400, "expected ',' or ']' in the list, found ')'", at: 17),
    expr("keyword given twice", "sum(x, axis=1, axis=2)", 400, "keyword argument 'axis' is given twice", at: 15),
    expr("positional after keyword", "sum(axis=1, x)", 400, "a positional argument follows a keyword argument", at: 12),
    expr("second statement broken", "x = 1; y +", 400, "the expression ends where a value was expected", at: 10),
    expr("CRLF counts two scalars", "x\r\ny +", 400, "the expression ends where a value was expected", at: 6),
    expr("combining mark", "x + e\u{301}", 400, "unexpected '\u{301}' after the end of an expression", at: 5),
    expr("emoji", "x + \u{1F600}", 400, "unexpected '\u{1F600}' where a value was expected", at: 4),
  ]

  private static let semantics: [TableRow] = [
    expr("unknown op", path: "/evaluate", "frob(x)", 422, "unknown op 'frob'", at: 0),
    expr("unknown op on line 2", path: "/evaluate", "y = x * 2\nz = frob(y)", 422, "unknown op 'frob'", at: 14),
    expr("unary with two args", path: "/evaluate", "sin(x, x)", 422, "sin takes 1 argument, not 2", at: 0),
    expr("unary with none", path: "/evaluate", "sin()", point: "{}", 422, "sin takes 1 argument, not 0", at: 0),
    expr("binary with one", path: "/evaluate", "atan2(x)", 422, "atan2 takes 2 arguments, not 1", at: 0),
    expr("where with two", path: "/evaluate", "where(x, x)", 422, "where takes 3 arguments, not 2", at: 0),
    expr(
      "concat with none", path: "/evaluate", "concat()", point: "{}", 422, "concat takes one or more arguments, not 0",
      at: 0),
    expr(
      "unknown attribute", path: "/evaluate", "sum(x, axes=1)", 422,
      "sum has no attribute 'axes' (it takes only axis, keepdims)",
      at: 7),
    expr(
      "attribute on a unary op", path: "/evaluate", "sin(x, axis=1)", 422,
      "sin has no attribute 'axis' (it takes no attributes)",
      at: 7),
    expr("fractional axis", path: "/evaluate", "sum(x, axis=1.5)", 422, "sum: axis must be an integer, not 1.5", at: 7),
    expr(
      "boolean axis", path: "/evaluate", "sum(x, axis=true)", 422, "sum: axis must be an integer or a list of integers",
      at: 7),
    expr(
      "numeric keepdims", path: "/evaluate", "sum(x, keepdims=1)", 422, "sum: keepdims must be true or false", at: 7),
    expr(
      "scalar shape", path: "/evaluate", "reshape(x, shape=1)", 422, "reshape: shape must be a list of integers", at: 11
    ),
    expr(
      "fractional start", path: "/evaluate", "slice(x, start=0.5)", 422, "slice: start must be an integer, not 0.5",
      at: 9),
    expr(
      "boolean const", path: "/evaluate", "const(value=true)", point: "{}", 422,
      "const: value must be a number or a (nested) list of numbers", at: 6),
    expr("index without indices", path: "/evaluate", "index(x)", 422, "index needs indices", at: 0),
    expr("expand_dims without axis", path: "/evaluate", "expand_dims(x)", 422, "expand_dims needs an axis", at: 0),
    expr(
      "broadcast mismatch", "x + y", point: #"{"x": [1, 2], "y": [1, 2, 3]}"#, 422,
      "add: cannot broadcast shapes [2] and [3]", at: 2),
    expr(
      "matmul mismatch", "sum(x @ y)", point: #"{"x": [[1, 2]], "y": [[1, 2]]}"#, 422,
      "matmul: shapes [1, 2] and [1, 2] do not align (2 \u{2260} 1)", at: 6),
    expr(
      "reshape count mismatch", "sum(reshape(x, shape=[3]))", point: #"{"x": [1, 2]}"#, 422,
      "reshape: cannot reshape [2] (2 elements) to [3]", at: 4),
    expr(
      "axis out of range", "sum(x, axis=2)", point: #"{"x": [1, 2]}"#, 422,
      "sum: axis 2 is out of range for a tensor of rank 1", at: 0),
    expr(
      "squeeze of a long axis", path: "/evaluate", "squeeze(x, axis=0)", point: #"{"x": [1, 2]}"#, 422,
      "squeeze: axis 0 has extent 2, not 1", at: 0),
    expr(
      "transpose axes out of range", path: "/evaluate", "transpose(x, axes=[0, 1])", point: #"{"x": [1, 2]}"#, 422,
      "transpose: axis 1 is out of range for a tensor of rank 1", at: 0),
  ]

  private static let graphs: [TableRow] = [
    bad(
      "expr and graph", #"{"expr": "x", "graph": {"nodes": []}, "at": {"x": 1}}"#, 400, "/graph",
      "the request gives the function more than once (expr, graph); give exactly one"),
    bad(
      "expr and graph_id", #"{"expr": "x", "graph_id": "sha256:00", "at": {"x": 1}}"#, 400, "/graph_id",
      "the request gives the function more than once (expr, graph_id); give exactly one"),
    bad(
      "graph and graph_id", #"{"graph": {"nodes": []}, "graph_id": "sha256:00", "at": {"x": 1}}"#, 400, "/graph_id",
      "the request gives the function more than once (graph, graph_id); give exactly one"),
    bad(
      "all three forms", #"{"expr": "x", "graph": {"nodes": []}, "graph_id": "sha256:00", "at": {"x": 1}}"#, 400,
      "/graph", "the request gives the function more than once (expr, graph, graph_id); give exactly one"),
    bad(
      "graph: unknown name", path: "/evaluate",
      graph(
        #"{"inputs": {"x": []}, "nodes": [{"id": "h", "op": "sin", "args": ["x"]}, "#
          + #"{"id": "a", "op": "cos", "args": ["h"]}, {"id": "s", "op": "mul", "args": ["hh", "a"]}]}"#),
      422, "/graph/nodes/2/args/0", "unknown name 'hh'"),
    bad(
      "graph: duplicate id", path: "/evaluate",
      graph(#"{"nodes": [{"id": "a", "op": "sin", "args": ["x"]}, {"id": "a", "op": "cos", "args": ["x"]}]}"#),
      422, "/graph/nodes/1/id", "duplicate id 'a'"),
    bad(
      "graph: id is an input", path: "/evaluate",
      graph(#"{"inputs": {"x": []}, "nodes": [{"id": "x", "op": "sin", "args": ["x"]}]}"#), 422, "/graph/nodes/0/id",
      "id 'x' is also the name of an input"),
    bad(
      "graph: cycle", path: "/evaluate",
      graph(
        #"{"inputs": {"x": []}, "nodes": [{"id": "a", "op": "add", "args": ["b", "x"]}, "#
          + #"{"id": "b", "op": "cos", "args": ["a"]}], "outputs": ["b"]}"#),
      422, "/graph/nodes/0", "the graph has a cycle of 2 nodes: 'a' -> 'b' -> 'a'"),
    bad(
      "graph: unknown op", path: "/evaluate", graph(#"{"nodes": [{"id": "a", "op": "frob", "args": ["x"]}]}"#), 422,
      "/graph/nodes/0/op", "unknown op 'frob'"),
    bad(
      "graph: wrong arity", path: "/evaluate", graph(#"{"nodes": [{"id": "a", "op": "sin", "args": ["x", "x"]}]}"#),
      422, "/graph/nodes/0/args", "sin takes 1 argument, not 2"),
    bad(
      "graph: unknown attribute", path: "/evaluate",
      graph(#"{"nodes": [{"id": "a", "op": "sum", "args": ["x"], "attrs": {"axes": [0]}}]}"#, at: #"{"x": [1, 2]}"#),
      422, "/graph/nodes/0/attrs/axes", "sum has no attribute 'axes' (it takes only axis, keepdims)"),
    bad(
      "graph: attribute of the wrong type", path: "/evaluate",
      graph(#"{"nodes": [{"id": "a", "op": "sum", "args": ["x"], "attrs": {"axis": "0"}}]}"#, at: #"{"x": [1, 2]}"#),
      400, "/graph/nodes/0/attrs/axis", "'axis' must be an integer or a list of integers, not a string"),
    bad(
      "graph: unknown output", path: "/evaluate",
      graph(#"{"nodes": [{"id": "a", "op": "sin", "args": ["x"]}], "outputs": ["zz"]}"#), 422, "/graph/outputs/0",
      "unknown name 'zz'"),
    bad(
      "graph: output and outputs", path: "/evaluate",
      graph(#"{"nodes": [{"id": "a", "op": "sin", "args": ["x"]}], "output": "a", "outputs": ["a"]}"#), 400,
      "/graph/output", "give either 'outputs' or 'output', not both"),
    bad(
      "graph: no nodes", path: "/evaluate", graph(#"{"nodes": []}"#, at: "{}"), 422, "/graph",
      "the graph has no output: it lists no nodes and names no outputs"),
    bad(
      "graph: boolean arg", path: "/evaluate", graph(#"{"nodes": [{"id": "a", "op": "sin", "args": [true]}]}"#), 400,
      "/graph/nodes/0/args/0", "an argument must be a node id, an input name or a number, not a Boolean"),
    bad(
      "graph: not an object", path: "/evaluate", graph(#""x""#), 400, "/graph",
      "a graph must be an object, not a string"),
    bad(
      "graph: nodes not an array", path: "/evaluate", graph(#"{"nodes": {"id": "a"}}"#), 400, "/graph/nodes",
      "'nodes' must be a list of nodes, not an object"),
    bad(
      "graph: node without op", path: "/evaluate", graph(#"{"nodes": [{"id": "a", "args": ["x"]}]}"#), 400,
      "/graph/nodes/0", "a node needs 'op', a string"),
    bad(
      "graph: numeric id", path: "/evaluate", graph(#"{"nodes": [{"id": 1, "op": "sin", "args": ["x"]}]}"#), 400,
      "/graph/nodes/0/id", "'id' must be a string, not a number"),
    bad(
      "graph: unknown node member", path: "/evaluate",
      graph(#"{"nodes": [{"id": "a", "op": "sin", "args": ["x"], "extra": 1}]}"#), 400, "/graph/nodes/0/extra",
      "unknown member 'extra' (a node has id, op, args and attrs)"),
    bad(
      "graph: negative declared extent", path: "/evaluate",
      graph(#"{"inputs": {"x": [-1]}, "nodes": [{"id": "a", "op": "sin", "args": ["x"]}]}"#), 400, "/graph/inputs/x",
      "a shape must be a list of non-negative integers"),
    bad(
      "graph: shape mismatch", path: "/evaluate",
      graph(#"{"nodes": [{"id": "a", "op": "add", "args": ["x", "y"]}]}"#, at: #"{"x": [1, 2], "y": [1, 2, 3]}"#),
      422, "/graph/nodes/0", "add: cannot broadcast shapes [2] and [3]"),
    bad(
      "graph: value against a declared shape", path: "/evaluate",
      graph(#"{"inputs": {"x": [3]}, "nodes": [{"id": "a", "op": "sin", "args": ["x"]}]}"#, at: #"{"x": [1, 2]}"#),
      422, "/at/x", "the value of 'x' has shape [2], but the graph declares [3]"),
    bad(
      "graph: missing input", path: "/evaluate",
      graph(#"{"inputs": {"x": [], "y": []}, "nodes": [{"id": "a", "op": "add", "args": ["x", "y"]}]}"#), 422, "/at",
      "no value is given for the input 'y'"),
    bad(
      "graph: non-scalar output to /gradient",
      graph(
        #"{"nodes": [{"id": "a", "op": "mul", "args": ["x", 2]}]}"#,
        at: #"{"x": [1, 2]}"#), 422, "/graph/nodes/0",
      "the output has shape [2]; a gradient needs an output with exactly one element"),
    // An entry that points into `expr` carries a position: the output's node, or the first character past the limit.
    expr(
      "non-scalar output to /gradient", "x * 2", point: #"{"x": [1, 2]}"#, 422,
      "the output has shape [2]; a gradient needs an output with exactly one element", at: 2),
    bad(
      "expr over 1 MiB", path: "/evaluate",
      #"{"expr": "x"# + String(repeating: " ", count: 1 << 20) + #"", "at": {"x": 2}}"#, 413, "/expr",
      "'expr' is longer than the limit of 1048576 characters", at: 1 << 20),
    expr(
      "expr over the node limit", path: "/evaluate", "x" + String(repeating: "+x", count: 100_000), 413,
      "the expression has 100001 nodes, more than the limit of 100000", at: 199_999),
    // Shapes no index arithmetic can hold, and intermediates over the engine's limits: 413, never a crash.
    expr(
      "reshape to a shape too large to address", path: "/evaluate", "reshape(x, shape=[4294967296, 4294967296, 0])",
      point: #"{"x": []}"#, 413, "reshape: shape [4294967296, 4294967296, 0] is too large", at: 0),
    expr(
      "broadcast to 10^15 elements", path: "/evaluate", "broadcast_to(x, shape=[100000, 100000, 100000])", 413,
      "broadcast_to: the result of shape [100000, 100000, 100000] would have more than 67108864 elements", at: 0),
    bad(
      "an empty input whose extents overflow", path: "/evaluate",
      #"{"expr": "sum(x)", "at": {"x": {"shape": [0, 4503599627370496, 4503599627370496], "data": []}}}"#, 413,
      "/at/x", "the shape [0, 4503599627370496, 4503599627370496] is too large"),
    bad(
      "an empty result whose nested form is 2^32 arrays", path: "/evaluate",
      #"{"expr": "sum(x, axis=0)", "at": {"x": {"shape": [0, 4294967296, 0], "data": []}}}"#, 413, "/expr",
      "the result of shape [4294967296, 0] has more than 16777216 nested arrays"),
    bad(
      "a Jacobian's value whose nested form is 2^32 arrays", path: "/jacobian",
      #"{"expr": "sum(x, axis=0)", "at": {"x": {"shape": [0, 4294967296, 0, 6], "data": []}}}"#,
      413, "/expr", "the result of shape [4294967296, 0, 6] has more than 16777216 nested arrays"),
    bad(
      "graph: two outputs to /gradient",
      graph(
        #"{"nodes": [{"id": "a", "op": "sin", "args": ["x"]}, {"id": "b", "op": "cos", "args": ["x"]}], "#
          + #""outputs": ["a", "b"]}"#),
      422, "/graph", "the function has 2 outputs; a gradient needs exactly one (name it with 'output')"),
  ]

  private static let http: [TableRow] = [
    plain("text/plain", "POST", "/gradient", contentType: "text/plain", 415, "the body must be application/json"),
    plain("no content type", "POST", "/gradient", contentType: nil, 415, "the body must be application/json"),
    plain(
      "problem+json", "POST", "/evaluate", contentType: "application/problem+json", 415,
      "the body must be application/json"),
    plain(
      "application/jsonx", "POST", "/gradient", contentType: "application/jsonx", 415,
      "the body must be application/json"),
    plain(
      "form body", "POST", "/gradient", body: "expr=x", contentType: "application/x-www-form-urlencoded", 415,
      "the body must be application/json"),
    TableRow(
      label: "unsupported Content-Encoding", path: "/gradient", body: Array(#"{"expr": "x", "at": {"x": 1}}"#.utf8),
      headers: [TableRow.Header(name: "Content-Encoding", value: "br")],
      expected: TableExpectation(
        status: 415, detail: .exactly("the content coding 'br' is not supported; use gzip or identity"))),
    ok(
      "charset parameter", #"{"expr": "x", "at": {"x": 1}}"#, contentType: "application/json; charset=utf-8",
      #"{"value":1.0,"gradient":{"x":1.0}}"#),
    ok(
      "uppercase media type", #"{"expr": "x", "at": {"x": 1}}"#, contentType: "Application/JSON",
      #"{"value":1.0,"gradient":{"x":1.0}}"#),
    plain(
      "GET a compute route", "GET", "/gradient", body: "", contentType: nil, 405, "GET is not allowed here; use POST",
      allow: "POST"),
    plain("PUT a compute route", "PUT", "/evaluate", 405, "PUT is not allowed here; use POST", allow: "POST"),
    plain(
      "DELETE a compute route", "DELETE", "/gradient", body: "", contentType: nil, 405,
      "DELETE is not allowed here; use POST", allow: "POST"),
    plain("POST /healthz", "POST", "/healthz", 405, "POST is not allowed here; use GET or HEAD", allow: "GET, HEAD"),
    plain("unknown path", "GET", "/nothing", body: "", contentType: nil, 404, "there is nothing at /nothing"),
    plain("trailing slash", "POST", "/gradient/", 404, "there is nothing at /gradient/"),
    plain("path case", "POST", "/Gradient", 404, "there is nothing at /Gradient"),
  ]

  private static let unknownFields: [TableRow] = [
    bad("unknown field", #"{"expr": "x", "at": {"x": 1}, "Expr": "x"}"#, 400, "/Expr", "unknown field 'Expr'"),
    bad(
      "wrt on /evaluate", path: "/evaluate", #"{"expr": "x", "at": {"x": 1}, "wrt": ["x"]}"#, 400, "/wrt",
      "unknown field 'wrt'"),
    bad("mode on /gradient", #"{"expr": "x", "at": {"x": 1}, "mode": "auto"}"#, 400, "/mode", "unknown field 'mode'"),
    bad("empty field name", #"{"expr": "x", "at": {"x": 1}, "": 1}"#, 400, "/", "unknown field ''"),
    bad(
      "field name needing escapes", #"{"expr": "x", "at": {"x": 1}, "a/b~c": 1}"#, 400, "/a~1b~0c",
      "unknown field 'a/b~c'"),

    // graph_id, check_numerics, layouts, batches and the other products.
    bad(
      "unknown graph_id", path: "/evaluate", #"{"graph_id": "sha256:0000", "at": {"x": 1}}"#, 404, "/graph_id",
      "no graph has the id 'sha256:0000' here; register it with POST /graphs"),
    bad(
      "graph_id not a string", path: "/evaluate", #"{"graph_id": 7, "at": {"x": 1}}"#, 400, "/graph_id",
      "'graph_id' must be a string"),
    bad(
      "check_numerics names the node", path: "/evaluate",
      #"{"expr": "2 * log(x)", "at": {"x": 0}, "check_numerics": true}"#, 422, "/expr",
      "log produced a NaN or an infinity in the forward pass", at: 4),
    bad(
      "check_numerics in the backward pass", #"{"expr": "sqrt(x)", "at": {"x": 0}, "check_numerics": true}"#,
      422, "/expr", "sqrt produced a NaN or an infinity in the backward pass", at: 0),
    bad(
      "check_numerics names a graph node", path: "/evaluate",
      #"{"graph": {"nodes": [{"id": "a", "op": "log", "args": ["x"]}, {"id": "b", "op": "mul", "args": ["a", 2]}]}, "at": {"x": -1}, "check_numerics": true}"#,
      422, "/graph/nodes/0", "log produced a NaN or an infinity in the forward pass"),
    bad(
      "check_numerics: non-finite input", #"{"expr": "x", "at": {"x": "NaN"}, "check_numerics": true}"#, 422, "/at/x",
      "the input 'x' holds a NaN or an infinity"),
    bad(
      "check_numerics not a bool", #"{"expr": "x", "at": {"x": 1}, "check_numerics": 1}"#, 400, "/check_numerics",
      "'check_numerics' must be true or false"),
    ok(
      "layout flat", path: "/evaluate", #"{"expr": "x", "at": {"x": 1}, "layout": "flat"}"#,
      #"{"values":{"out":{"shape":[],"data":[1.0]}}}"#),
    ok(
      "layout base64", path: "/evaluate", #"{"expr": "x", "at": {"x": [1]}, "layout": "base64"}"#,
      #"{"values":{"out":{"shape":[1],"base64":"AAAAAAAA8D8="}}}"#),
    bad(
      "unknown layout", #"{"expr": "x", "at": {"x": 1}, "layout": "csv"}"#, 400, "/layout",
      #"'layout' must be "nested", "flat" or "base64""#),
    bad(
      "batch: extra input in a point", path: "/evaluate", #"{"expr": "x", "batch": [{"x": 1}, {"x": 2, "y": 3}]}"#,
      422, "/batch/1/y", "'y' is not an input of the function"),
    bad(
      "batch: ragged point", path: "/evaluate", #"{"expr": "sum(x)", "batch": [{"x": [[1, 2], [3]]}]}"#, 400,
      "/batch/0/x/1", "ragged array: expected 2 elements, found 1"),
    bad(
      "batch: missing input", path: "/evaluate", #"{"expr": "x + y", "batch": [{"x": 1, "y": 2}, {"x": 1}]}"#, 422,
      "/batch/1", "no value is given for the input 'y'"),
    bad(
      "batch: not an array", #"{"expr": "x", "batch": {"x": 1}}"#, 400, "/batch", "'batch' must be an array of points"),
    bad(
      "batch: point not an object", #"{"expr": "x", "batch": [{"x": 1}, 2]}"#, 400, "/batch/1",
      "a batch point must be an object mapping input names to tensors"),
    bad(
      "batch and at", #"{"expr": "x", "at": {"x": 1}, "batch": [{"x": 1}]}"#, 400, "/batch",
      "give either one point as 'at' or several as 'batch', not both"),
    bad("empty batch", #"{"expr": "x", "batch": []}"#, 400, "/batch", "'batch' must hold at least one point"),
    bad(
      "jacobian: unknown mode", path: "/jacobian", #"{"expr": "x", "at": {"x": 1}, "mode": "sideways"}"#, 400,
      "/mode", #"'mode' must be "auto", "forward" or "reverse""#),
    bad(
      "jvp: tangent names a non-input", path: "/jvp", #"{"expr": "x", "at": {"x": 1}, "tangent": {"q": 1}}"#, 422,
      "/tangent/q", "'q' is not an input of the function"),
    bad(
      "jvp: tangent of the wrong shape", path: "/jvp", #"{"expr": "x", "at": {"x": [1, 2]}, "tangent": {"x": 1}}"#,
      422, "/tangent/x", "the tangent of 'x' has shape [], but 'x' has shape [2]"),
    bad(
      "vjp: cotangent of the wrong shape", path: "/vjp",
      #"{"expr": "x * 2", "at": {"x": [1, 2]}, "cotangent": [1, 2, 3]}"#, 422, "/cotangent",
      "the cotangent has shape [3], but the output has shape [2]"),
    bad(
      "vjp: no cotangent", path: "/vjp", #"{"expr": "x * 2", "at": {"x": [1, 2]}}"#, 400, "",
      "/vjp needs 'cotangent', a tensor of the output's shape"),
    bad(
      "hessian: non-scalar output", path: "/hessian", #"{"expr": "x * 2", "at": {"x": [1, 2]}}"#, 422, "/expr",
      "the output has shape [2]; a Hessian needs an output with exactly one element", at: 2),
    bad(
      "jacobian over the tensor limit", path: "/jacobian",
      #"{"expr": "x * 2", "at": {"x": "# + zeros(4097) + "}}", 413, "/at",
      "the Jacobian would have 4097 x 4097 elements, over the limit of 16777216 per tensor"),
    bad(
      "hessian over the tensor limit", path: "/hessian", #"{"expr": "sum(x^2)", "at": {"x": "# + zeros(4097) + "}}",
      413, "/at", "the Hessian would have 4097 x 4097 elements, over the limit of 16777216 per tensor"),
    bad(
      "gradcheck: eps not positive", path: "/gradcheck", #"{"expr": "x", "at": {"x": 1}, "eps": 0}"#, 400, "/eps",
      "'eps' must be a positive number"),
    bad(
      "graphs: at is not registered", path: "/graphs", #"{"expr": "x", "at": {"x": 1}}"#, 400, "/at",
      "'at' cannot be registered; send only the function, as 'expr' or 'graph'"),
  ]
}
