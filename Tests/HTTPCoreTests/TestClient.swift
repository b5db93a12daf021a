// A tiny blocking HTTP/1.1 client over a real socket, for the server tests.

import Glibc
import XCTest

struct TestClientError: Error, CustomStringConvertible {
  var description: String
}

/// A parsed response as the test client saw it.
struct TestResponse {
  var status: Int
  var headers: [(name: String, value: String)]
  var body: [UInt8]

  func header(_ name: String) -> String? {
    headers.first { $0.name.lowercased() == name.lowercased() }?.value
  }

  var text: String { String(decoding: body, as: UTF8.self) }
}

/// One blocking TCP connection with a receive timeout, so a broken server fails the test instead of hanging it.
final class TestClient {
  private var fd: Int32
  private var buffer: [UInt8] = []

  init(port: Int, host: String = "127.0.0.1", timeoutSeconds: Int = 10) throws {
    let isIPv6 = host.contains(":")
    fd = socket(isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestClientError(description: "socket failed: \(errno)") }
    var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let result: Int32
    if isIPv6 {
      var address = sockaddr_in6()
      address.sin6_family = sa_family_t(AF_INET6)
      address.sin6_port = UInt16(port).bigEndian
      inet_pton(AF_INET6, host, &address.sin6_addr)
      result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
        }
      }
    } else {
      var address = sockaddr_in()
      address.sin_family = sa_family_t(AF_INET)
      address.sin_port = UInt16(port).bigEndian
      inet_pton(AF_INET, host, &address.sin_addr)
      result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
      }
    }
    guard result == 0 else {
      let error = errno
      Glibc.close(fd)
      throw TestClientError(description: "connect failed: \(error)")
    }
  }

  deinit { close() }

  func close() {
    if fd >= 0 { Glibc.close(fd) }
    fd = -1
  }

  /// Shuts down the sending side, so the server reads end-of-file.
  func shutdownWrite() { Glibc.shutdown(fd, Int32(SHUT_WR)) }

  func send(_ text: String) throws { try send(Array(text.utf8)) }

  func send(_ bytes: [UInt8]) throws {
    var offset = 0
    while offset < bytes.count {
      let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
      guard sent > 0 else { throw TestClientError(description: "send failed: \(errno)") }
      offset += sent
    }
  }

  /// Reads more bytes into the buffer; returns false at end-of-file.
  private func fill() throws -> Bool {
    var chunk = [UInt8](repeating: 0, count: 65_536)
    let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
    if count < 0 { throw TestClientError(description: "read failed (timeout?): \(errno)") }
    if count == 0 { return false }
    buffer.append(contentsOf: chunk[0..<count])
    return true
  }

  /// Reads one response; `nil` if the server closed the connection before sending one.
  func readResponse(bodyless: Bool = false) throws -> TestResponse? {
    let terminator: [UInt8] = [13, 10, 13, 10]
    var headEnd: Int?
    while true {
      if buffer.count >= 4 {
        headEnd = (0...(buffer.count - 4)).first { Array(buffer[$0..<$0 + 4]) == terminator }
      }
      if headEnd != nil { break }
      guard try fill() else {
        if buffer.isEmpty { return nil }
        throw TestClientError(description: "connection closed inside a response head")
      }
    }
    let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
    buffer.removeFirst(headEnd! + 4)
    var lines = head.components(separatedBy: "\r\n")
    let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
    guard statusLine.count >= 2, statusLine[0] == "HTTP/1.1", let status = Int(statusLine[1]) else {
      throw TestClientError(description: "bad status line in \(head)")
    }
    let headers = lines.map { line -> (name: String, value: String) in
      let colon = line.firstIndex(of: ":")!
      return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
    }
    var response = TestResponse(status: status, headers: headers, body: [])
    if status == 100 { return response }
    let length = bodyless ? 0 : Int(response.header("Content-Length") ?? "0")!
    while buffer.count < length {
      guard try fill() else { throw TestClientError(description: "connection closed inside a body") }
    }
    response.body = Array(buffer[0..<length])
    buffer.removeFirst(length)
    return response
  }

  /// Reads until the server closes the connection and returns every byte not yet consumed; throws on a time-out.
  func readUntilClosed() throws -> [UInt8] {
    while try fill() {}
    defer { buffer = [] }
    return buffer
  }

  /// Whether the server has closed the connection (reads end-of-file with nothing buffered).
  func isClosedByServer() throws -> Bool {
    buffer.isEmpty ? try !fill() : false
  }
}
