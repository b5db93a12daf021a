import HTTPCore
import XCTest

/// The ways a test feeds input to the parser: whole, byte by byte, and in a few chunk sizes (SwiftNIO's
/// `ByteToMessageDecoderVerifier` idea).
let feedingStrategies: [(name: String, chunkSize: Int)] = [
  ("whole", Int.max), ("byte by byte", 1), ("2-byte chunks", 2), ("3-byte chunks", 3), ("7-byte chunks", 7),
  ("64-byte chunks", 64),
]

/// Feeds `input` in chunks of `chunkSize`, collecting every request; the error (if any) ends the run.
func parse(
  _ input: [UInt8], chunkSize: Int, limits: HTTPParserLimits = HTTPParserLimits()
) -> (requests: [HTTPRequest], error: HTTPParserError?, parser: HTTPRequestParser) {
  var parser = HTTPRequestParser(limits: limits)
  var requests: [HTTPRequest] = []
  var offset = 0
  repeat {
    let end = chunkSize >= input.count - offset ? input.count : offset + chunkSize
    parser.feed(Array(input[offset..<end]))
    offset = end
    do {
      while let request = try parser.next() { requests.append(request) }
    } catch {
      return (requests, error, parser)
    }
  } while offset < input.count
  return (requests, nil, parser)
}

/// Parses `input` with every feeding strategy, asserts they all agree and none fails, and returns the requests.
@discardableResult
func assertParses(
  _ input: String, count: Int? = nil, limits: HTTPParserLimits = HTTPParserLimits(),
  file: StaticString = #filePath, line: UInt = #line
) -> [HTTPRequest] {
  let bytes = Array(input.utf8)
  var reference: [HTTPRequest]?
  for strategy in feedingStrategies {
    let (requests, error, parser) = parse(bytes, chunkSize: strategy.chunkSize, limits: limits)
    XCTAssertNil(error, "\(strategy.name): unexpected \(String(describing: error))", file: file, line: line)
    XCTAssertEqual(parser.bufferedByteCount, 0, "\(strategy.name): bytes left over", file: file, line: line)
    if let reference {
      XCTAssertEqual(requests, reference, "\(strategy.name) differs from whole", file: file, line: line)
    } else {
      reference = requests
    }
  }
  if let count { XCTAssertEqual(reference?.count, count, "request count", file: file, line: line) }
  return reference ?? []
}

/// Asserts that `input` fails with `expected` (and its status) under every feeding strategy.
func assertRejects(
  _ input: String, _ expected: HTTPParserError, status: Int, limits: HTTPParserLimits = HTTPParserLimits(),
  file: StaticString = #filePath, line: UInt = #line
) {
  assertRejects(Array(input.utf8), expected, status: status, limits: limits, file: file, line: line)
}

/// Asserts that `input` fails with `expected` (and its status) under every feeding strategy.
func assertRejects(
  _ input: [UInt8], _ expected: HTTPParserError, status: Int, limits: HTTPParserLimits = HTTPParserLimits(),
  file: StaticString = #filePath, line: UInt = #line
) {
  for strategy in feedingStrategies {
    let (_, error, _) = parse(input, chunkSize: strategy.chunkSize, limits: limits)
    XCTAssertEqual(error, expected, "\(strategy.name)", file: file, line: line)
    XCTAssertEqual(error?.status.code, status, "\(strategy.name)", file: file, line: line)
  }
}
