import AdjointService
import ArgumentParser
import Foundation

/// The `adjoint` command.
@main
struct Adjoint: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Automatic differentiation as a service.",
    subcommands: [Serve.self])
}

/// `adjoint serve`: runs the HTTP server until SIGTERM or SIGINT.
struct Serve: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run the Adjoint HTTP server.",
    discussion: "Each option may also be given as an environment variable: --port is ADJOINT_PORT, and so on.")

  @Option(help: "The address to listen on (ADJOINT_HOST).")
  var host: String = environment("ADJOINT_HOST") ?? "127.0.0.1"

  @Option(help: "The TCP port; 0 picks a free one (ADJOINT_PORT).")
  var port: Int = environment("ADJOINT_PORT").flatMap(Int.init) ?? 8080

  @Option(help: "Worker threads for the compute (ADJOINT_WORKERS); default one per core.")
  var workers: Int = environment("ADJOINT_WORKERS").flatMap(Int.init) ?? ProcessInfo.processInfo.activeProcessorCount

  @Option(help: "Requests that may wait for a worker before the server answers 503 (ADJOINT_MAX_QUEUE).")
  var maxQueue: Int = environment("ADJOINT_MAX_QUEUE").flatMap(Int.init) ?? 1024

  func validate() throws {
    guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
    guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
    guard maxQueue >= 0 else { throw ValidationError("--max-queue must not be negative") }
  }

  func run() throws {
    let configuration = ServiceConfiguration(host: host, port: port, workers: workers, maxQueue: maxQueue)
    let service = AdjointServer(configuration: configuration)
    let bound = try service.start()
    service.shutdownOnTerminationSignals()
    let shown = host.contains(":") ? "[\(host)]" : host
    // Written unbuffered: scripts and tests wait for this line to learn the port.
    FileHandle.standardOutput.write(Data("adjoint listening on http://\(shown):\(bound)\n".utf8))
    service.wait()
  }
}

private func environment(_ name: String) -> String? {
  ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 }
}
