import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// What one field of an answer must be.
enum TableCheck<Value: Equatable & Sendable>: Sendable {
  /// The field must not be there.
  case absent
  /// The field must be there, with any value (API.md requires it but does not fix its value).
  case present
  /// The field must be exactly this.
  case exactly(Value)
  /// A string field that must begin with this (a pointer that API.md fixes only down to a node).
  case prefix(Value)
  /// Not checked: API.md leaves it open (only in ``BadRequestTableTests/knownDeviations``).
  case unspecified
}

/// What the server must answer to one row of the table.
struct TableExpectation: Sendable {
  var status: Int
  /// `errors[0].pointer`; `.absent` means `errors` must be empty.
  var pointer: TableCheck<String> = .absent
  /// `errors[0].position`.
  var position: TableCheck<Int> = .absent
  /// `errors[0].message`.
  var message: TableCheck<String> = .absent
  /// The problem's `detail`.
  var detail: TableCheck<String> = .unspecified
  /// The `Allow` header.
  var allow: TableCheck<String> = .absent
  /// The whole response body, for the rows that must succeed.
  var body: TableCheck<String> = .unspecified

  /// Whether every field is fixed (no `.unspecified`, `.present` or prefix), as the rows that conform must be.
  var isExact: Bool {
    func exact<V>(_ check: TableCheck<V>) -> Bool {
      switch check {
      case .present, .unspecified, .prefix: return false
      case .absent, .exactly: return true
      }
    }
    if status < 400 { return exact(body) && exact(allow) }
    return exact(pointer) && exact(position) && exact(message) && exact(detail) && exact(allow)
  }
}

/// One request of the table and the answer API.md requires.
struct TableRow: Sendable {
  /// A short name, printed on failure.
  var label: String
  var method = "POST"
  var path: String
  var body: [UInt8]
  /// The `Content-Type` header, or nil for none.
  var contentType: String? = "application/json"
  /// More headers.
  var headers: [Header] = []
  var expected: TableExpectation

  struct Header: Sendable {
    var name: String
    var value: String
  }
}

/// One HTTP response, read over a fresh connection that the client closes after it.
struct TableResponse {
  var status: Int
  /// Header names lowercased.
  var headers: [String: String]
  var body: String

  var json: [String: Any]? {
    try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
  }
}

/// Sends one request with `Connection: close` over a real socket and reads the answer to the end of the stream.
///
/// Unlike ``RawConnection`` it sends arbitrary bytes (invalid UTF-8 bodies) and arbitrary headers.
func sendTableRow(port: Int, _ row: TableRow) -> TableResponse? {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  guard fd >= 0 else { return nil }
  defer { close(fd) }
  var timeout = timeval(tv_sec: 10, tv_usec: 0)
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
  var address = sockaddr_in()
  address.sin_family = sa_family_t(AF_INET)
  address.sin_port = in_port_t(UInt16(port).bigEndian)
  address.sin_addr.s_addr = inet_addr("127.0.0.1")
  let connected = withUnsafePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
      connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
    }
  }
  guard connected == 0 else { return nil }

  var head = "\(row.method) \(row.path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
  if let contentType = row.contentType { head += "Content-Type: \(contentType)\r\n" }
  for header in row.headers { head += "\(header.name): \(header.value)\r\n" }
  head += "Content-Length: \(row.body.count)\r\n\r\n"
  let request = Array(head.utf8) + row.body
  var sent = 0
  while sent < request.count {
    let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    if n <= 0 { return nil }
    sent += n
  }

  var received: [UInt8] = []
  var chunk = [UInt8](repeating: 0, count: 65536)
  while true {
    let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
    if n <= 0 { break }
    received.append(contentsOf: chunk[..<n])
  }
  guard
    let end = received.indices.dropLast(3).first(where: { received[$0..<($0 + 4)].elementsEqual([13, 10, 13, 10]) })
  else { return nil }
  var lines = String(decoding: received[..<end], as: UTF8.self).components(separatedBy: "\r\n")
  let statusLine = lines.removeFirst().split(separator: " ")
  guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
  var headers: [String: String] = [:]
  for line in lines {
    guard let colon = line.firstIndex(of: ":") else { continue }
    headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
  }
  var body = received[(end + 4)...]
  if let length = headers["content-length"].flatMap({ Int($0) }), length <= body.count {
    body = body.prefix(length)
  }
  return TableResponse(status: status, headers: headers, body: String(decoding: body, as: UTF8.self))
}

/// The ways `response` differs from `expected`; empty when it conforms.
func tableMismatches(_ response: TableResponse, _ expected: TableExpectation) -> [String] {
  var found: [String] = []
  if response.status != expected.status { found.append("status \(response.status), expected \(expected.status)") }
  check("Allow", response.headers["allow"], expected.allow, &found)
  if case .exactly(let body) = expected.body, response.body != body { found.append("the body differs") }
  guard expected.status >= 400 else { return found }

  if response.headers["content-type"] != "application/problem+json" {
    found.append("content-type \(response.headers["content-type"] ?? "none"), expected application/problem+json")
  }
  guard let json = response.json else {
    found.append("the body is not a JSON object")
    return found
  }
  if (json["status"] as? Int) != expected.status { found.append("\"status\" is not \(expected.status)") }
  if !(json["type"] is String) || !(json["title"] is String) { found.append("\"type\" or \"title\" is missing") }
  check("detail", json["detail"] as? String, expected.detail, &found)
  guard let errors = json["errors"] as? [[String: Any]] else {
    found.append("\"errors\" is not an array of objects")
    return found
  }
  let entry = errors.first
  if case .absent = expected.pointer {
    if !errors.isEmpty { found.append("\"errors\" is not empty") }
    return found
  }
  if case .unspecified = expected.pointer, entry == nil { return found }
  check("errors[0].pointer", entry?["pointer"] as? String, expected.pointer, &found)
  check("errors[0].message", entry?["message"] as? String, expected.message, &found)
  let position = entry?["position"] as? Int
  switch expected.position {
  case .absent where entry?["position"] != nil: found.append("errors[0].position is \(position ?? -1), expected none")
  case .present where position == nil: found.append("errors[0].position is missing")
  case .exactly(let p) where position != p:
    found.append("errors[0].position is \(position.map(String.init) ?? "none"), expected \(p)")
  default: break
  }
  return found
}

private func check(_ name: String, _ actual: String?, _ expected: TableCheck<String>, _ found: inout [String]) {
  switch expected {
  case .unspecified: return
  case .absent:
    if let actual { found.append("\(name) is \(actual.debugDescription), expected none") }
  case .present:
    if actual == nil { found.append("\(name) is missing") }
  case .exactly(let value):
    if actual != value {
      found.append("\(name) is \(actual?.debugDescription ?? "missing"), expected \(value.debugDescription)")
    }
  case .prefix(let value):
    if !(actual?.hasPrefix(value) ?? false) {
      found.append(
        "\(name) is \(actual?.debugDescription ?? "missing"), expected one beginning \(value.debugDescription)")
    }
  }
}
