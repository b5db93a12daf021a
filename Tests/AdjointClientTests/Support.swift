import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// The real `adjoint` binary, started as `adjoint serve` on a free port (or a given one) as a subprocess.
final class ServerProcess: @unchecked Sendable {
  let process = Process()
  let port: Int
  let scheme: String
  private let output = Pipe()

  /// The `adjoint` executable built beside the test bundle.
  static var executable: URL {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("adjoint")
  }

  init(port: Int = 0, arguments: [String] = []) throws {
    process.executableURL = Self.executable
    process.arguments = ["serve", "--host", "127.0.0.1", "--port", "\(port)"] + arguments
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    // It prints "adjoint listening on http://127.0.0.1:PORT" (https with TLS) once it accepts connections.
    var text = ""
    let handle = output.fileHandleForReading
    while !text.contains("\n") {
      let chunk = handle.availableData
      if chunk.isEmpty { break }
      text += String(decoding: chunk, as: UTF8.self)
    }
    guard let range = text.range(of: "://127.0.0.1:"),
      let bound = Int(text[range.upperBound...].prefix(while: \.isNumber))
    else {
      process.terminate()
      throw NSError(domain: "ServerProcess", code: 1, userInfo: [NSLocalizedDescriptionKey: "no port in '\(text)'"])
    }
    self.port = bound
    scheme = text.contains("https://") ? "https" : "http"
  }

  /// The server's base URL.
  var url: URL { URL(string: "\(scheme)://127.0.0.1:\(port)")! }

  /// Stops the server (SIGTERM) and waits for it to exit.
  func stop() {
    if process.isRunning {
      process.terminate()
      process.waitUntilExit()
    }
  }

  deinit { stop() }
}

/// Runs a program to its end; returns its exit status, standard output and standard error.
func runProgram(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil) throws -> (
  status: Int32, output: String, error: String
) {
  let process = Process()
  process.executableURL = executable
  process.arguments = arguments
  if let environment { process.environment = environment }
  let output = Pipe()
  // Standard error goes to a file, so that neither stream can fill up and block the program.
  let errorPath = FileManager.default.temporaryDirectory.appendingPathComponent("adjoint-stderr-\(UUID().uuidString)")
  _ = FileManager.default.createFile(atPath: errorPath.path, contents: nil)
  defer { try? FileManager.default.removeItem(at: errorPath) }
  let errorHandle = try FileHandle(forWritingTo: errorPath)
  process.standardOutput = output
  process.standardError = errorHandle
  process.standardInput = FileHandle.nullDevice
  try process.run()
  let outputData = output.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  try errorHandle.close()
  let errorText = (try? String(contentsOf: errorPath, encoding: .utf8)) ?? ""
  return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), errorText)
}

/// Runs a tool found on `PATH`.
func tool(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
  try runProgram(URL(fileURLWithPath: "/usr/bin/env"), arguments)
}

/// The largest absolute difference between two equal-length arrays (infinity when the lengths differ).
func maxDifference(_ a: [Double], _ b: [Double]) -> Double {
  guard a.count == b.count else { return .infinity }
  return zip(a, b).map { Swift.abs($0 - $1) }.max() ?? 0
}
