import AdjointEngine
import MallocCounter
import XCTest

/// A warm replay of a compiled program allocates nothing on the heap. Allocations are counted by the `MallocCounter`
/// shim, which interposes malloc and its siblings (glibc only) and counts them per thread.
final class AllocationTests: XCTestCase {
  /// The number of heap allocations `body` makes on this thread.
  private func allocations(_ body: () -> Void) -> UInt64 {
    let before = malloc_counter_thread_allocations()
    body()
    return malloc_counter_thread_allocations() - before
  }

  override func setUpWithError() throws {
    try XCTSkipUnless(malloc_counter_is_available(), "allocations are counted with glibc only")
  }

  /// W1 of BENCHMARKS.md: from x = x0, K times t = x·1.5; u = sin(t); v = u·x; x = v + y.
  private func scalarChain(iterations: Int) throws -> Program {
    var builder = ProgramBuilder()
    let x0 = builder.input("x0", shape: [])
    let y = builder.input("y", shape: [])
    let c = builder.constant(1.5)
    var x = x0
    for _ in 0..<iterations {
      let t = try builder.apply(.mul, x, c)
      let u = try builder.apply(.sin, t)
      let v = try builder.apply(.mul, u, x)
      x = try builder.apply(.add, v, y)
    }
    return try builder.build(outputs: [("out", x)])
  }

  /// The counter is live: without it the zero-allocation test below would pass vacuously.
  func testTheCounterSeesAllocations() {
    var arrays: [[Int]] = []
    let count = allocations {
      for i in 0..<100 { arrays.append([i, i + 1]) }
    }
    XCTAssertGreaterThanOrEqual(count, 100)
    XCTAssertEqual(arrays.count, 100)
  }

  func testWarmScalarReplayAllocatesNothing() throws {
    let program = try scalarChain(iterations: 50)
    let ws = Workspace(program)
    ws.setInput(0, scalar: 0.3)
    ws.setInput(1, scalar: 0.7)
    let (outSlot, x0Slot, ySlot) = (program.outputs[0].slot, program.inputs[0].slot, program.inputs[1].slot)
    // Warm up: the first replay may set up what later ones reuse.
    ws.forward()
    ws.backward()
    let expected = (ws.scalarValue(ofSlot: outSlot), ws.scalarAdjoint(ofSlot: x0Slot), ws.scalarAdjoint(ofSlot: ySlot))
    var checksum = 0.0
    let count = allocations {
      for i in 0..<100 {
        ws.setInput(0, scalar: 0.3 + Double(i % 2) * 1e-3)
        ws.forward()
        ws.backward()
        checksum += ws.scalarValue(ofSlot: outSlot) + ws.scalarAdjoint(ofSlot: x0Slot) + ws.scalarAdjoint(ofSlot: ySlot)
      }
    }
    XCTAssertEqual(count, 0, "heap allocations in 100 warm replays (forward + backward) of the scalar chain")
    XCTAssertTrue(checksum.isFinite)
    // The replays computed the same thing as the first.
    ws.setInput(0, scalar: 0.3)
    ws.forward()
    ws.backward()
    XCTAssertEqual(ws.scalarValue(ofSlot: outSlot), expected.0)
    XCTAssertEqual(ws.scalarAdjoint(ofSlot: x0Slot), expected.1)
    XCTAssertEqual(ws.scalarAdjoint(ofSlot: ySlot), expected.2)
  }

  /// Reports (does not assert) the allocations of a warm replay of a tensor program; asserts only that replays
  /// agree.
  func testWarmTensorReplayAllocationsAreReported() throws {
    var rng = SeededGenerator("allocations")
    let inputs: Inputs = [
      "X": Domain.uniform(-1...1).sample(&rng, [16, 8]), "W": Domain.uniform(-1...1).sample(&rng, [8, 4]),
      "b": Domain.uniform(-1...1).sample(&rng, [4]), "y": Domain.uniform(-1...1).sample(&rng, [16, 4]),
    ]
    let program = try compile("h = tanh(X @ W + b); mean((softmax(h) - y) ^ 2) + sum(max(h, axis=1))", inputs)
    let ws = workspace(program, inputs)
    ws.forward()
    ws.backward()
    let first = (ws.scalarValue(ofSlot: program.outputs[0].slot), ws.adjoint(ofSlot: program.inputs[1].slot))
    let count = allocations {
      for _ in 0..<100 {
        ws.forward()
        ws.backward()
      }
    }
    print("AllocationTests: \(count) heap allocations in 100 warm replays of a tensor program")
    XCTAssertEqual(ws.scalarValue(ofSlot: program.outputs[0].slot), first.0)
    XCTAssertEqual(ws.adjoint(ofSlot: program.inputs[1].slot), first.1)
  }
}
