import HTTPCore
import XCTest

/// The connection's read phases and deadlines, driven by a fake clock (nanoseconds chosen by the test).
final class HTTPTimeoutTests: XCTestCase {
  private let second: UInt64 = 1_000_000_000
  private let timeouts = HTTPTimeouts(header: .seconds(2), body: .milliseconds(3500), idle: .seconds(5))

  private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

  /// A fake-clock run of one connection: the machine, its deadline tracker, and the time.
  private struct Run {
    var machine = HTTPConnectionStateMachine()
    var deadline: HTTPReadDeadline
    var now: UInt64 = 1_000

    init(timeouts: HTTPTimeouts) {
      deadline = HTTPReadDeadline(timeouts: timeouts)
      _ = deadline.update(phase: machine.readPhase, now: now)
    }

    mutating func advance(_ nanoseconds: UInt64) { now += nanoseconds }

    @discardableResult
    mutating func receive(_ text: String) -> HTTPConnectionStateMachine.Action {
      let action = machine.bytesReceived(Array(text.utf8), now: 0)
      _ = deadline.update(phase: machine.readPhase, now: now)
      return action
    }

    mutating func answer() -> HTTPConnectionStateMachine.Action {
      _ = machine.responseReady(HTTPResponse(body: [1]), now: 0)
      _ = deadline.update(phase: machine.readPhase, now: now)
      let action = machine.writeCompleted(now: 0)
      _ = deadline.update(phase: machine.readPhase, now: now)
      return action
    }

    var expired: Bool { deadline.hasExpired(now: now) }
  }

  func testDefaults() {
    let defaults = HTTPTimeouts()
    XCTAssertEqual(defaults.header, .seconds(10))
    XCTAssertEqual(defaults.body, .seconds(30))
    XCTAssertEqual(defaults.idle, .seconds(30))
    XCTAssertEqual(defaults.sendNanoseconds, 30 * second)
    XCTAssertEqual(defaults.nanoseconds(for: .head), 10 * second)
    XCTAssertNil(defaults.nanoseconds(for: .none))
    XCTAssertEqual(timeouts.nanoseconds(for: .body), 3 * second + second / 2)
  }

  func testNewConnectionIsInTheHeaderPhaseFromTheStart() {
    var run = Run(timeouts: timeouts)
    XCTAssertEqual(run.machine.readPhase, .head)
    XCTAssertEqual(run.deadline.deadline, 1_000 + 2 * second)
    run.advance(2 * second - 1)
    XCTAssertFalse(run.expired)
    run.advance(1)
    XCTAssertTrue(run.expired)
  }

  func testTricklingBytesDoesNotExtendTheHeaderDeadline() {
    var run = Run(timeouts: timeouts)
    for byte in "GET / HTTP/1.1\r\nHo".utf8 {
      run.advance(second / 10)
      XCTAssertEqual(run.receive(String(decoding: [byte], as: UTF8.self)), .readMore)
    }
    XCTAssertEqual(run.machine.readPhase, .head)
    XCTAssertFalse(run.expired)
    run.advance(second / 5)
    XCTAssertTrue(run.expired, "1.8 s of trickling plus 0.2 s idle is past the 2 s header time-out")
    let action = run.machine.readTimedOut(now: 784_111_777)
    guard case .write(let bytes, let close) = action else { return XCTFail("\(action)") }
    XCTAssertTrue(close)
    let text = String(decoding: bytes, as: UTF8.self)
    XCTAssertTrue(text.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"), text)
    XCTAssertTrue(text.contains("Connection: close\r\n"))
    XCTAssertTrue(text.contains("Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"))
    XCTAssertTrue(text.contains(#""status":408"#))
    XCTAssertEqual(run.machine.writeCompleted(now: 0), .close)
    XCTAssertTrue(run.machine.isClosed)
  }

  func testBodyPhaseHasItsOwnDeadline() {
    var run = Run(timeouts: timeouts)
    run.advance(second)
    run.receive("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n")
    XCTAssertEqual(run.machine.readPhase, .body)
    XCTAssertEqual(run.deadline.deadline, run.now + 3 * second + second / 2)
    run.advance(3 * second)
    run.receive("12345")
    XCTAssertFalse(run.expired)
    run.advance(second / 2)
    XCTAssertTrue(run.expired)
    guard case .write(let bytes, true) = run.machine.readTimedOut(now: 0) else { return XCTFail() }
    XCTAssertTrue(String(decoding: bytes, as: UTF8.self).hasPrefix("HTTP/1.1 408 "))
  }

  func testNoTimeOutWhileTheApplicationWorks() {
    var run = Run(timeouts: timeouts)
    guard case .dispatch = run.receive("GET / HTTP/1.1\r\nHost: a\r\n\r\n") else { return XCTFail() }
    XCTAssertEqual(run.machine.readPhase, .none)
    XCTAssertNil(run.deadline.deadline)
    run.advance(1_000 * second)
    XCTAssertFalse(run.expired)
    XCTAssertEqual(run.machine.readTimedOut(now: 0), .none)
  }

  func testIdleKeepAliveConnectionClosesSilently() {
    var run = Run(timeouts: timeouts)
    run.receive("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    run.advance(second)
    XCTAssertEqual(run.answer(), .readMore)
    XCTAssertEqual(run.machine.readPhase, .idle)
    XCTAssertEqual(run.deadline.deadline, run.now + 5 * second)
    run.advance(5 * second)
    XCTAssertTrue(run.expired)
    XCTAssertEqual(run.machine.readTimedOut(now: 0), .close)
    XCTAssertTrue(run.machine.isClosed)
  }

  func testFirstByteOfTheNextRequestStartsItsHeaderDeadline() {
    var run = Run(timeouts: timeouts)
    run.receive("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    _ = run.answer()
    run.advance(4 * second)
    run.receive("G")
    XCTAssertEqual(run.machine.readPhase, .head)
    XCTAssertEqual(run.deadline.deadline, run.now + 2 * second)
  }

  func testDrainWaitsForAPartlyReceivedRequest() {
    var machine = HTTPConnectionStateMachine()
    XCTAssertEqual(
      machine.bytesReceived(bytes("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab"), now: 0), .readMore)
    XCTAssertEqual(machine.startDraining(), .none, "half a request must not be cut off")
    guard case .dispatch(let request) = machine.bytesReceived(bytes("cd"), now: 0) else { return XCTFail() }
    XCTAssertEqual(request.body, bytes("abcd"))
    guard case .write(let response, true) = machine.responseReady(HTTPResponse(), now: 0) else { return XCTFail() }
    XCTAssertTrue(String(decoding: response, as: UTF8.self).contains("Connection: close\r\n"))
    XCTAssertEqual(machine.writeCompleted(now: 0), .close)
  }

  func testDrainClosesAnIdleConnectionAtOnce() {
    var machine = HTTPConnectionStateMachine()
    XCTAssertEqual(machine.startDraining(), .close)
    XCTAssertTrue(machine.isClosed)
  }
}
