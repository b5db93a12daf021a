import Foundation
import ServerTestSupport
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

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
