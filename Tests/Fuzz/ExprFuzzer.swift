// The `expr` fuzz target: bytes → `ExprParser.parse` → `GraphCompiler.compile` → forward and reverse sweeps.
//
// Built and run by scripts/fuzz. Any thrown diagnostic is a correct answer; a trap, a memory error, a leak or a hang
// is a bug.
import AdjointEngine
import AdjointExpressions

/// The shape of an input, from its name's first letter, so that the fuzzer can pick shapes by renaming:
/// `x`, `d`, `h`, `l`, `p`, `t` are scalars; `y`, `a`, `e`, `i`, `m`, `q`, `u` have shape [3]; `z`, `b`, `f`, `j`,
/// `n`, `r`, `v` have shape [2, 3]; `w`, `c`, `g`, `k`, `o`, `s` and `_` have shape [3, 3]; a capital as its lower
/// case.
private func shape(of name: String) -> [Int] {
  let shapes: [[Int]] = [[], [3], [2, 3], [3, 3]]
  return shapes[Int(name.utf8.first ?? 0) % shapes.count]
}

/// Programs larger than this (in arena elements) are compiled but not run: the fuzzer would otherwise spend its time
/// allocating (`outer(outer(x, x), outer(x, x))` squares the size at each level). Huge intermediates are the
/// `request` target's concern, which runs everything the service would.
private let maxArenaElements = 1 << 20

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let source = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
  guard let graph = try? ExprParser.parse(source) else { return 0 }
  var shapes: [String: [Int]] = [:]
  var point: [String: Tensor] = [:]
  for (index, name) in graph.inputNames.enumerated() {
    let inputShape = shape(of: name)
    let count = inputShape.reduce(1, *)
    shapes[name] = inputShape
    point[name] = Tensor(
      shape: inputShape, scalars: (0..<count).map { Double($0 + index + 1) * 0.375 - 0.5 })
  }
  guard let program = try? GraphCompiler.compile(graph, inputShapes: shapes) else { return 0 }
  guard program.arenaCount <= maxArenaElements else { return 0 }

  let workspace = Workspace(program)
  workspace.setInputs(point)
  _ = workspace.evaluate()
  let (value, adjoints) = workspace.valueWithPullback()
  precondition(adjoints.count == program.inputs.count, "one adjoint per input")
  if value.count == 1 {
    // Forward-over-reverse on a scalar output: the dual-number arena and its reverse sweep.
    var direction: [Int: [Double]] = [:]
    for (index, binding) in program.inputs.enumerated() {
      direction[index] = [Double](repeating: 1, count: program.slots[binding.slot].count)
    }
    _ = workspace.hessianVectorProduct(direction: direction)
  }
  return 0
}
