import Foundation
import TLS
import XCTest

final class TLSTests: XCTestCase {
  private var directory: URL!

  override func setUpWithError() throws {
    directory = FileManager.default.temporaryDirectory.appendingPathComponent("adjoint-tls-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(at: directory)
  }

  /// Makes a self-signed certificate and key with the `openssl` command-line tool.
  private func makeCertificate(name: String) throws -> (certificate: String, key: String) {
    let certificate = directory.appendingPathComponent("\(name)-cert.pem").path
    let key = directory.appendingPathComponent("\(name)-key.pem").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [
      "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate, "-days", "1",
      "-subj", "/CN=localhost",
    ]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    try XCTSkipIf(process.terminationStatus != 0, "openssl req failed")
    return (certificate, key)
  }

  func testLoadsCertificateAndKey() throws {
    let (certificate, key) = try makeCertificate(name: "good")
    let context = try TLSContext(certificatePath: certificate, keyPath: key)
    XCTAssertEqual(context.minimumProtocolVersion, 0x0303)
    XCTAssertEqual(context.maximumProtocolVersion, 0x0304)
  }

  func testMissingFileThrows() {
    XCTAssertThrowsError(
      try TLSContext(certificatePath: directory.appendingPathComponent("missing.pem").path, keyPath: "missing-key.pem")
    ) { error in
      let tlsError = error as? TLSError
      XCTAssertNotNil(tlsError)
      XCTAssertTrue(tlsError?.operation.contains("certificate") ?? false, "\(error)")
      XCTAssertFalse(tlsError?.messages.isEmpty ?? true, "the OpenSSL error queue should have been drained")
    }
  }

  func testMismatchedKeyThrows() throws {
    let first = try makeCertificate(name: "first")
    let second = try makeCertificate(name: "second")
    XCTAssertThrowsError(try TLSContext(certificatePath: first.certificate, keyPath: second.key)) {
      XCTAssertTrue($0 is TLSError)
    }
  }

  func testGarbageCertificateThrows() throws {
    let path = directory.appendingPathComponent("garbage.pem").path
    try Data("not a certificate".utf8).write(to: URL(fileURLWithPath: path))
    XCTAssertThrowsError(try TLSContext(certificatePath: path, keyPath: path)) { XCTAssertTrue($0 is TLSError) }
  }

  func testLibraryVersion() {
    XCTAssertTrue(TLS.libraryVersion.hasPrefix("OpenSSL"), TLS.libraryVersion)
  }
}
