import AdjointClient
import AdjointJSON
import ArgumentParser
import Foundation

/// The options `grad`, `eval`, `jacobian` and `hessian` share: the function, the point, and where to compute.
struct ComputeOptions: ParsableArguments {
  @Argument(help: "The function, in the expr language: 'sin(x*y) + x^2', 'h = tanh(x @ W); loss = sum(h)'.")
  var expression: String

  @Option(
    name: .customLong("at"),
    help: ArgumentHelp(
      "An input's value as NAME=JSON (a number, nested arrays, or {\"shape\", \"data\"}), or NAME=@FILE for a "
        + "JSON file; once per input.", valueName: "name=value"))
  var points: [String] = []

  @Option(help: "The URL of an Adjoint server (ADJOINT_URL); without it the computation runs in this process.")
  var server: String = ProcessInfo.processInfo.environment["ADJOINT_URL"] ?? ""

  @Option(help: "A bearer token for the server (ADJOINT_TOKEN).")
  var token: String = ProcessInfo.processInfo.environment["ADJOINT_TOKEN"] ?? ""

  @Option(help: "A PEM certificate authority to trust for an https server.")
  var cacert: String = ""

  @Flag(help: "Print exactly the JSON body the matching endpoint answers (problems too), instead of a table.")
  var json = false

  /// The `at` object's members: each name with its JSON text.
  func point() throws -> [(String, [UInt8])] {
    var seen: Set<String> = []
    return try points.map { item in
      guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
        throw ValidationError("--at takes NAME=VALUE, not '\(item)'")
      }
      let name = String(item[..<equals])
      guard seen.insert(name).inserted else { throw ValidationError("--at gives '\(name)' twice") }
      var text = String(item[item.index(after: equals)...])
      if text.hasPrefix("@") {
        let path = String(text.dropFirst())
        guard let contents = FileManager.default.contents(atPath: path) else {
          throw ValidationError("--at \(name): cannot read '\(path)'")
        }
        text = String(decoding: contents, as: UTF8.self)
      }
      do throws(JSONError) {
        _ = try JSONParser.parse(text)
      } catch {
        throw ValidationError("--at \(name): the value is not JSON (\(error.description))")
      }
      return (name, Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8))
    }
  }

  /// The request body: `expr`, `at`, then what `extra` writes.
  func body(_ extra: (inout JSONWriter) -> Void) throws -> [UInt8] {
    var writer = JSONWriter(capacity: 256)
    writer.beginObject()
    writer.writeKey("expr")
    writer.write(expression)
    writer.writeKey("at")
    writer.beginObject()
    for (name, value) in try point() {
      writer.writeKey(name)
      writer.writeRawValue(value)
    }
    writer.endObject()
    extra(&writer)
    writer.endObject()
    return writer.bytes
  }

  /// Sends `body` to `endpoint` (on the server, or in this process), prints the answer as a table made by `table`
  /// or as its JSON, and exits 1 on a problem.
  func run(_ endpoint: Endpoint, body: [UInt8], table: @escaping @Sendable (JSONValue) -> String) throws {
    let backend: any Backend
    if server.isEmpty {
      backend = LocalBackend()
    } else {
      guard let url = URL(string: server) else { throw ValidationError("--server: '\(server)' is not a URL") }
      do {
        backend = try RemoteBackend(
          url: url, token: token.isEmpty ? nil : token, caCertificatePath: cacert.isEmpty ? nil : cacert)
      } catch {
        throw ValidationError(error.description)
      }
    }
    let client = AdjointClient(backend: backend)
    let expression = self.expression
    let json = self.json
    let outcome = blocking { () async -> Result<[UInt8], AdjointError> in
      do throws(AdjointError) {
        return .success(try await client.send(endpoint, body: body))
      } catch {
        return .failure(error)
      }
    }
    switch outcome {
    case .success(let answer):
      if json {
        FileHandle.standardOutput.write(Data(answer + [10]))
      } else {
        let document = (try? JSONParser.parse(answer)) ?? .null
        FileHandle.standardOutput.write(Data(table(document).utf8))
      }
    case .failure(.problem(let problem)) where json:
      FileHandle.standardOutput.write(Data(problem.body + [10]))
      throw ExitCode.failure
    case .failure(let error):
      FileHandle.standardError.write(Data("adjoint: \(Self.explain(error, expression: expression))\n".utf8))
      throw ExitCode.failure
    }
  }

  /// The error, and for a mistake located in the expression, the expression with a caret under it.
  static func explain(_ error: AdjointError, expression: String) -> String {
    var text = error.description
    if let problem = error.problem, let position = problem.errors.first(where: { $0.position != nil })?.position {
      let line = expression.unicodeScalars.prefix(position).reduce(into: "") { $0.unicodeScalars.append($1) }
      text += "\n  \(expression)\n  \(String(repeating: " ", count: line.count))^"
    }
    return text
  }
}

/// Runs `body` on a task and waits for it: the commands are synchronous, like the root command.
private func blocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
  let box = BlockingBox<T>()
  Task {
    box.value = await body()
    box.done.signal()
  }
  box.done.wait()
  return box.value!
}

/// The result of a task, handed to the thread that waits for it.
private final class BlockingBox<T: Sendable>: @unchecked Sendable {
  // Written once by the task before `done` is signalled, read once after the wait.
  var value: T?
  let done = DispatchSemaphore(value: 0)
}

/// `adjoint grad`: the value and gradient of a scalar function.
struct Grad: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "The value and gradient of a scalar function (POST /gradient).",
    discussion: "Example: adjoint grad 'sin(x*y) + x^2' --at x=1.5 --at y=-0.5")

  @OptionGroup var options: ComputeOptions

  @Option(help: "An input to differentiate with respect to (repeatable); default every input.")
  var wrt: [String] = []

  func run() throws {
    let wrt = self.wrt
    try options.run(.gradient, body: options.body { writeNames("wrt", wrt, &$0) }) { json in
      Table.value(json["value"]) + Table.section("gradient", json["gradient"])
    }
  }
}

/// `adjoint eval`: the value of every output.
struct Eval: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "The value of every output of a function (POST /evaluate).",
    discussion: "Example: adjoint eval 'h = tanh(x @ W); s = sum(h)' --at x='[1, 2]' --at W='[[0.1], [0.2]]'")

  @OptionGroup var options: ComputeOptions

  func run() throws {
    try options.run(.evaluate, body: options.body { _ in }) { json in Table.section("output", json["values"]) }
  }
}

/// `adjoint jacobian`: the Jacobian of each output element with respect to each input element.
struct Jacobian: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "The value and Jacobian of a function with one output (POST /jacobian).",
    discussion: "Example: adjoint jacobian 'y = x * x' --at x='[1, 2]'")

  @OptionGroup var options: ComputeOptions

  @Option(help: "An input to differentiate with respect to (repeatable); default every input.")
  var wrt: [String] = []

  @Option(help: "auto, forward or reverse.")
  var mode: String = "auto"

  func run() throws {
    let wrt = self.wrt
    let mode = self.mode
    let body = try options.body { writer in
      writeNames("wrt", wrt, &writer)
      writer.writeKey("mode")
      writer.write(mode)
    }
    try options.run(.jacobian, body: body) { json in
      Table.value(json["value"]) + Table.section("jacobian", json["jacobian"])
    }
  }
}

/// `adjoint hessian`: second derivatives of a scalar function.
struct Hessian: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "The value, gradient and Hessian of a scalar function (POST /hessian).",
    discussion: "Example: adjoint hessian 'x^2 * y' --at x=1 --at y=2")

  @OptionGroup var options: ComputeOptions

  @Option(help: "An input to differentiate with respect to (repeatable); default every input.")
  var wrt: [String] = []

  func run() throws {
    let wrt = self.wrt
    try options.run(.hessian, body: options.body { writeNames("wrt", wrt, &$0) }) { json in
      var text = Table.value(json["value"]) + Table.section("gradient", json["gradient"])
      var blocks: [(String, JSONValue)] = []
      for (row, columns) in json["hessian"]?.objectValue ?? [:] {
        for (column, block) in columns.objectValue ?? [:] { blocks.append(("\(row), \(column)", block)) }
      }
      text += Table.section("hessian", .object(JSONObject(uniqueKeysWithValues: blocks)))
      return text
    }
  }
}

private func writeNames(_ key: String, _ names: [String], _ writer: inout JSONWriter) {
  guard !names.isEmpty else { return }
  writer.writeKey(key)
  writer.beginArray()
  for name in names { writer.write(name) }
  writer.endArray()
}

/// Readable tables of answers: one row per name, a matrix one row per line.
enum Table {
  static func value(_ value: JSONValue?) -> String {
    "value: " + render(value ?? .null, indent: 7) + "\n"
  }

  static func section(_ title: String, _ members: JSONValue?) -> String {
    guard case .object(let object)? = members, !object.isEmpty else { return "" }
    let width = max(title.count, object.keys.map(\.count).max() ?? 0)
    var text = "\n" + title.padding(toLength: width, withPad: " ", startingAt: 0) + "  value\n"
    for (name, value) in object {
      text += name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
      text += render(value, indent: width + 2) + "\n"
    }
    return text
  }

  /// A tensor: a number as the service wrote it, a vector on one line, a matrix one row per line.
  static func render(_ value: JSONValue, indent: Int) -> String {
    if case .array(let rows) = value, let first = rows.first, case .array = first {
      let lines = rows.map { $0.description }
      return lines.joined(separator: "\n" + String(repeating: " ", count: indent))
    }
    return value.description
  }
}
