import AdjointCompute
import AdjointService
import ArgumentParser
import Foundation
import HTTPCore
import HTTPServer
import Logging

// The entry point. (`@main` would need this file not to be called main.swift, now that the target has several.)
Adjoint.main()

/// The `adjoint` command.
struct Adjoint: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Automatic differentiation as a service.",
    subcommands: [Serve.self, Health.self, Grad.self, Eval.self, Jacobian.self, Hessian.self])
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

  @Flag(
    inversion: .prefixedNo,
    help: """
      With one worker per CPU the process may use, bind each worker to its own CPU (ADJOINT_PIN_WORKERS=0 or \
      --no-pin-workers: never).
      """)
  var pinWorkers: Bool = environment("ADJOINT_PIN_WORKERS").map { $0 != "0" && $0.lowercased() != "false" } ?? true

  @Option(help: "Requests that may wait for a worker before the server answers 503 (ADJOINT_MAX_QUEUE).")
  var maxQueue: Int = environment("ADJOINT_MAX_QUEUE").flatMap(Int.init) ?? 1024

  @Option(help: "The largest request body in bytes, also once inflated from gzip (ADJOINT_MAX_BODY_BYTES).")
  var maxBodyBytes: Int = environment("ADJOINT_MAX_BODY_BYTES").flatMap(Int.init) ?? ServiceLimits().maxBodyBytes

  @Option(help: "Connections open at once; past it new ones get 503 and are closed (ADJOINT_MAX_CONNECTIONS).")
  var maxConnections: Int = environment("ADJOINT_MAX_CONNECTIONS").flatMap(Int.init) ?? 10_000

  @Option(help: "Seconds a request's header section may take to arrive, else 408 (ADJOINT_HEADER_TIMEOUT).")
  var headerTimeout: Double = environment("ADJOINT_HEADER_TIMEOUT").flatMap(Double.init) ?? 10

  @Option(help: "Seconds a request's body may take to arrive after its header, else 408 (ADJOINT_BODY_TIMEOUT).")
  var bodyTimeout: Double = environment("ADJOINT_BODY_TIMEOUT").flatMap(Double.init) ?? 30

  @Option(help: "Seconds a keep-alive connection may wait for its next request (ADJOINT_IDLE_TIMEOUT).")
  var idleTimeout: Double = environment("ADJOINT_IDLE_TIMEOUT").flatMap(Double.init) ?? 30

  @Option(
    help: "Seconds a response may wait for a client that reads none of it, then it closes (ADJOINT_SEND_TIMEOUT).")
  var sendTimeout: Double = environment("ADJOINT_SEND_TIMEOUT").flatMap(Double.init) ?? 30

  @Option(help: "Seconds requests in flight get to finish after SIGTERM or SIGINT (ADJOINT_DRAIN_TIMEOUT).")
  var drainTimeout: Double = environment("ADJOINT_DRAIN_TIMEOUT").flatMap(Double.init) ?? 30

  @Option(help: "A PEM certificate chain; with --tls-key the server speaks HTTPS only (ADJOINT_TLS_CERT).")
  var tlsCert: String = environment("ADJOINT_TLS_CERT") ?? ""

  @Option(help: "The PEM private key of --tls-cert (ADJOINT_TLS_KEY).")
  var tlsKey: String = environment("ADJOINT_TLS_KEY") ?? ""

  @Option(help: "Log level: trace, debug, info (one line per request), notice, warning, error (ADJOINT_LOG_LEVEL).")
  var logLevel: String = environment("ADJOINT_LOG_LEVEL") ?? "warning"

  @Option(help: "Log format on standard error: json (one object per line) or text (ADJOINT_LOG_FORMAT).")
  var logFormat: String = environment("ADJOINT_LOG_FORMAT") ?? "json"

  @Option(
    help: """
      A file of bearer tokens, one per line ('#' starts a comment); every endpoint but /healthz, /readyz and \
      /openapi.yaml then needs 'Authorization: Bearer TOKEN' (ADJOINT_API_KEYS_FILE).
      """)
  var apiKeysFile: String = environment("ADJOINT_API_KEYS_FILE") ?? ""

  @Option(
    name: .customLong("request-timeout-s"),
    help: "Seconds a request may take from arrival to answer, queueing included, else 503 (ADJOINT_REQUEST_TIMEOUT_S).")
  var requestTimeout: Double = environment("ADJOINT_REQUEST_TIMEOUT_S").flatMap(Double.init) ?? 30

  func validate() throws {
    guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
    guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
    guard maxQueue >= 0 else { throw ValidationError("--max-queue must not be negative") }
    guard maxBodyBytes >= 0 else { throw ValidationError("--max-body-bytes must not be negative") }
    guard maxConnections >= 1 else { throw ValidationError("--max-connections must be at least 1") }
    for (name, value) in [
      ("--header-timeout", headerTimeout), ("--body-timeout", bodyTimeout), ("--idle-timeout", idleTimeout),
      ("--send-timeout", sendTimeout), ("--drain-timeout", drainTimeout), ("--request-timeout-s", requestTimeout),
    ] {
      guard value > 0 && value <= 86_400 else { throw ValidationError("\(name) must be between 0 and 86400 seconds") }
    }
    guard tlsCert.isEmpty == tlsKey.isEmpty else {
      throw ValidationError("--tls-cert and --tls-key must be given together")
    }
    guard Logger.Level(rawValue: logLevel) != nil else {
      throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
    }
    guard logFormat == "json" || logFormat == "text" else { throw ValidationError("--log-format must be json or text") }
  }

  func run() throws {
    var configuration = ServiceConfiguration(host: host, port: port, workers: workers, maxQueue: maxQueue)
    configuration.pinWorkers = pinWorkers
    configuration.requestTimeout = requestTimeout
    if !apiKeysFile.isEmpty {
      do {
        configuration.apiKeys = try APIKeys.tokens(contentsOfFile: apiKeysFile)
      } catch {
        // A server that cannot load its keys must not start open.
        FileHandle.standardError.write(Data("adjoint: \(error.description)\n".utf8))
        throw ExitCode.failure
      }
    }
    configuration.limits.maxBodyBytes = maxBodyBytes
    configuration.http.maxConnections = maxConnections
    configuration.http.timeouts = HTTPTimeouts(
      header: .seconds(headerTimeout), body: .seconds(bodyTimeout), idle: .seconds(idleTimeout),
      send: .seconds(sendTimeout))
    configuration.http.drainTimeout = .seconds(drainTimeout)
    if !tlsCert.isEmpty {
      configuration.http.tls = HTTPTLSFiles(certificatePath: tlsCert, keyPath: tlsKey)
    }
    if logFormat == "json" {
      LoggingSystem.bootstrap { JSONLogHandler(label: $0) }
    } else {
      LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
    }
    var logger = Logger(label: "adjoint.http")
    logger.logLevel = Logger.Level(rawValue: logLevel) ?? .warning

    let service = AdjointServer(configuration: configuration, logger: logger)
    let bound = try service.start()
    service.shutdownOnTerminationSignals()
    let shown = host.contains(":") ? "[\(host)]" : host
    let scheme = tlsCert.isEmpty ? "http" : "https"
    // Written unbuffered: scripts and tests wait for this line to learn the port.
    FileHandle.standardOutput.write(Data("adjoint listening on \(scheme)://\(shown):\(bound)\n".utf8))
    service.wait()
  }
}

/// The environment variable `name`, unless it is unset or empty.
func environment(_ name: String) -> String? {
  ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 }
}
