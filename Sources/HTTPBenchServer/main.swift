// The HTTP server alone, for benchmarks: no autodiff, no JSON parsing.
//
//   http-bench-server [PORT [CERTIFICATE KEY]]
//
// Answers `GET /healthz` with {"status":"ok"} and `POST /gradient` (whatever the body) with the fixed S1 answer, as
// the nginx anchor of the service benchmarks does, so that wrk measures the server's own cost per request: accepting,
// parsing, reading the body, serializing and writing. Anything else gets a 404. With a PEM certificate and key it serves HTTPS.
import HTTPCore
import HTTPServer

let healthBody = Array(#"{"status":"ok"}"#.utf8)
let gradientBody = Array(
  #"{"value":1.568361239976666,"gradient":{"x":2.6341555655630895,"y":1.0975333033107313}}"#.utf8)
let json: HTTPHeaders = ["Content-Type": "application/json"]

let responder = HTTPClosureResponder { request in
  switch (request.method, request.path) {
  case (.get, "/healthz"), (.head, "/healthz"): HTTPResponse(status: .ok, headers: json, body: healthBody)
  case (.post, "/gradient"): HTTPResponse(status: .ok, headers: json, body: gradientBody)
  default: HTTPResponse.problem(status: .notFound, detail: "no route \(request.path)")
  }
}

let arguments = CommandLine.arguments
let port = arguments.count > 1 ? Int(arguments[1]) ?? 8083 : 8083
let tls = arguments.count > 3 ? HTTPTLSFiles(certificatePath: arguments[2], keyPath: arguments[3]) : nil
let server = HTTPServer(
  configuration: HTTPServerConfiguration(host: "127.0.0.1", port: port, tls: tls), responder: responder)
do {
  let bound = try server.start()
  print("http-bench-server listening on \(tls == nil ? "http" : "https")://127.0.0.1:\(bound)")
  server.wait()
} catch {
  print("http-bench-server: \(error)")
}
