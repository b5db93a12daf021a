import AdjointExpressions
import AdjointJSON

/// An error that the service answers with an `application/problem+json` body (RFC 9457).
///
/// Every failure of a request becomes one of these in exactly one place, ``Problem/init(_:)``-style factories
/// below, and is written by ``Problem/body``.
package struct Problem: Error, Sendable {
  /// One located mistake: a JSON Pointer into the request, and for `expr` the offending character's offset.
  package struct Entry: Sendable, Equatable {
    package var pointer: String
    package var message: String
    package var position: Int?
  }

  package var status: Int
  package var type: String
  package var title: String
  package var detail: String
  package var errors: [Entry]
  package var headers: [(String, String)] = []

  package init(
    status: Int, type: String, title: String, detail: String, errors: [Entry], headers: [(String, String)] = []
  ) {
    self.status = status
    self.type = type
    self.title = title
    self.detail = detail
    self.errors = errors
    self.headers = headers
  }

  package static func badRequest(_ detail: String, pointer: String) -> Problem {
    Problem(
      status: 400, type: "https://adjoint.dev/problems/bad-request", title: "Bad request", detail: detail,
      errors: [Entry(pointer: pointer, message: detail)])
  }

  package static func unprocessable(_ detail: String, pointer: String) -> Problem {
    Problem(
      status: 422, type: "https://adjoint.dev/problems/unprocessable", title: "Unprocessable request", detail: detail,
      errors: [Entry(pointer: pointer, message: detail)])
  }

  package static func tooLarge(_ detail: String, pointer: String) -> Problem {
    Problem(
      status: 413, type: "https://adjoint.dev/problems/too-large", title: "Request too large", detail: detail,
      errors: [Entry(pointer: pointer, message: detail)])
  }

  package static func unsupportedMediaType(_ detail: String) -> Problem {
    Problem(
      status: 415, type: "https://adjoint.dev/problems/unsupported-media-type", title: "Unsupported media type",
      detail: detail, errors: [])
  }

  package static func notFound(_ path: String) -> Problem {
    Problem(
      status: 404, type: "https://adjoint.dev/problems/not-found", title: "Not found",
      detail: "there is nothing at \(path)", errors: [])
  }

  package static func methodNotAllowed(_ method: String, allowed: [String]) -> Problem {
    Problem(
      status: 405, type: "https://adjoint.dev/problems/method-not-allowed", title: "Method not allowed",
      detail: "\(method) is not allowed here; use \(allowed.joined(separator: " or "))", errors: [],
      headers: [("Allow", allowed.joined(separator: ", "))])
  }

  package static func overloaded(retryAfter seconds: Int) -> Problem {
    Problem(
      status: 503, type: "https://adjoint.dev/problems/overloaded", title: "Service unavailable",
      detail: "the work queue is full; retry after \(seconds) s", errors: [],
      headers: [("Retry-After", "\(seconds)")])
  }

  /// The `type` of ``deadlinePassed(after:retryAfter:)``.
  package static let deadlineType = "https://adjoint.dev/problems/deadline"

  package static func deadlinePassed(after seconds: Double, retryAfter: Int) -> Problem {
    Problem(
      status: 503, type: deadlineType, title: "Service unavailable",
      detail: "the request was not answered within its limit of \(seconds) s; retry after \(retryAfter) s", errors: [],
      headers: [("Retry-After", "\(retryAfter)")])
  }

  package static func unknownGraph(_ id: String, pointer: String) -> Problem {
    let detail = "no graph has the id '\(id)' here; register it with POST /graphs"
    return Problem(
      status: 404, type: "https://adjoint.dev/problems/unknown-graph", title: "Unknown graph", detail: detail,
      errors: pointer.isEmpty ? [] : [Entry(pointer: pointer, message: detail)])
  }

  package static func draining(retryAfter seconds: Int) -> Problem {
    Problem(
      status: 503, type: "https://adjoint.dev/problems/draining", title: "Service unavailable",
      detail: "the server is shutting down; retry after \(seconds) s on another replica", errors: [],
      headers: [("Retry-After", "\(seconds)")])
  }

  /// A mistake in a function, at `exprPointer` (the pointer of the `expr` field) and its `position` when it is
  /// located in `expr`, else at its own JSON Pointer.
  package static func expression(_ diagnostic: Diagnostic, pointer exprPointer: String) -> Problem {
    diagnostics(Diagnostics(diagnostic), exprPointer: exprPointer)
  }

  /// Several mistakes in a function, one entry each; the status is that of their kind (400, 422 or 413).
  package static func diagnostics(_ diagnostics: Diagnostics, exprPointer: String) -> Problem {
    let entries = diagnostics.entries.map { diagnostic in
      switch diagnostic.location {
      case .position(let position): Entry(pointer: exprPointer, message: diagnostic.message, position: position)
      case .pointer(let pointer): Entry(pointer: pointer.description, message: diagnostic.message)
      }
    }
    let first = diagnostics.entries[0].message
    let detail = entries.count == 1 ? first : "\(entries.count) mistakes in the function; the first: \(first)"
    switch diagnostics.kind {
    case .syntax:
      return Problem(
        status: 400, type: "https://adjoint.dev/problems/syntax", title: "Syntax error", detail: detail,
        errors: entries)
    case .semantic:
      return Problem(
        status: 422, type: "https://adjoint.dev/problems/invalid-function", title: "Invalid function",
        detail: detail, errors: entries)
    case .limit:
      return Problem(
        status: 413, type: "https://adjoint.dev/problems/too-large", title: "Request too large",
        detail: detail, errors: entries)
    }
  }
}

extension Problem {
  /// The `application/problem+json` body.
  package var body: [UInt8] {
    var writer = JSONWriter(capacity: 256)
    writer.beginObject()
    writer.writeKey("type")
    writer.write(type)
    writer.writeKey("title")
    writer.write(title)
    writer.writeKey("status")
    writer.write(status)
    writer.writeKey("detail")
    writer.write(detail)
    writer.writeKey("errors")
    writer.beginArray()
    for entry in errors {
      writer.beginObject()
      writer.writeKey("pointer")
      writer.write(entry.pointer)
      writer.writeKey("message")
      writer.write(entry.message)
      if let position = entry.position {
        writer.writeKey("position")
        writer.write(position)
      }
      writer.endObject()
    }
    writer.endArray()
    writer.endObject()
    return writer.bytes
  }
}
