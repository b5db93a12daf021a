// The `request` fuzz target: bytes → the compute endpoints' own decoding and answer (`Compute.run`): JSON with the
// depth limit → object → function, points and the product's fields → tensors with the element limit → compile (and
// the program cache) → the product's passes, fanned out over a small worker pool; and `POST /graphs`' registration.
// Also differential: the JSON parse of matrices in slices of rows (from 16 bytes on, not 256 KiB; the slices run
// last first, on this thread: the pool's helpers would outlive an input and set off LeakSanitizer's check between
// inputs) must give exactly the one-thread parse's value or error.
//
// Built and run by scripts/fuzz, against an AdjointService compiled with -enable-testing. A thrown `Problem` is a
// correct answer; a trap, a memory error, a leak or a hang is a bug.
import AdjointJSON
@testable import AdjointCompute

#if canImport(Glibc)
  import Glibc
#endif

private let pool = WorkerPool(workers: 2, maxQueue: 16)
private let compute = Compute(
  limits: ServiceLimits(), cache: ProgramCache(budget: 16 << 20, workers: 2),
  registry: GraphRegistry(budget: 16 << 20), pool: pool)

/// Empties the caches when the process exits, before LeakSanitizer's own exit handler (registered first, so run
/// last) looks for leaks: it reported graphs held by the caches as leaked (the same run with the caches off reported
/// nothing; their references are probably kept in enum payloads with the case in spare pointer bits, which the leak
/// checker does not read as pointers).
@_cdecl("LLVMFuzzerInitialize")
public func initialize(
  _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
) -> CInt {
  atexit {
    compute.cache.removeAll()
    compute.registry.removeAll()
  }
  return 0
}

private let slicesInReverse: JSONParallelFor = { count, work in
  for k in (0..<count).reversed() { work(k) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let body = Array(UnsafeBufferPointer(start: data, count: size))
  // /evaluate answers any output; one more product, chosen by the input's length, reads its own fields (wrt,
  // cotangent, tangent, mode, eps), batches and layouts, and runs its own passes. A second's deadline bounds the
  // work of one input, as the server's does.
  let deadline = Deadline(seconds: 1)
  _ = try? compute.run(.evaluate, body: body, deadline: deadline)
  let products = Compute.Product.allCases
  _ = try? compute.run(products[size % products.count], body: body, deadline: deadline)
  if size % 11 == 0 { _ = try? compute.register(body: body) }
  let sequential = Result { () throws(JSONError) in try JSONParser.parse(body) }
  let sliced = Result { () throws(JSONError) in
    try JSONParser.parse(body, parallelFor: slicesInReverse, parallelMinimumBytes: 16)
  }
  if sliced != sequential { fatalError("the sliced parse gave \(sliced), the one-thread parse \(sequential)") }
  return 0
}
