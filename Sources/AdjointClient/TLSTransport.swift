import Dispatch
import TLS

/// HTTP/1.1 over a TLS connection that trusts a certificate authority of its own: what ``RemoteBackend`` uses for
/// `caCertificatePath` where `URLSession` cannot trust a custom authority (Linux, whose URLSession is libcurl with
/// the system's roots and no way to add one), and what `adjoint health` uses over https with a context that checks
/// no certificate. One connection per request (`Connection: close`).
package struct TLSTransport: Sendable {
  let host: String
  let port: Int
  let context: TLSClientContext
  /// The largest response accepted, in bytes.
  let maxResponseBytes = 1 << 30

  init(host: String, port: Int, caCertificatePath: String) throws(AdjointError) {
    let context: TLSClientContext
    do {
      context = try TLSClientContext(trustingCertificatesAt: caCertificatePath)
    } catch {
      throw .invalidRequest(error.description)
    }
    self.init(host: host, port: port, context: context)
  }

  /// Requests to `host:port` (a name, or an address without brackets) through `context`.
  package init(host: String, port: Int, context: TLSClientContext) {
    self.host = host
    self.port = port
    self.context = context
  }

  /// Sends one request and reads the whole answer, on a thread of its own (the I/O blocks).
  package func send(_ request: BackendRequest, headers: [(String, String)]) async throws(AdjointError)
    -> BackendResponse
  {
    let bytes = serialize(request, headers: headers)
    let result: Result<[UInt8], AdjointError> = await withCheckedContinuation { continuation in
      DispatchQueue.global().async {
        do throws(TLSError) {
          let connection = try TLSClientConnection(host: host, port: port, context: context)
          try connection.write(bytes)
          continuation.resume(returning: .success(try connection.readToEnd(limit: maxResponseBytes)))
        } catch {
          continuation.resume(returning: .failure(.connection(error.description)))
        }
      }
    }
    return try Self.parse(try result.get())
  }

  private func serialize(_ request: BackendRequest, headers: [(String, String)]) -> [UInt8] {
    let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    var head = "\(request.method) \(request.path) HTTP/1.1\r\nHost: \(authority)\r\nConnection: close\r\n"
    for (name, value) in headers { head += "\(name): \(value)\r\n" }
    if request.method == "POST" {
      head += "Content-Type: application/json\r\nContent-Length: \(request.body.count)\r\n"
    }
    head += "\r\n"
    return Array(head.utf8) + request.body
  }

  /// Parses a whole HTTP/1.1 response: status line, header fields, then a body by `Content-Length`, chunked, or up
  /// to the end of the connection.
  static func parse(_ bytes: [UInt8]) throws(AdjointError) -> BackendResponse {
    let separator: [UInt8] = [13, 10, 13, 10]
    guard let end = bytes.indices.dropLast(3).first(where: { bytes[$0..<($0 + 4)].elementsEqual(separator) }) else {
      throw .connection("the connection closed before a whole response arrived")
    }
    let lines = String(decoding: bytes[..<end], as: UTF8.self).split(
      separator: "\r\n", omittingEmptySubsequences: false)
    let statusParts = lines.first?.split(separator: " ") ?? []
    guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
      throw .invalidResponse("not an HTTP/1.1 response")
    }
    var fields: [String: String] = [:]
    for line in lines.dropFirst() {
      guard let colon = line.firstIndex(of: ":") else { continue }
      fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
    }
    var body = Array(bytes[(end + 4)...])
    if fields["transfer-encoding"]?.lowercased() == "chunked" {
      body = try dechunk(body)
    } else if let length = fields["content-length"].flatMap({ Int($0) }) {
      guard body.count >= length else { throw .connection("the connection closed inside the response body") }
      body = Array(body[..<length])
    }
    return BackendResponse(status: status, retryAfter: fields["retry-after"].flatMap { Double($0) }, body: body)
  }

  private static func dechunk(_ bytes: [UInt8]) throws(AdjointError) -> [UInt8] {
    var body: [UInt8] = []
    var index = 0
    while true {
      guard let lineEnd = bytes[index...].indices.dropLast().first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 })
      else { throw .connection("the connection closed inside a chunk") }
      let sizeText = String(decoding: bytes[index..<lineEnd], as: UTF8.self).split(separator: ";")[0]
      guard let size = Int(sizeText.trimmingCharacters(in: " \t"), radix: 16) else {
        throw .invalidResponse("a malformed chunk size")
      }
      index = lineEnd + 2
      if size == 0 { return body }
      guard index + size <= bytes.count else { throw .connection("the connection closed inside a chunk") }
      body.append(contentsOf: bytes[index..<(index + size)])
      index += size + 2
    }
  }
}

extension Substring {
  fileprivate func trimmingCharacters(in set: String) -> String {
    var result = self
    while let first = result.first, set.contains(first) { result.removeFirst() }
    while let last = result.last, set.contains(last) { result.removeLast() }
    return String(result)
  }
}
