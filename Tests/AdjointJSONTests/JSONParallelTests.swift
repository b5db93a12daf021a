import AdjointJSON
import Dispatch
import Foundation
import XCTest

/// Large matrices parsed in slices of rows (`parallelFor`) give exactly what the one-thread parse gives: the same
/// values, and for anything invalid or irregular the same error, at the same offset and pointer.
final class JSONParallelTests: XCTestCase {
  /// Runs the slices on several threads at once.
  private let concurrent: JSONParallelFor = { count, body in
    DispatchQueue.concurrentPerform(iterations: count) { body($0) }
  }

  /// Runs the slices one after the other, last first, and counts the calls (to show the sliced path ran).
  private final class Reversed: @unchecked Sendable {
    let lock = NSLock()
    var calls = 0
    var parallelFor: JSONParallelFor {
      { count, body in
        self.lock.withLock { self.calls += 1 }
        for k in (0..<count).reversed() { body(k) }
      }
    }
  }

  private func parse(_ text: String, _ parallelFor: JSONParallelFor?, minimum: Int = 16) -> Result<
    JSONValue, JSONError
  > {
    Result { () throws(JSONError) in
      try JSONParser.parse(Array(text.utf8), parallelFor: parallelFor, parallelMinimumBytes: minimum)
    }
  }

  /// Parses `text` both ways and compares; returns the sliced result.
  @discardableResult
  private func assertSame(
    _ text: String, minimum: Int = 16, file: StaticString = #filePath, line: UInt = #line
  ) -> Result<JSONValue, JSONError> {
    let expected = parse(text, nil)
    let sliced = parse(text, concurrent, minimum: minimum)
    XCTAssertEqual(sliced, expected, text.count > 300 ? String(text.prefix(300)) + "…" : text, file: file, line: line)
    XCTAssertEqual(parse(text, Reversed().parallelFor, minimum: minimum), expected, file: file, line: line)
    return sliced
  }

  private func matrixText(rows: Int, columns: Int, seed: UInt64, separator: String = ",") -> (String, [Double]) {
    var generator = SplitMix(seed: seed)
    var values: [Double] = []
    var text = "["
    for r in 0..<rows {
      if r > 0 { text += separator }
      text += "["
      for c in 0..<columns {
        let v = Double(bitPattern: generator.next() >> 2 | 0x3F00_0000_0000_0000) * (c % 2 == 0 ? -1 : 1)
        values.append(v)
        text += (c > 0 ? "," : "") + "\(v)"
      }
      text += "]"
    }
    return (text + "]", values)
  }

  func testMatricesAndTensorsMatchTheOneThreadParse() throws {
    for (rows, columns) in [(2, 1), (3, 5), (17, 9), (64, 33), (200, 3)] {
      let (text, values) = matrixText(rows: rows, columns: columns, seed: UInt64(rows * 1000 + columns))
      let document = "{\"a\": 1, \"m\": \(text), \"z\": [[1, 2], [3, 4]]}"
      let reversed = Reversed()
      let value = try parse(document, reversed.parallelFor).get()
      XCTAssertEqual(value, try parse(document, nil).get())
      XCTAssertGreaterThan(reversed.calls, 0, "the sliced path did not run for \(rows)x\(columns)")
      let tensor = try XCTUnwrap(value["m"]?.arrayValue?.numericTensor)
      XCTAssertEqual(tensor.shape, [rows, columns])
      XCTAssertEqual(tensor.data, values)
    }
    // Whitespace everywhere, a rank-3 tensor, rows that are empty arrays, and an array inside an array of arrays.
    assertSame(" [ [ 1 , 2 ] ,\n[3,4]\t,[ 5,6 ] ] ")
    assertSame("[[[1,2],[3,4]],[[5,6],[7,8]],[[9,10],[11,12]]]")
    assertSame("[[],[],[],[],[],[],[],[],[]]")
    assertSame("[[[[1]]],[[[2]]],[[[3]]],[[[4]]]]")
    assertSame("{\"outer\": [[[1,2,3],[4,5,6]], [[7,8,9],[1,2,3]]], \"after\": [[0.5, 1e-3], [2E+2, -0.0]]}")
    // Large enough for the default minimum (256 KiB) and several slices.
    let (big, _) = matrixText(rows: 300, columns: 60, seed: 7)
    let reversed = Reversed()
    XCTAssertEqual(try parse(big, reversed.parallelFor, minimum: 1 << 18).get(), try parse(big, nil).get())
    XCTAssertEqual(reversed.calls, 1)
  }

  func testIrregularAndInvalidMatricesGiveTheSameErrors() {
    let cases = [
      "[[1,2],[3]]", "[[1,2],[3,4,5]]", "[[1,2],3,[4,5]]", "[[1,2],[3,\"x\"]]", "[[1,2],[3,{}]]", "[[1,2] [3,4]]",
      "[[1,2],,[3,4]]", "[[1,2],[3,4],]", "[[1,2],[3,4]", "[[1,2],[3,4]]]", "[[1,2],[3,4]] x", "[[1,2],[3,1e999]]",
      "[[1,2],[3,01]]", "[[1,2],[3,-]]", "[[1,2],[3,4.]]", "[[1,2],[[3],4]]", "[[1,2],[3,4],[5,6]",
      "[ 7, [1,2],[3,4]]", "[[1,2],[true,4]]", "[[1,2],[3,4],null]", "[[1],[2],[3],[4],[5],[6],[7],[8],[9,0]]",
      "[[[1,2],[3,4]],[[5,6],[7]]]", "[[[1,2],[3,4]],[[5,6],7]]", "{\"m\": [[1,2],[3,4]], \"m\": 1}",
      "[[1,2],[3,4]]\u{0}", "[[1,2],\"[3,4]\"]",
    ]
    for text in cases { assertSame(text) }
  }

  func testNestingLimitsAreKept() {
    let text = "[[[[1,2],[3,4]],[[5,6],[7,8]]],[[[1,2],[3,4]],[[5,6],[7,8]]]]"
    for depth in 1...6 {
      let expected = Result { () throws(JSONError) in try JSONParser.parse(text, limits: JSONLimits(maxDepth: depth)) }
      let sliced = Result { () throws(JSONError) in
        try JSONParser.parse(
          Array(text.utf8), limits: JSONLimits(maxDepth: depth), parallelFor: concurrent, parallelMinimumBytes: 16)
      }
      XCTAssertEqual(sliced, expected, "depth \(depth)")
    }
  }

  /// Random damage to a valid matrix (a byte replaced, dropped or inserted) parses the same both ways.
  func testDamagedMatricesMatchTheOneThreadParse() {
    let (text, _) = matrixText(rows: 12, columns: 6, seed: 11, separator: ", ")
    let base = Array("{\"x\": \(text)}".utf8)
    let alphabet = Array("[]{},\" -+.eE0123456789xn\n".utf8)
    var generator = SplitMix(seed: 3)
    for _ in 0..<3000 {
      var bytes = base
      for _ in 0...Int(generator.next() % 3) {
        let at = Int(generator.next() % UInt64(bytes.count))
        let byte = alphabet[Int(generator.next() % UInt64(alphabet.count))]
        switch generator.next() % 3 {
        case 0: bytes[at] = byte
        case 1: bytes.remove(at: at)
        default: bytes.insert(byte, at: at)
        }
      }
      let expected = Result { () throws(JSONError) in try JSONParser.parse(bytes) }
      let sliced = Result { () throws(JSONError) in
        try JSONParser.parse(bytes, parallelFor: concurrent, parallelMinimumBytes: 16)
      }
      if sliced != expected {
        let message = "\(String(decoding: bytes, as: UTF8.self)): sliced \(sliced), one thread \(expected)"
        XCTFail(String(message.prefix(600)))
        return
      }
    }
  }
}

/// A small deterministic generator (SplitMix64).
private struct SplitMix {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
