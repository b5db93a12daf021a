import Foundation
import ServerTestSupport
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// Runs `adjoint serve --port 0 ARGUMENTS` at info level, lets `requests` talk to it, stops it with SIGTERM and
/// returns what it logged to standard error.
func serverLog(arguments: [String], _ requests: (RawConnection) throws -> Void) throws -> String {
  let process = Process()
  process.executableURL = ServerProcess.executable
  process.arguments = ["serve", "--host", "127.0.0.1", "--port", "0", "--log-level", "info"] + arguments
  let output = Pipe()
  let errors = Pipe()
  process.standardOutput = output
  process.standardError = errors
  try process.run()
  let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
  let port = try XCTUnwrap(Int(line.split(separator: ":").last?.prefix { $0.isNumber } ?? ""), line)
  try requests(try RawConnection(port: port))
  XCTAssertEqual(kill(process.processIdentifier, SIGTERM), 0)
  let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  process.waitUntilExit()
  return log
}

/// A test case whose tests share one `adjoint serve` subprocess, started once for the class and stopped after it.
class LiveServerTestCase: XCTestCase {
  nonisolated(unsafe) private static var servers: [ObjectIdentifier: ServerProcess] = [:]

  override class func setUp() {
    super.setUp()
    servers[ObjectIdentifier(self)] = try? ServerProcess()
  }

  override class func tearDown() {
    servers[ObjectIdentifier(self)] = nil
    super.tearDown()
  }

  /// This class's server; fails the test when it did not start.
  func server() throws -> ServerProcess {
    try XCTUnwrap(Self.servers[ObjectIdentifier(type(of: self))], "the server did not start")
  }

  /// The port this class's server listens on.
  func serverPort() throws -> Int { try server().port }
}

/// A minimal blocking HTTP/1.1 client over a real TCP socket, enough to see exactly what the server writes.
final class RawConnection {
  private let fd: Int32
  private var buffer: [UInt8] = []

  init(port: Int) throws {
    fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let result = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard result == 0 else { throw POSIXError(.ECONNREFUSED) }
  }

  deinit { close(fd) }

  func send(_ text: String) {
    let bytes = Array(text.utf8)
    var sent = 0
    while sent < bytes.count {
      let n = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
      if n <= 0 { return }
      sent += n
    }
  }

  /// Sends a POST with a JSON body.
  func post(_ path: String, _ body: String, contentType: String = "application/json") {
    send(
      "POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Type: \(contentType)\r\n"
        + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
  }

  struct Response {
    var status: Int
    var headers: [String: String]
    var body: String
    var json: Any? { try? JSONSerialization.jsonObject(with: Data(body.utf8), options: [.fragmentsAllowed]) }
  }

  /// Reads one response; nil when the peer closed first.
  func read() -> Response? {
    while true {
      if let end = find([13, 10, 13, 10]) {
        let head = String(decoding: buffer[..<end], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        var headers: [String: String] = [:]
        for line in lines {
          guard let colon = line.firstIndex(of: ":") else { continue }
          headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        while buffer.count < end + 4 + length { if !fill() { return nil } }
        let body = String(decoding: buffer[(end + 4)..<(end + 4 + length)], as: UTF8.self)
        buffer.removeFirst(end + 4 + length)
        return Response(status: Int(statusLine[1]) ?? 0, headers: headers, body: body)
      }
      if !fill() { return nil }
    }
  }

  /// True when the server has closed the connection (a read returns end of file).
  func isClosedByPeer() -> Bool {
    buffer.isEmpty && !fill()
  }

  private func fill() -> Bool {
    var chunk = [UInt8](repeating: 0, count: 65536)
    let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
    guard n > 0 else { return false }
    buffer.append(contentsOf: chunk[..<n])
    return true
  }

  private func find(_ pattern: [UInt8]) -> Int? {
    guard buffer.count >= pattern.count else { return nil }
    for i in 0...(buffer.count - pattern.count) where buffer[i..<(i + pattern.count)].elementsEqual(pattern) {
      return i
    }
    return nil
  }
}
