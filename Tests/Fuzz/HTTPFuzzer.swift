// The `http` fuzz target: bytes → `HTTPRequestParser`, fed whole, one byte at a time and seven bytes at a time,
// draining `next()` after each piece until it returns nil or throws.
//
// Built and run by scripts/fuzz. Besides traps, memory errors, leaks and hangs, a difference between the chunkings
// is a bug: the parser is incremental, so how the bytes arrive must not change the requests it returns or the error
// it ends with.
import HTTPCore

/// Small limits, so that short inputs reach the limit checks.
private let smallLimits = HTTPParserLimits(maxHeaderSectionBytes: 300, maxHeaderFields: 6, maxBodyBytes: 200)

/// What a parser made of a whole input: the requests it returned, then the error it threw, if any.
private struct Outcome: Equatable {
  var requests: [HTTPRequest] = []
  var error: HTTPParserError?
}

private func parse(_ bytes: UnsafeBufferPointer<UInt8>, pieces: Int, limits: HTTPParserLimits) -> Outcome {
  var parser = HTTPRequestParser(limits: limits)
  var outcome = Outcome()
  var start = 0
  repeat {
    let end = min(start + pieces, bytes.count)
    let piece = UnsafeBufferPointer(rebasing: bytes[start..<end])
    // Both overloads of `feed`: raw bytes for the whole input and single bytes, an array for 7-byte pieces.
    if pieces == 7 { parser.feed(Array(piece)) } else { parser.feed(UnsafeRawBufferPointer(piece)) }
    start = end
    do {
      while let request = try parser.next() { outcome.requests.append(request) }
    } catch {
      outcome.error = error
      _ = parser.takeContinueRequest()
      return outcome
    }
    _ = parser.takeContinueRequest()
  } while start < bytes.count
  _ = parser.bufferedByteCount
  _ = parser.isIdle
  return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = UnsafeBufferPointer(start: data, count: size)
  let whole = parse(bytes, pieces: max(size, 1), limits: smallLimits)
  for pieces in [1, 7] {
    let chunked = parse(bytes, pieces: pieces, limits: smallLimits)
    if chunked != whole {
      fatalError("fed \(pieces) bytes at a time, the parser returned \(chunked); fed whole, \(whole)")
    }
  }
  // The production limits, whole.
  _ = parse(bytes, pieces: max(size, 1), limits: HTTPParserLimits())
  return 0
}
