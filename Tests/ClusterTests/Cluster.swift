import Foundation
import ServerTestSupport
import Synchronization
import XCTest

#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif

#if canImport(Glibc)
  import Glibc
#endif

/// `scripts/cluster N`: N replicas of the `adjoint` binary built beside the test bundle, behind nginx, all on
/// loopback. Start one with `try Cluster(replicas: 3)`, send requests to `url`, and let it go (or call `stop()`):
/// the script then stops the replicas with SIGTERM and nginx after them.
final class Cluster {
  /// One `adjoint serve` process behind nginx.
  struct Replica {
    /// Its process id (a child of the script, not of the test).
    var pid: pid_t
    /// `127.0.0.1:PORT`, as nginx names it in `X-Adjoint-Upstream`.
    var address: String
    /// Its own base URL, to ask it directly.
    var url: URL

    /// How many `POST /gradient` it answered with `status`, from its own /metrics.
    func gradients(answered status: Int) throws -> Int {
      let metrics = try HTTP.send("GET", url.appendingPathComponent("metrics"))
      let prefix = #"adjoint_http_requests_total{route="/gradient",method="POST",status="\#(status)"} "#
      let line = String(decoding: metrics.body, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix(prefix) }
      return line.flatMap { Int($0.dropFirst(prefix.count)) } ?? 0
    }
  }

  /// nginx's base URL, in front of every replica.
  let url: URL
  let replicas: [Replica]
  private let process = Process()
  private let output = Pipe()

  /// The repository's root, from this file's place in it.
  static var repositoryRoot: URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
  }

  /// Skips the test when nginx is not installed and cannot be (scripts/test installs it; scripts/cluster does as
  /// root).
  static func requireNginx() throws {
    let installed = ["/usr/sbin/nginx", "/usr/bin/nginx"].contains { FileManager.default.isExecutableFile(atPath: $0) }
    if !installed && getuid() != 0 {
      throw XCTSkip("nginx is not installed (scripts/test installs it from Debian)")
    }
  }

  /// Starts `scripts/cluster replicas` and waits until nginx answers; `environment` goes to the replicas
  /// (e.g. `["ADJOINT_WORKERS": "1"]`).
  init(replicas count: Int, environment: [String: String] = [:]) throws {
    try Self.requireNginx()
    process.executableURL = Self.repositoryRoot.appendingPathComponent("scripts/cluster")
    process.arguments = [String(count)]
    var variables = ProcessInfo.processInfo.environment
    variables["ADJOINT_BIN"] = ServerProcess.executable.path
    for (name, value) in environment { variables[name] = value }
    process.environment = variables
    process.standardOutput = output
    process.standardError = FileHandle.standardError
    // The child inherits this thread's signal mask, and the threads of Swift concurrency (an async test) block
    // every signal: the script would never see the SIGTERM that stops it. It starts with none blocked.
    var none = sigset_t()
    var previous = sigset_t()
    sigemptyset(&none)
    pthread_sigmask(SIG_SETMASK, &none, &previous)
    defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
    try process.run()

    var text = ""
    let handle = output.fileHandleForReading
    let deadline = Date().addingTimeInterval(180)
    while !text.contains("cluster listening on ") || !text.hasSuffix("\n") {
      guard Date() < deadline else { break }
      let chunk = handle.availableData
      if chunk.isEmpty { break }
      text += String(decoding: chunk, as: UTF8.self)
    }
    var replicas: [Replica] = []
    var front: URL?
    for line in text.split(separator: "\n") {
      let words = line.split(separator: " ")
      if words.count == 5, words[0] == "replica", words[2] == "pid", let pid = pid_t(words[3]),
        let url = URL(string: String(words[4])), let host = url.host, let port = url.port
      {
        replicas.append(Replica(pid: pid, address: "\(host):\(port)", url: url))
      } else if line.hasPrefix("cluster listening on "), let url = URL(string: String(words[3])) {
        front = url
      }
    }
    guard let front, replicas.count == count else {
      process.terminate()
      process.waitUntilExit()
      throw NSError(
        domain: "Cluster", code: 1, userInfo: [NSLocalizedDescriptionKey: "scripts/cluster did not start: \(text)"])
    }
    self.url = front
    self.replicas = replicas
  }

  /// Stops the cluster (SIGTERM to the script, which stops the replicas and nginx) and waits for it, at most a
  /// minute (then the replicas and the script are killed).
  func stop() {
    guard process.isRunning else { return }
    process.terminate()
    let deadline = Date().addingTimeInterval(60)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    if process.isRunning {
      FileHandle.standardError.write(Data("Cluster: scripts/cluster did not stop on SIGTERM; killing it\n".utf8))
      for replica in replicas { kill(replica.pid, SIGKILL) }
      kill(process.processIdentifier, SIGKILL)
    }
  }

  deinit { stop() }

  /// True once `pid` has exited (its process entry is gone or a zombie).
  static func hasExited(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = stat.lastIndex(of: ")")
    else { return true }
    return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
  }
}

/// One HTTP exchange, as URLSession saw it.
struct Exchange: Sendable {
  var status: Int
  /// `X-Adjoint-Upstream`: the replicas nginx asked, the one that answered last.
  var upstream: String
  var body: Data

  /// The replica that answered (the last address of `X-Adjoint-Upstream`).
  var answeredBy: String {
    String(upstream.split(separator: ",").last ?? "").trimmingCharacters(in: .whitespaces)
  }

  /// The body as a JSON object.
  var object: [String: Any]? {
    (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
  }
}

/// A blocking HTTP client over URLSession, safe to call from many threads at once.
enum HTTP {
  private static let session: URLSession = {
    let configuration = URLSessionConfiguration.ephemeral
    configuration.httpMaximumConnectionsPerHost = 64
    configuration.timeoutIntervalForRequest = 60
    return URLSession(configuration: configuration)
  }()

  private final class Outcome: Sendable {
    let value = Mutex<Result<Exchange, any Error>?>(nil)
  }

  /// Sends `method url` with `json` as its body and waits for the answer.
  static func send(_ method: String, _ url: URL, json: String? = nil) throws -> Exchange {
    var request = URLRequest(url: url)
    request.httpMethod = method
    if let json {
      request.httpBody = Data(json.utf8)
      request.setValue("application/json", forHTTPHeaderField: "Content-Type")
    }
    let outcome = Outcome()
    let done = DispatchSemaphore(value: 0)
    session.dataTask(with: request) { data, response, error in
      let result: Result<Exchange, any Error>
      if let response = response as? HTTPURLResponse {
        result = .success(
          Exchange(
            status: response.statusCode,
            upstream: response.value(forHTTPHeaderField: "X-Adjoint-Upstream") ?? "",
            body: data ?? Data()))
      } else {
        result = .failure(error ?? URLError(.badServerResponse))
      }
      outcome.value.withLock { $0 = result }
      done.signal()
    }.resume()
    done.wait()
    return try outcome.value.withLock { $0! }.get()
  }

  /// Sends a POST with a JSON body.
  static func post(_ url: URL, _ path: String, _ json: String) throws -> Exchange {
    try send("POST", url.appendingPathComponent(path), json: json)
  }
}
