// swift-tools-version:6.1
// The arrows point one way: service → expressions → engine, service → HTTP server.
import PackageDescription

let package = Package(
  name: "Adjoint",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "adjoint", targets: ["adjoint"]),
    .library(name: "AdjointClient", targets: ["AdjointClient"]),
    .library(name: "AdjointEngine", targets: ["AdjointEngine"]),
    .executable(name: "adjoint-bench", targets: ["AdjointBench"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
  ],
  targets: [
    // The tape engine: tensors, programs, workspaces, forward and reverse passes. Standard library plus swift-numerics' RealModule.
    .target(
      name: "AdjointEngine",
      dependencies: ["CBLAS", "CMath", .product(name: "RealModule", package: "swift-numerics")]),
    // glibc's sincos, which Swift's Glibc module does not expose.
    .systemLibrary(name: "CMath"),
    .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
    // A small, fast JSON reader and writer that never goes through Codable. Standard library plus CBase64 and CDigits.
    .target(name: "AdjointJSON", dependencies: ["CBase64", "CDigits"]),
    // Sixteen ASCII digits at once with SSE2, inlined into AdjointJSON's number reader (a header only).
    .systemLibrary(name: "CDigits"),
    // Base64 decoding with AVX2 (chosen at run time), called only from AdjointJSON's Base64.swift.
    .target(name: "CBase64"),
    // The `expr` language and the JSON `graph` form, compiled to engine programs.
    .target(name: "AdjointExpressions", dependencies: ["AdjointEngine", "AdjointJSON"]),
    // C libraries from Debian's -dev packages, each wrapped by exactly one Swift target.
    .systemLibrary(
      name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
    .systemLibrary(
      name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
    .target(name: "Gzip", dependencies: ["CZlib"]),
    .target(name: "TLS", dependencies: ["COpenSSL"]),
    // glibc's epoll and eventfd, which Swift's Glibc module does not expose (for the server's event loops).
    .systemLibrary(name: "CEpoll"),
    // HTTP/1.1 as pure state machines: request parser and response writer, no sockets.
    .target(name: "HTTPCore"),
    // Sockets and epoll event loops under HTTPCore. Every Glibc call lives in Sys/Syscalls.swift.
    .target(
      name: "HTTPServer",
      dependencies: [
        "HTTPCore", "Gzip", "TLS", "CEpoll", "Locking", .product(name: "Logging", package: "swift-log"),
      ]),
    // A lock that ThreadSanitizer sees, shared by the server and the compute layer.
    .target(name: "Locking"),
    // The contract's computations as bytes in, bytes out: request JSON to response JSON or a problem, worker pool,
    // program cache, graph registry. No HTTP: the service serves it, the SDK's local backend runs it in-process.
    .target(
      name: "AdjointCompute", dependencies: ["AdjointExpressions", "AdjointEngine", "AdjointJSON", "Locking", "CSched"]),
    // The CPU affinity system calls, which Swift's Glibc module does not expose (for binding workers to CPUs).
    .systemLibrary(name: "CSched"),
    // The routes of the wire contract.
    .target(
      name: "AdjointService",
      dependencies: [
        "AdjointCompute", "AdjointExpressions", "AdjointEngine", "AdjointJSON", "HTTPServer", "HTTPCore", "Locking",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Prometheus", package: "swift-prometheus"),
      ],
      resources: [.embedInCode("Resources/openapi.yaml")]),
    // The Swift SDK: the contract's wire types over AdjointJSON, a graph builder, and two backends (URLSession, or the
    // service's own computations in-process). No HTTP server; TLS only for a custom certificate authority on Linux.
    .target(
      name: "AdjointClient",
      dependencies: ["AdjointCompute", "AdjointExpressions", "AdjointEngine", "AdjointJSON", "TLS"]),
    .executableTarget(
      name: "adjoint",
      dependencies: [
        "AdjointClient",
        "AdjointCompute",
        "AdjointJSON",
        "AdjointService",
        "HTTPCore",
        "HTTPServer",
        "TLS",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ]),
    // The HTTP server alone with a fixed reply, for `scripts/bench_service.sh`.
    .executableTarget(
      name: "http-bench-server", dependencies: ["HTTPServer", "HTTPCore"], path: "Sources/HTTPBenchServer"),
    // Times the engine on the workloads of BENCHMARKS.md; `scripts/bench engine` runs it beside the anchors.
    .executableTarget(name: "AdjointBench", dependencies: ["AdjointEngine", "AdjointExpressions"]),
    // Counts the calling thread's heap allocations by interposing malloc and its siblings (glibc); linked into tests only.
    .target(name: "MallocCounter", path: "Tests/MallocCounter"),
    .testTarget(name: "AdjointEngineTests", dependencies: ["AdjointEngine", "AdjointExpressions", "MallocCounter"]),
    .testTarget(name: "AdjointJSONTests", dependencies: ["AdjointJSON"]),
    .testTarget(name: "AdjointExpressionsTests", dependencies: ["AdjointExpressions", "AdjointEngine", "AdjointJSON"]),
    .testTarget(name: "HTTPCoreTests", dependencies: ["HTTPCore", "HTTPServer", "Gzip", "TLS"]),
    // `adjoint serve` as a subprocess, for the test targets that talk to a real server.
    .target(name: "ServerTestSupport", path: "Tests/ServerTestSupport"),
    .testTarget(
      name: "AdjointServiceTests",
      dependencies: ["AdjointService", "AdjointCompute", "AdjointJSON", "ServerTestSupport"]),
    // Several replicas of the real `adjoint` binary behind nginx (scripts/cluster), over loopback.
    .testTarget(name: "ClusterTests", dependencies: ["AdjointClient", "ServerTestSupport"]),
    // The SDK against the real `adjoint` binary as a subprocess, and in-process.
    .testTarget(
      name: "AdjointClientTests",
      dependencies: ["AdjointClient", "AdjointJSON", "AdjointExpressions", "ServerTestSupport"],
      exclude: ["Fixtures"]),
  ],
  swiftLanguageModes: [.v6]
)
