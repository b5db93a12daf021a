// The `request` fuzz target: bytes → the compute endpoints' own decoding and answer (`Compute.run`): JSON with the
// depth limit → object → `expr`, `at`, `wrt` → tensors with the element limit → compile → forward (and reverse).
//
// Built and run by scripts/fuzz, against an AdjointService compiled with -enable-testing. A thrown `Problem` is a
// correct answer; a trap, a memory error, a leak or a hang is a bug.
@testable import AdjointService

private let compute = Compute(limits: ServiceLimits())

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let body = Array(UnsafeBufferPointer(start: data, count: size))
  // Both endpoints: /v1/evaluate answers any output; /v1/gradient also reads `wrt` and needs a one-element output.
  _ = try? compute.run(.evaluate, body: body)
  _ = try? compute.run(.gradient, body: body)
  return 0
}
