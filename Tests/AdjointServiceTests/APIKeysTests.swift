import AdjointJSON
import AdjointService
import Foundation
import ServerTestSupport
import XCTest

final class APIKeysTests: XCTestCase {
  func testTokensFileParsing() throws {
    let text = "# deploy tokens\n\n  alpha  \r\n\tbeta-2/x+y=\n# beta-old\n   \nalpha\n"
    XCTAssertEqual(try APIKeys.tokens(parsing: text), ["alpha", "beta-2/x+y=", "alpha"])
    let keys = APIKeys(tokens: try APIKeys.tokens(parsing: text))
    XCTAssertEqual(keys.count, 2)
    XCTAssertFalse(keys.isEmpty)

    for empty in ["", "\n\n", "# only a comment\n  # another\n", "   \t  "] {
      XCTAssertThrowsError(try APIKeys.tokens(parsing: empty, path: "keys.txt"), empty) {
        XCTAssertTrue("\($0)".contains("no token"), "\($0)")
      }
    }
    XCTAssertThrowsError(try APIKeys.tokens(parsing: "good\ntwo words\n", path: "keys.txt")) {
      XCTAssertTrue("\($0)".contains("keys.txt, line 2"), "\($0)")
    }
  }

  func testLoadingFromAFile() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("apikeys-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let file = directory.appendingPathComponent("tokens")
    try Data("s3cret\n".utf8).write(to: file)
    let keys = try APIKeys.load(contentsOfFile: file.path)
    XCTAssertTrue(keys.authorizes("Bearer s3cret"))

    let empty = directory.appendingPathComponent("empty")
    try Data().write(to: empty)
    XCTAssertThrowsError(try APIKeys.load(contentsOfFile: empty.path))
    XCTAssertThrowsError(try APIKeys.load(contentsOfFile: directory.appendingPathComponent("missing").path)) {
      XCTAssertTrue("\($0)".contains("cannot read"), "\($0)")
    }
  }

  func testAuthorizationHeaders() {
    let keys = APIKeys(tokens: ["tok-123", "other"])
    for accepted in ["Bearer tok-123", "bearer tok-123", "BEARER other", "Bearer    tok-123", "bEaReR other"] {
      XCTAssertTrue(keys.authorizes(accepted), accepted)
    }
    for refused: String? in [
      nil, "", "Bearer", "Bearer ", "Bearer  ", "Bearertok-123", "Bearer\ttok-123", "Basic tok-123",
      "Bearer tok-1234", "Bearer tok-12", "Bearer TOK-123", "Bearer tok-123 extra", "Bearer tok-123,other",
      "Token tok-123", " Bearer tok-123", "Bearer wrong",
    ] {
      XCTAssertFalse(keys.authorizes(refused), refused ?? "nil")
    }
  }

  func testATokenThatIsAPrefixOfAnother() {
    let keys = APIKeys(tokens: ["abc", "abcdef"])
    XCTAssertTrue(keys.authorizes("Bearer abc"))
    XCTAssertTrue(keys.authorizes("Bearer abcdef"))
    XCTAssertFalse(keys.authorizes("Bearer abcd"))
    XCTAssertFalse(keys.authorizes("Bearer ab"))
    let longOnly = APIKeys(tokens: ["abcdef"])
    XCTAssertFalse(longOnly.authorizes("Bearer abc"))
    XCTAssertFalse(longOnly.authorizes("Bearer abcdefg"))
  }

  func testNoTokensAuthorizesNothing() {
    let keys = APIKeys(tokens: ["", ""])
    XCTAssertTrue(keys.isEmpty)
    XCTAssertFalse(keys.authorizes("Bearer "))
    XCTAssertFalse(keys.authorizes("Bearer x"))
  }

  func testUnauthorizedResponse() throws {
    let response = APIKeys.unauthorized(detail: "a valid \"bearer\" token is required")
    XCTAssertEqual(response.status.code, 401)
    XCTAssertEqual(response.headers["WWW-Authenticate"], "Bearer")
    XCTAssertEqual(response.headers["Content-Type"], "application/problem+json")
    let body = try JSONParser.parse(response.body)
    XCTAssertEqual(body["status"]?.intValue, 401)
    XCTAssertEqual(body["detail"]?.stringValue, "a valid \"bearer\" token is required")
    XCTAssertEqual(body["title"]?.stringValue, "Unauthorized")
    XCTAssertNotNil(body["type"]?.stringValue)
    XCTAssertEqual(body["errors"]?.arrayValue?.count, 0)
  }

  func testServeRefusesToStartWithAnEmptyOrMissingKeysFile() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("apikeys-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let empty = directory.appendingPathComponent("empty")
    try Data("# nothing yet\n".utf8).write(to: empty)
    for path in [empty.path, directory.appendingPathComponent("missing").path] {
      let process = Process()
      process.executableURL = ServerProcess.executable
      process.arguments = ["serve", "--port", "0", "--api-keys-file", path]
      let errors = Pipe()
      process.standardError = errors
      process.standardOutput = Pipe()
      try process.run()
      let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      process.waitUntilExit()
      XCTAssertNotEqual(process.terminationStatus, 0, path)
      XCTAssertTrue(message.contains(path), message)
    }
  }
}
