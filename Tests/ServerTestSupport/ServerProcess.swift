import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// The real `adjoint` binary, started as `adjoint serve` on a free port (or a given one) as a subprocess; shared by
/// the test targets that talk to a real server.
public final class ServerProcess: @unchecked Sendable {
  /// The subprocess.
  public let process = Process()
  /// The port it listens on.
  public let port: Int
  /// `http`, or `https` when started with a certificate.
  public let scheme: String
  private let output = Pipe()

  /// The `adjoint` executable built beside the test bundle.
  public static var executable: URL {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("adjoint")
  }

  /// Runs `adjoint health ARGUMENTS` with only `environment` and returns its exit status (0: healthy).
  public static func health(_ arguments: [String], environment: [String: String] = [:]) throws -> Int32 {
    let process = Process()
    process.executableURL = executable
    process.arguments = ["health"] + arguments
    process.environment = environment
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
  }

  /// Starts `adjoint serve --host 127.0.0.1 --port PORT ARGUMENTS` (with `environment` added to this process's) and
  /// waits (at most 20 s) until it listens.
  public init(port: Int = 0, arguments: [String] = [], environment: [String: String] = [:]) throws {
    process.executableURL = Self.executable
    process.arguments = ["serve", "--host", "127.0.0.1", "--port", "\(port)"] + arguments
    if !environment.isEmpty {
      process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    process.standardOutput = output
    process.standardError = FileHandle.standardError
    try process.run()
    // It prints "adjoint listening on http://127.0.0.1:PORT" (https with TLS) once it accepts connections.
    var text = ""
    let handle = output.fileHandleForReading
    let deadline = Date().addingTimeInterval(20)
    while !text.contains("\n") && Date() < deadline {
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
  public var url: URL { URL(string: "\(scheme)://127.0.0.1:\(port)")! }

  /// Waits at most `seconds` for the server to exit; returns whether it has.
  @discardableResult
  public func waitForExit(within seconds: Double) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
    return !process.isRunning
  }

  /// Stops the server (SIGTERM) and waits for it to exit; one still running after `seconds` is killed (SIGKILL), so
  /// that a server that ignores SIGTERM fails its test instead of hanging it.
  public func stop(within seconds: Double = 30) {
    guard process.isRunning else { return }
    process.terminate()
    if !waitForExit(within: seconds) {
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
    }
  }

  deinit { stop() }
}
