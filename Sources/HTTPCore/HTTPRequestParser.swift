// An incremental HTTP/1.1 request parser (RFC 9112), independent of any I/O.
//
// Bytes are appended with `feed`, in pieces of any size; `next()` returns each complete request in order. The
// header section is scanned once, byte by byte, as it arrives (so drip-fed input costs linear time) and is parsed
// only when its final empty line is present. Framing is strict, because a lenient parser is how requests get
// smuggled: only CRLF ends a line, obs-fold is refused, and Content-Length and Transfer-Encoding must agree
// (RFC 9112 §6.3, §11.2).

/// Limits the parser enforces. Each limit is inclusive: a value equal to it is accepted.
public struct HTTPParserLimits: Hashable, Sendable {
  /// The largest header section in bytes, from the first byte of the request line through the empty line that ends
  /// the header fields (the same limit applies to a chunked body's trailer section). Default 16 KiB (16,384).
  /// Over it: ``HTTPParserError/headerSectionTooLarge`` (431).
  public var maxHeaderSectionBytes: Int
  /// The most header fields in one request. Default 100. Over it: ``HTTPParserError/tooManyHeaderFields`` (431).
  public var maxHeaderFields: Int
  /// The largest body in bytes, after de-chunking. Default 64 MiB (67,108,864).
  /// Over it: ``HTTPParserError/bodyTooLarge`` (413), reported as soon as the declared length shows it.
  public var maxBodyBytes: Int

  /// Creates limits; every argument defaults to the documented default.
  public init(maxHeaderSectionBytes: Int = 16_384, maxHeaderFields: Int = 100, maxBodyBytes: Int = 67_108_864) {
    self.maxHeaderSectionBytes = maxHeaderSectionBytes
    self.maxHeaderFields = maxHeaderFields
    self.maxBodyBytes = maxBodyBytes
  }
}

/// An incremental HTTP/1.1 request parser.
///
/// Feed it bytes as they arrive, then call ``next()`` until it returns `nil`:
///
/// ```swift
/// var parser = HTTPRequestParser()
/// parser.feed(Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
/// while let request = try parser.next() {
///   print(request.method, request.target)
/// }
/// ```
///
/// Bytes after a complete request (pipelining) stay buffered until the next call of ``next()``. After a thrown
/// ``HTTPParserError`` the parser is failed: every later ``next()`` throws the same error, and the connection must
/// be answered with the error's status and closed.
///
/// To look at a request before its body is read (to refuse it early), call ``nextHead()`` first: it returns the
/// head once the header section is complete, and ``next()`` then returns the whole request once its body is in.
public struct HTTPRequestParser: Sendable {
  /// The limits in force.
  public let limits: HTTPParserLimits
  /// Whether each request is given exactly one valid `X-Request-Id` field (see ``HTTPRequestID``).
  public let assignsRequestIDs: Bool

  private enum State: Sendable {
    case head
    /// The head of a request without a body was returned by ``nextHead()``; ``next()`` returns the request.
    case headOnly
    case fixedBody(length: Int)
    case chunkSize
    case chunkData(remaining: Int)
    case chunkDataEnd
    case trailers
    case failed(HTTPParserError)
  }

  /// The request line and header fields of the message whose body is being read.
  private struct Head: Sendable {
    var method: HTTPMethod
    var target: String
    var version: HTTPVersion
    var headers: HTTPHeaders
    var requestID: String?
  }

  private enum Framing {
    case none
    case length(Int)
    case chunked
  }

  /// The longest chunk-size line (size plus extensions) accepted.
  private static let maxChunkLineBytes = 4096

  private var buffer: [UInt8] = []
  /// The first byte not yet consumed.
  private var readIndex = 0
  private var state: State = .head
  // Scanner of the header (or trailer) section: where to continue, where the current line starts, and whether the
  // last byte scanned was a CR.
  private var scanIndex = 0
  private var lineStart = 0
  private var sawCR = false
  private var head: Head?
  /// The id of the last request completed, for ``currentRequestID`` once ``head`` is cleared.
  private var lastRequestID: String?
  private var body: [UInt8] = []
  /// A large body with a declared length (see ``prepareForLargeBody(_:)``), allocated at its full length; the first
  /// `largeFilled` bytes have arrived.
  private var largeBody: [UInt8] = []
  private var largeFilled = 0
  private var continuePending = false

  /// Creates a parser.
  /// - Parameters:
  ///   - limits: The limits to enforce; by default the documented defaults of ``HTTPParserLimits``.
  ///   - assignsRequestIDs: Whether to give each request exactly one `X-Request-Id` field, as it is parsed: the
  ///     client's first one when it is valid (``HTTPRequestID/isValid(_:)``), else a generated one
  ///     (``HTTPRequestID/generate()``). Default `false`: the fields stay as sent.
  public init(limits: HTTPParserLimits = HTTPParserLimits(), assignsRequestIDs: Bool = false) {
    self.limits = limits
    self.assignsRequestIDs = assignsRequestIDs
  }

  /// The `X-Request-Id` of the request whose head was parsed last (only with ``assignsRequestIDs``); `nil` before the
  /// first head and after a failure in a header section.
  public var currentRequestID: String? { head?.requestID ?? lastRequestID }

  /// Appends received bytes.
  public mutating func feed(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { feed($0) }
  }

  /// Appends received bytes.
  public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
    var bytes = bytes
    if largeFilled < largeBody.count {
      // The next bytes of a large body go straight into it; any after it start the next request.
      let k = min(bytes.count, largeBody.count - largeFilled)
      largeBody.withUnsafeMutableBytes { raw in
        UnsafeMutableRawBufferPointer(rebasing: raw[largeFilled..<largeFilled + k]).copyMemory(
          from: UnsafeRawBufferPointer(rebasing: bytes[0..<k]))
      }
      largeFilled += k
      bytes = UnsafeRawBufferPointer(rebasing: bytes[k...])
      if bytes.isEmpty { return }
    }
    compact()
    buffer.append(contentsOf: bytes)
  }

  /// Whether the rest of a large body (of at least 64 KiB, with a declared length) is awaited: the server may
  /// then read it in place with ``receiveBody(_:)`` rather than through ``feed(_:)``, which copies it.
  public var receivesBodyInPlace: Bool { largeFilled < largeBody.count }

  /// Lets `read` write the next bytes of a large body in place (see ``receivesBodyInPlace``): it is given the room
  /// left, and returns how many bytes it wrote there (0 when it wrote none).
  public mutating func receiveBody(_ read: (UnsafeMutableRawBufferPointer) -> Int) {
    guard largeFilled < largeBody.count else { return }
    let written = largeBody.withUnsafeMutableBytes { raw in
      read(UnsafeMutableRawBufferPointer(rebasing: raw[largeFilled...]))
    }
    precondition(written >= 0 && written <= largeBody.count - largeFilled, "receiveBody: more bytes than the room")
    largeFilled += written
  }

  /// The number of bytes received and not yet consumed by a returned request.
  public var bufferedByteCount: Int { buffer.count - readIndex + largeFilled }

  /// Whether the parser sits between messages with nothing buffered (a connection in this state may be closed
  /// without cutting a request in half).
  public var isIdle: Bool {
    if case .head = state, readIndex == buffer.count { return true }
    return false
  }

  /// Whether the header section of a request has been parsed and its body is arriving.
  public var isReadingBody: Bool {
    switch state {
    case .fixedBody, .chunkSize, .chunkData, .chunkDataEnd, .trailers: return true
    case .head, .headOnly, .failed: return false
    }
  }

  /// Returns `true` once for a request that carries `Expect: 100-continue` (HTTP/1.1) whose header section has been
  /// parsed but whose body has not fully arrived: the server should now send `100 Continue`.
  public mutating func takeContinueRequest() -> Bool {
    defer { continuePending = false }
    return continuePending
  }

  /// Parses the header section of the next request if it has fully arrived and returns its head, before any byte of
  /// its body is looked at. Returns `nil` if the header section is incomplete, or if the head of the current request
  /// was already returned (its body is being read). ``next()`` then returns the complete request as usual; the
  /// framing rules and limits are the same whether or not this is called first.
  /// - Throws: ``HTTPParserError`` when the header section is malformed or over a limit (a declared body over
  ///   ``HTTPParserLimits/maxBodyBytes`` included); the parser then stays failed.
  public mutating func nextHead() throws(HTTPParserError) -> HTTPRequestHead? {
    do throws(HTTPParserError) {
      switch state {
      case .failed(let error): throw error
      case .head: break
      default: return nil
      }
      guard let end = try scanSection(skippingLeadingEmptyLines: true) else { return nil }
      let parsed = try startMessage(end: end)
      head = parsed
      if case .fixedBody(0) = state { state = .headOnly }
      return HTTPRequestHead(
        method: parsed.method, target: parsed.target, version: parsed.version, headers: parsed.headers)
    } catch {
      state = .failed(error)
      continuePending = false
      throw error
    }
  }

  /// Parses buffered bytes and returns the next complete request, or `nil` if more bytes are needed.
  /// - Throws: ``HTTPParserError`` when the input is malformed or over a limit; the parser then stays failed.
  public mutating func next() throws(HTTPParserError) -> HTTPRequest? {
    do {
      return try advance()
    } catch {
      state = .failed(error)
      continuePending = false
      throw error
    }
  }

  private mutating func advance() throws(HTTPParserError) -> HTTPRequest? {
    while true {
      switch state {
      case .failed(let error):
        throw error

      case .head:
        guard let end = try scanSection(skippingLeadingEmptyLines: true) else { return nil }
        let parsed = try startMessage(end: end)
        if case .fixedBody(0) = state { return finish(parsed) }
        head = parsed

      case .headOnly:
        return finish(head.take()!)

      case .fixedBody(let length):
        if length >= Self.largeBody {
          // Read into a buffer of its own (see prepareForLargeBody): handed over, not copied.
          guard largeFilled == length else { return nil }
          swap(&body, &largeBody)
          largeFilled = 0
        } else {
          guard buffer.count - readIndex >= length else { return nil }
          body = Array(buffer[readIndex..<readIndex + length])
          readIndex += length
        }
        return finish(head.take()!)

      case .chunkSize:
        guard let size = try parseChunkSizeLine() else { return nil }
        if size == 0 {
          state = .trailers
          resetScanner()
        } else {
          state = .chunkData(remaining: size)
        }

      case .chunkData(let remaining):
        let available = min(remaining, buffer.count - readIndex)
        guard available > 0 else { return nil }
        body.append(contentsOf: buffer[readIndex..<readIndex + available])
        readIndex += available
        state = remaining == available ? .chunkDataEnd : .chunkData(remaining: remaining - available)

      case .chunkDataEnd:
        guard buffer.count - readIndex >= 2 else { return nil }
        guard buffer[readIndex] == ASCII.cr && buffer[readIndex + 1] == ASCII.lf else { throw .invalidChunk }
        readIndex += 2
        state = .chunkSize

      case .trailers:
        guard let end = try scanSection(skippingLeadingEmptyLines: false) else { return nil }
        try validateTrailers(end: end)
        readIndex = end
        return finish(head.take()!)
      }
    }
  }

  /// Parses the complete header section ending at `end`, consumes it, and sets up the reading of the body: the state
  /// becomes `.fixedBody(length: 0)` for a message without a body. The caller keeps the head in ``head`` while the
  /// body is read.
  private mutating func startMessage(end: Int) throws(HTTPParserError) -> Head {
    lastRequestID = nil
    let (parsed, framing, expectsContinue) = try parseHead(end: end)
    readIndex = end
    switch framing {
    case .none: state = .fixedBody(length: 0)
    case .length(let length):
      state = .fixedBody(length: length)
      if length >= Self.largeBody { prepareForLargeBody(length) }
    case .chunked: state = .chunkSize
    }
    continuePending = expectsContinue
    return parsed
  }

  /// Bodies of at least this many bytes are read into a buffer of their own size.
  static let largeBody = 64 << 10

  /// Before a large body with a declared length: allocates it at its full length (address space only: its pages
  /// are touched as bytes arrive, so a body declared but never sent costs no memory), and moves into it what of it
  /// the buffer already holds. The rest goes straight into it, from ``feed(_:)`` or read in place
  /// (``receiveBody(_:)``), and it becomes the request's body without being copied.
  private mutating func prepareForLargeBody(_ length: Int) {
    // Bytes (UInt8) need no initialization before they are written; none is read before it has arrived.
    largeBody = [UInt8](unsafeUninitializedCapacity: length) { _, initialized in initialized = length }
    let k = min(length, buffer.count - readIndex)
    largeBody.withUnsafeMutableBytes { raw in
      buffer.withUnsafeBytes { source in
        UnsafeMutableRawBufferPointer(rebasing: raw[0..<k]).copyMemory(
          from: UnsafeRawBufferPointer(rebasing: source[readIndex..<readIndex + k]))
      }
    }
    largeFilled = k
    readIndex += k
    resetScanner()
  }

  /// Completes the current message and makes the parser ready for the next one.
  private mutating func finish(_ head: consuming Head) -> HTTPRequest {
    let request = HTTPRequest(
      method: head.method, target: head.target, version: head.version, headers: head.headers, body: body)
    lastRequestID = head.requestID
    self.head = nil
    body = []
    state = .head
    continuePending = false
    resetScanner()
    return request
  }

  private mutating func resetScanner() {
    scanIndex = readIndex
    lineStart = readIndex
    sawCR = false
  }

  /// Drops consumed bytes before appending more.
  private mutating func compact() {
    guard readIndex > 0 else { return }
    if readIndex == buffer.count {
      if buffer.capacity > 1 << 20 { buffer = [] } else { buffer.removeAll(keepingCapacity: true) }
    } else if readIndex >= 4096 && readIndex * 2 >= buffer.count {
      buffer.removeSubrange(0..<readIndex)
    } else {
      return
    }
    scanIndex -= readIndex
    lineStart -= readIndex
    readIndex = 0
  }

  // MARK: - Header and trailer sections

  /// Scans new bytes for the empty line that ends a header (or trailer) section, checking line endings and the size
  /// limit on the way. Returns the index just past that empty line, or `nil` if it has not arrived yet.
  private mutating func scanSection(skippingLeadingEmptyLines: Bool) throws(HTTPParserError) -> Int? {
    var index = scanIndex
    var lineStart = self.lineStart
    var sawCR = self.sawCR
    var sectionStart = readIndex
    let limit = limits.maxHeaderSectionBytes
    let end: Int? = try buffer.withUnsafeBufferPointer { (bytes) throws(HTTPParserError) -> Int? in
      while index < bytes.count {
        let byte = bytes[index]
        index += 1
        if index - sectionStart > limit && !(skippingLeadingEmptyLines && lineStart == sectionStart && sawCR) {
          throw .headerSectionTooLarge
        }
        if sawCR {
          guard byte == ASCII.lf else { throw .bareCarriageReturn }
          sawCR = false
          if index - 2 == lineStart {
            // An empty line: the end of the section, or (RFC 9112 §2.2) an empty line before a request line.
            if skippingLeadingEmptyLines && lineStart == sectionStart {
              sectionStart = index
              lineStart = index
              continue
            }
            return index
          }
          lineStart = index
        } else if byte == ASCII.cr {
          sawCR = true
        } else if byte == ASCII.lf {
          throw .bareLineFeed
        }
      }
      return nil
    }
    scanIndex = index
    self.lineStart = lineStart
    self.sawCR = sawCR
    readIndex = sectionStart
    return end
  }

  /// Parses the complete header section `buffer[readIndex..<end]`.
  private func parseHead(end: Int) throws(HTTPParserError) -> (Head, Framing, expectsContinue: Bool) {
    let limits = self.limits
    let assignsRequestIDs = self.assignsRequestIDs
    return try buffer.withUnsafeBufferPointer { (bytes) throws(HTTPParserError) -> (Head, Framing, Bool) in
      var lineStart = readIndex
      var lineEnd = HTTPRequestParser.endOfLine(bytes, from: lineStart)
      let (method, target, version) = try HTTPRequestParser.parseRequestLine(bytes, lineStart, lineEnd)
      lineStart = lineEnd + 2

      var headers: [HTTPField] = []
      headers.reserveCapacity(8)  // most requests carry a handful: one allocation instead of several
      var contentLength: Int?
      var sawTransferEncoding = false
      var chunkedCount = 0
      var chunkedIsLast = false
      var unknownCoding = false
      var hostCount = 0
      var expectsContinue = false
      // The first X-Request-Id field's index in `headers`, and how many there are.
      var requestIDIndex: Int?
      var requestIDCount = 0

      while lineStart < end - 2 {
        lineEnd = HTTPRequestParser.endOfLine(bytes, from: lineStart)
        let (name, value) = try HTTPRequestParser.parseField(bytes, lineStart, lineEnd)
        lineStart = lineEnd + 2
        guard headers.count < limits.maxHeaderFields else { throw .tooManyHeaderFields }

        let nameBytes = UnsafeBufferPointer(rebasing: bytes[name])
        let valueBytes = UnsafeBufferPointer(rebasing: bytes[value])
        headers.append(
          HTTPField(
            name: String(decoding: nameBytes, as: UTF8.self), value: String(decoding: valueBytes, as: UTF8.self))
        )

        switch nameBytes.count {
        case 4 where ASCII.equalsLowercase(nameBytes, "host"):
          hostCount += 1
        case 12 where ASCII.equalsLowercase(nameBytes, "x-request-id"):
          if requestIDIndex == nil { requestIDIndex = headers.count - 1 }
          requestIDCount += 1
        case 6 where ASCII.equalsLowercase(nameBytes, "expect"):
          if version.minor >= 1 {
            guard ASCII.equalsIgnoringCase(valueBytes, "100-continue".utf8) else { throw .unsupportedExpectation }
            expectsContinue = true
          }
        case 14 where ASCII.equalsLowercase(nameBytes, "content-length"):
          for element in valueBytes.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
            let length = try HTTPRequestParser.parseContentLength(ASCII.trimmed(element), limit: limits.maxBodyBytes)
            if let previous = contentLength, previous != length { throw .conflictingContentLength }
            contentLength = length
          }
        case 17 where ASCII.equalsLowercase(nameBytes, "transfer-encoding"):
          sawTransferEncoding = true
          for element in valueBytes.split(separator: UInt8(ascii: ",")) {
            let coding = ASCII.trimmed(element)
            if coding.isEmpty { continue }
            if ASCII.equalsIgnoringCase(coding, "chunked".utf8) {
              chunkedCount += 1
              chunkedIsLast = true
            } else {
              unknownCoding = true
              chunkedIsLast = false
            }
          }
        default:
          break
        }
      }

      let framing: Framing
      if sawTransferEncoding {
        if contentLength != nil { throw .contentLengthWithTransferEncoding }
        if version.minor < 1 || chunkedCount != 1 || !chunkedIsLast { throw .invalidTransferEncoding }
        if unknownCoding { throw .unsupportedTransferEncoding }
        framing = .chunked
      } else if let length = contentLength, length > 0 {
        if length > limits.maxBodyBytes { throw .bodyTooLarge }
        framing = .length(length)
      } else {
        framing = .none
      }
      if hostCount > 1 || (hostCount == 0 && version.minor >= 1) { throw .invalidHost }

      var requestID: String?
      if assignsRequestIDs {
        requestID = HTTPRequestID.assign(&headers, first: requestIDIndex, count: requestIDCount)
      }
      let hasBody: Bool
      if case .none = framing { hasBody = false } else { hasBody = true }
      let head = Head(
        method: method, target: target, version: version, headers: HTTPHeaders(headers), requestID: requestID)
      return (head, framing, expectsContinue && hasBody)
    }
  }

  /// The index of the CR that ends the line starting at `start` (the scanner guarantees CRLF endings).
  private static func endOfLine(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
    var index = start
    while bytes[index] != ASCII.cr { index += 1 }
    return index
  }

  /// `method SP request-target SP HTTP-version` (RFC 9112 §3).
  private static func parseRequestLine(
    _ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int
  ) throws(HTTPParserError) -> (HTTPMethod, String, HTTPVersion) {
    var index = start
    while index < end && ASCII.isTokenChar(bytes[index]) { index += 1 }
    guard index > start && index < end && bytes[index] == ASCII.space else { throw .invalidRequestLine }
    let method = makeMethod(UnsafeBufferPointer(rebasing: bytes[start..<index]))

    index += 1
    let targetStart = index
    while index < end && bytes[index] > 0x20 && bytes[index] < 0x7F { index += 1 }
    guard index > targetStart && index < end && bytes[index] == ASCII.space else { throw .invalidRequestLine }
    let target = String(decoding: UnsafeBufferPointer(rebasing: bytes[targetStart..<index]), as: UTF8.self)

    index += 1
    guard end - index == 8,
      bytes[index] == UInt8(ascii: "H"), bytes[index + 1] == UInt8(ascii: "T"), bytes[index + 2] == UInt8(ascii: "T"),
      bytes[index + 3] == UInt8(ascii: "P"), bytes[index + 4] == UInt8(ascii: "/"),
      bytes[index + 6] == UInt8(ascii: ".")
    else { throw .invalidRequestLine }
    let major = bytes[index + 5] &- UInt8(ascii: "0")
    let minor = bytes[index + 7] &- UInt8(ascii: "0")
    guard major < 10 && minor < 10 else { throw .invalidRequestLine }
    guard major == 1 else { throw .unsupportedVersion }
    return (method, target, HTTPVersion(major: 1, minor: Int(minor)))
  }

  private static func makeMethod(_ bytes: UnsafeBufferPointer<UInt8>) -> HTTPMethod {
    if bytes.elementsEqual("GET".utf8) { return .get }
    if bytes.elementsEqual("POST".utf8) { return .post }
    if bytes.elementsEqual("HEAD".utf8) { return .head }
    if bytes.elementsEqual("DELETE".utf8) { return .delete }
    if bytes.elementsEqual("PUT".utf8) { return .put }
    return HTTPMethod(String(decoding: bytes, as: UTF8.self))
  }

  /// `field-name ":" OWS field-value OWS` (RFC 9112 §5); returns the ranges of name and value.
  private static func parseField(
    _ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int
  ) throws(HTTPParserError) -> (name: Range<Int>, value: Range<Int>) {
    if bytes[start] == ASCII.space || bytes[start] == ASCII.tab { throw .obsoleteLineFolding }
    var index = start
    while index < end && ASCII.isTokenChar(bytes[index]) { index += 1 }
    guard index > start && index < end && bytes[index] == ASCII.colon else { throw .invalidHeaderField }
    let name = start..<index
    index += 1
    while index < end && (bytes[index] == ASCII.space || bytes[index] == ASCII.tab) { index += 1 }
    var valueEnd = end
    while valueEnd > index && (bytes[valueEnd - 1] == ASCII.space || bytes[valueEnd - 1] == ASCII.tab) {
      valueEnd -= 1
    }
    for position in index..<valueEnd where !ASCII.isFieldValueChar(bytes[position]) { throw .invalidHeaderField }
    return (name, index..<valueEnd)
  }

  /// `1*DIGIT`. A number over `limit` is reported as too large rather than parsed to the end.
  private static func parseContentLength(
    _ digits: Slice<UnsafeBufferPointer<UInt8>>, limit: Int
  ) throws(HTTPParserError) -> Int {
    guard !digits.isEmpty else { throw .invalidContentLength }
    var value = 0
    for byte in digits {
      let digit = byte &- UInt8(ascii: "0")
      guard digit < 10 else { throw .invalidContentLength }
      value = value * 10 + Int(digit)
      if value > limit {
        // Still reject non-digits further on as malformed, but do not overflow.
        guard digits.allSatisfy({ $0 &- UInt8(ascii: "0") < 10 }) else { throw .invalidContentLength }
        throw .bodyTooLarge
      }
    }
    return value
  }

  // MARK: - Chunked bodies

  /// Parses `chunk-size [ chunk-ext ] CRLF` at `readIndex` and consumes it; `nil` if the line is incomplete.
  private mutating func parseChunkSizeLine() throws(HTTPParserError) -> Int? {
    let start = readIndex
    let maxBody = limits.maxBodyBytes - body.count
    let result: (size: Int, next: Int)? = try buffer.withUnsafeBufferPointer {
      (bytes) throws(HTTPParserError) -> (Int, Int)? in
      let searchEnd = min(bytes.count, start + HTTPRequestParser.maxChunkLineBytes)
      var lineEnd = start
      while lineEnd < searchEnd && bytes[lineEnd] != ASCII.cr && bytes[lineEnd] != ASCII.lf { lineEnd += 1 }
      if lineEnd == searchEnd {
        if searchEnd - start >= HTTPRequestParser.maxChunkLineBytes { throw .invalidChunk }
        return nil
      }
      guard bytes[lineEnd] == ASCII.cr else { throw .invalidChunk }
      guard lineEnd + 1 < bytes.count else { return nil }
      guard bytes[lineEnd + 1] == ASCII.lf else { throw .invalidChunk }

      var index = start
      var size = 0
      var tooLarge = false
      while index < lineEnd, let digit = HTTPRequestParser.hexValue(bytes[index]) {
        if !tooLarge {
          size = size * 16 + digit
          if size > maxBody { tooLarge = true }
        }
        index += 1
      }
      guard index > start else { throw .invalidChunk }
      while index < lineEnd && (bytes[index] == ASCII.space || bytes[index] == ASCII.tab) { index += 1 }
      if index < lineEnd {
        guard bytes[index] == UInt8(ascii: ";") else { throw .invalidChunk }
        for position in index..<lineEnd where !ASCII.isFieldValueChar(bytes[position]) { throw .invalidChunk }
      }
      if tooLarge { throw .bodyTooLarge }
      return (size, lineEnd + 2)
    }
    guard let result else { return nil }
    readIndex = result.next
    return result.size
  }

  private static func hexValue(_ byte: UInt8) -> Int? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
    default: nil
    }
  }

  /// Checks that each trailer line is a well-formed field; trailer fields are then discarded.
  private func validateTrailers(end: Int) throws(HTTPParserError) {
    try buffer.withUnsafeBufferPointer { (bytes) throws(HTTPParserError) in
      var lineStart = readIndex
      while lineStart < end - 2 {
        let lineEnd = HTTPRequestParser.endOfLine(bytes, from: lineStart)
        _ = try HTTPRequestParser.parseField(bytes, lineStart, lineEnd)
        lineStart = lineEnd + 2
      }
    }
  }
}
