// The `request` fuzz target: bytes → the compute endpoints' own decoding and answer (`Compute.run`): JSON with the
// depth limit → object → function, points and the product's fields → tensors with the element limit → compile (and
// the program cache) → the product's passes, fanned out over a small worker pool; and `POST /graphs`' registration.
//
// Built and run by scripts/fuzz, against an AdjointService compiled with -enable-testing. A thrown `Problem` is a
// correct answer; a trap, a memory error, a leak or a hang is a bug.
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
  return 0
}
