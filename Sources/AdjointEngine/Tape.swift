// The eager way into the engine: PyTorch's implicit tape, TensorFlow's GradientTape. A `Tape` records every
// operation onto a `ProgramBuilder` (the instructions, plans and slots of a compiled program) and runs that one
// instruction forward at once, so a value is ready as soon as its operation is written. `gradient(of:wrt:)` runs the
// engine's reverse sweep over the recorded instructions, and `program(outputs:)` freezes the recording into a verified
// `Program` that replays the same code at new points, bit for bit.
//
// Design notes, for the cost of the tape itself (W1 of BENCHMARKS.md):
// - The values live in one manually managed buffer laid out as the program's arena (slot `s` at `slots[s].offset`),
//   so the executor's kernels, and its reverse sweep, run on it unchanged. The buffer grows by doubling: recording n
//   ops copies O(n) elements in all, never O(n²). Like the workspace's arenas, these pointers stay in this file.
// - An elementwise op on rank-0 operands skips the shape rule, whose answer is known (shape `[]`, no plan): it
//   appends its instruction with `ProgramBuilder.appendScalar` and computes its value with the same scalar rule
//   (`UnaryRule`, `BinaryRule`) the executor applies, so it allocates nothing beyond amortised array growth. Every
//   other op goes through `ProgramBuilder.apply` and `Executor.forward` of that instruction.
// - Scalar constants (`x * 1.5`) are deduplicated by the builder; a small direct-mapped cache in front of it saves
//   the hash lookup when a loop uses the same constant again.
// - The reverse sweep is the one a compiled replay of the recording runs, into an adjoint buffer the tape reuses: for
//   an all-scalar recording, `Executor.scalarReverse` over the recorded code; otherwise `Executor.reverse` over a
//   snapshot `Program` of the instructions up to the output (fused runs included), with an active mask from `wrt`.
// - `reset()` empties the tape but keeps its memory (Stan's `recover_all`); values carry the tape's epoch, so one
//   recorded before a reset is caught rather than misread.

/// Records operations as they run, computing each value at once, and differentiates what it recorded.
///
/// Values on the tape are ``Traced``: a variable (a leaf whose gradient can be asked for), a constant, or the result
/// of an operation. Operators and functions record as they compute; `gradient(of:wrt:)` then runs the reverse sweep.
///
/// ```swift
/// let tape = Tape()
/// let w = tape.variable(Tensor(shape: [3], scalars: [0.1, -0.2, 0.3]))
/// let b = tape.variable(0.5)
/// let x = tape.constant(Tensor(shape: [4, 3], scalars: (0..<12).map { Double($0) / 10 }))
/// let y = tape.constant(Tensor(shape: [4], scalars: [1, 2, 3, 4]))
/// let loss = ((x.matmul(w) + b - y) ^ 2).mean()
/// let g = tape.gradient(of: loss, wrt: [w, b])   // [dloss/dw (shape [3]), dloss/db (shape [])]
/// print(loss.value, g)
/// ```
///
/// A tape belongs to one thread. It keeps every recorded value until it is released or ``reset()``: record each
/// evaluation (a training step, say) on a new tape, or on the same tape after `reset()`, which keeps its memory. The
/// gradient is not itself recorded: tapes give first derivatives. Shape errors in operators and methods are
/// programming errors and stop the program with the shape rule's message; ``apply(_:_:_:)`` is the throwing form.
public final class Tape {
  // The stored properties the per-op path touches are `@exclusivity(unchecked)`: a tape is used from one thread
  // (it is not `Sendable`), and no access to one of them overlaps another access to it (none is passed `inout` to
  // code that could reach the tape again), so the dynamic exclusivity checks would only cost time on every op.

  @exclusivity(unchecked) private var builder = ProgramBuilder()
  /// The values of every slot, laid out as the program's arena, in a buffer of `capacity` elements. Every slot's
  /// value is written when the slot is created, so the memory past the used elements is never read.
  @exclusivity(unchecked) private var values: UnsafeMutablePointer<Double>
  @exclusivity(unchecked) private var capacity: Int
  /// Scratch for instructions that need it (reductions, softmax), forward and reverse.
  @exclusivity(unchecked) private var scratch: UnsafeMutablePointer<Double>
  @exclusivity(unchecked) private var scratchCapacity: Int
  /// The adjoints of the last reverse sweep, reused across calls.
  @exclusivity(unchecked) private var adjoints: UnsafeMutablePointer<Double>
  @exclusivity(unchecked) private var adjointCapacity: Int
  @exclusivity(unchecked) private var recording = true
  /// True while every slot holds one element and every instruction is elementwise, as `Program.allScalar` says:
  /// the reverse sweep then runs the executor's scalar loop over the recorded code, with slot `s` at offset `s`.
  @exclusivity(unchecked) private var allScalar = true
  /// The number of ``reset()`` calls: a value recorded before a reset is stale.
  @exclusivity(unchecked) fileprivate var epoch: UInt32 = 0
  /// The slots of the variables, in creation order: the inputs of the recorded program.
  private var variableSlots: [Int32] = []
  private var variableNames: Set<String> = []
  /// A direct-mapped cache of scalar constants: bit pattern and slot (-1: empty).
  private let constantCache: UnsafeMutablePointer<(bits: UInt64, slot: Int32)>
  private static let constantCacheSize = 64

  /// Creates an empty tape.
  ///
  /// - Parameter capacity: the number of operations (and of value elements) to make room for at once; the tape
  ///   grows as needed beyond it.
  public init(capacity: Int = 256) {
    self.capacity = Swift.max(capacity, 16)
    values = .allocate(capacity: self.capacity)
    builder.reserveCapacity(capacity)
    scratchCapacity = 16
    scratch = .allocate(capacity: scratchCapacity)
    scratch.initialize(repeating: 0, count: scratchCapacity)
    adjointCapacity = 16
    adjoints = .allocate(capacity: adjointCapacity)
    adjoints.initialize(repeating: 0, count: adjointCapacity)
    constantCache = .allocate(capacity: Self.constantCacheSize)
    constantCache.initialize(repeating: (0, -1), count: Self.constantCacheSize)
  }

  deinit {
    values.deallocate()
    scratch.deallocate()
    adjoints.deallocate()
    constantCache.deallocate()
  }

  // MARK: Leaves

  /// A variable: a leaf that records, whose gradient ``gradient(of:wrt:)`` can return. Variables are the inputs of
  /// ``program(outputs:)``, in creation order.
  ///
  /// ```swift
  /// let w = tape.variable(Tensor(shape: [2], scalars: [0.5, -1]), name: "w")
  /// ```
  ///
  /// - Parameters:
  ///   - value: the variable's value.
  ///   - name: its input name in ``program(outputs:)``; by default `v0`, `v1`, … (the first such name not taken).
  /// - Precondition: names are unique on a tape.
  public func variable(_ value: Tensor, name: String? = nil) -> Traced {
    var number = variableSlots.count
    while name == nil && variableNames.contains("v\(number)") { number += 1 }
    let name = name ?? "v\(number)"
    precondition(variableNames.insert(name).inserted, "the tape already has a variable named \(name)")
    let slot = Int32(builder.input(name, shape: value.shape).slot)
    variableSlots.append(slot)
    if value.count != 1 { allScalar = false }
    store(value.scalars, at: slot)
    return Traced(tape: self, slot: slot)
  }

  /// A rank-0 variable.
  ///
  /// ```swift
  /// let b = tape.variable(0.5)
  /// ```
  public func variable(_ value: Double, name: String? = nil) -> Traced { variable(Tensor(value), name: name) }

  /// A constant: a value with no gradient. Equal rank-0 constants share one slot.
  ///
  /// ```swift
  /// let x = tape.constant(Tensor(shape: [2], scalars: [1, 2]))
  /// ```
  public func constant(_ value: Tensor) -> Traced {
    let before = builder.slots.count
    let slot = Int32(builder.constant(value).slot)
    if builder.slots.count > before {
      store(value.scalars, at: slot)
      if value.count != 1 { allScalar = false }
    }
    return Traced(tape: self, slot: slot)
  }

  /// A rank-0 constant.
  public func constant(_ value: Double) -> Traced { Traced(tape: self, slot: scalarConstant(value)) }

  /// The slot of a rank-0 constant, through the cache.
  @inline(__always)
  func scalarConstant(_ value: Double) -> Int32 {
    let bits = value.bitPattern
    let index = Int(truncatingIfNeeded: (bits &* 0x9E37_79B9_7F4A_7C15) >> 58)
    let entry = constantCache[index]
    if entry.bits == bits && entry.slot >= 0 { return entry.slot }
    let slot = constant(Tensor(value)).slot
    constantCache[index] = (bits, slot)
    return slot
  }

  // MARK: Recording

  /// True outside ``withoutRecording(_:)``.
  public var isRecording: Bool { recording }

  /// Runs `body` with recording off: operations compute their values but record nothing, and their results are
  /// constants (no gradient flows through them). Regions nest.
  ///
  /// ```swift
  /// let scale = tape.withoutRecording { w.sum() }   // a constant with w's sum as its value
  /// ```
  public func withoutRecording<Result, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
    let saved = recording
    recording = false
    defer { recording = saved }
    return try body()
  }

  /// `x` with its gradient stopped: the same value, through which no gradient flows.
  ///
  /// ```swift
  /// let y = x * tape.stopGradient(x)   // dy/dx = x, not 2x
  /// ```
  public func stopGradient(_ x: Traced) -> Traced { unary(.stopGradient, x) }

  /// Applies any op to operands on this tape, computing its value at once; the throwing form of the operators and
  /// methods of ``Traced``.
  ///
  /// ```swift
  /// let s = try tape.apply(.sum, [x], OpAttributes(axes: [1], keepdims: true))
  /// ```
  ///
  /// - Throws: ``ShapeError`` when the operands' shapes or the attributes do not fit `op`.
  public func apply(_ op: OpCode, _ operands: [Traced], _ attributes: OpAttributes = OpAttributes()) throws(ShapeError)
    -> Traced
  {
    for operand in operands { precondition(owns(operand), "\(op.name): \(Self.foreign)") }
    if Self.hasScalarPath(op), operands.count == op.arity, operands.allSatisfy({ isRank0($0.slot) }) {
      switch operands.count {
      case 1: return unary(op, operands[0])
      case 2: return binary(op, operands[0], operands[1])
      default: return select(operands[0], operands[1], operands[2])
      }
    }
    return try record(op, operands.map(\.slot), attributes)
  }

  /// True when `x` was recorded on this tape since its last reset.
  @inline(__always)
  private func owns(_ x: Traced) -> Bool { x.tape === self && x.epoch == epoch }

  private static let foreign = "a value is on another tape, or was recorded before the tape's last reset()"

  /// True for the ops whose rank-0 form skips the shape rule: elementwise ops and stop_gradient, except pow, which
  /// the builder may rewrite (x^2 to x·x).
  @inline(__always)
  private static func hasScalarPath(_ op: OpCode) -> Bool {
    (op.isElementwise || op == .stopGradient) && op != .pow
  }

  @inline(__always)
  private func isRank0(_ slot: Int32) -> Bool { builder.slots[Int(slot)].shape.isEmpty }

  /// The arena offset of a rank-0 slot, or -1 for a slot of another rank.
  @inline(__always)
  private func scalarOffset(_ slot: Int32) -> Int {
    let index = Int(slot)
    return builder.slots[index].shape.isEmpty ? builder.slots[index].offset : -1
  }

  /// Appends a rank-0 elementwise instruction whose value is already computed; with recording off, returns the value
  /// as a constant instead.
  @inline(__always)
  private func appendScalar(_ op: OpCode, _ value: Double, _ a: Int32, _ b: Int32, _ c: Int32 = -1) -> Traced {
    guard recording else { return Traced(tape: self, slot: scalarConstant(value)) }
    let offset = builder.arenaElements
    reserve(offset + 1)
    values[offset] = value
    return Traced(tape: self, slot: builder.appendScalar(op, a, b, c))
  }

  /// Records a unary elementwise op (or stop_gradient) and computes its value.
  @inline(__always)
  func unary(_ op: OpCode, _ x: Traced) -> Traced {
    precondition(owns(x), "\(op.name): \(Self.foreign)")
    let a = scalarOffset(x.slot)
    guard a >= 0 else { return trapping { () throws(ShapeError) in try record(op, [x.slot]) } }
    if op == .stopGradient {
      if recording { allScalar = false }
      return appendScalar(op, values[a], x.slot, -1)
    }
    return appendScalar(op, UnaryRule.value(op, values[a]), x.slot, -1)
  }

  /// Records a binary elementwise op or a comparison and computes its value.
  @inline(__always)
  func binary(_ op: OpCode, _ x: Traced, _ y: Traced) -> Traced {
    precondition(owns(x) && owns(y), "\(op.name): \(Self.foreign)")
    let a = scalarOffset(x.slot)
    let b = scalarOffset(y.slot)
    guard a >= 0, b >= 0, op != .pow else {
      return trapping { () throws(ShapeError) in try record(op, [x.slot, y.slot]) }
    }
    return appendScalar(op, BinaryRule.value(op, values[a], values[b]), x.slot, y.slot)
  }

  /// Records a binary op whose second operand is a constant.
  @inline(__always)
  func binary(_ op: OpCode, _ x: Traced, _ y: Double) -> Traced {
    binary(op, x, Traced(tape: self, slot: scalarConstant(y)))
  }

  /// Records a binary op whose first operand is a constant.
  @inline(__always)
  func binary(_ op: OpCode, _ x: Double, _ y: Traced) -> Traced {
    binary(op, Traced(tape: self, slot: scalarConstant(x)), y)
  }

  /// Records `where(condition, a, b)` and computes its value.
  func select(_ condition: Traced, _ x: Traced, _ y: Traced) -> Traced {
    precondition(owns(condition) && owns(x) && owns(y), "where: \(Self.foreign)")
    let (c, a, b) = (scalarOffset(condition.slot), scalarOffset(x.slot), scalarOffset(y.slot))
    guard c >= 0, a >= 0, b >= 0 else {
      return trapping { () throws(ShapeError) in try record(.where, [condition.slot, x.slot, y.slot]) }
    }
    return appendScalar(.where, values[c] != 0 ? values[a] : values[b], condition.slot, x.slot, y.slot)
  }

  /// Records any op through the builder's shape rule and runs its instructions forward; with recording off, computes
  /// the value in a one-instruction program and returns it as a constant.
  func record(_ op: OpCode, _ operands: [Int32], _ attributes: OpAttributes = OpAttributes()) throws(ShapeError)
    -> Traced
  {
    guard recording else { return constant(try detachedValue(op, operands, attributes)) }
    let first = builder.instructionCount
    let result = try builder.apply(op, operands.map { ProgramBuilder.Value(slot: Int($0)) }, attributes)
    reserve(builder.arenaElements)
    reserveScratch(builder.scratchElements)
    for index in first..<builder.instructionCount {
      let instruction = builder.code[index]
      if !instruction.op.isElementwise || builder.slots[Int(instruction.out)].count != 1 { allScalar = false }
      Executor.forward(instruction, builder.slots, builder.plans, values, scratch)
    }
    return Traced(tape: self, slot: Int32(result.slot))
  }

  /// The value of `op` applied to the operands' values, computed by a program of one instruction.
  private func detachedValue(_ op: OpCode, _ operands: [Int32], _ attributes: OpAttributes) throws(ShapeError)
    -> Tensor
  {
    var mini = ProgramBuilder()
    let inputs = operands.enumerated().map { mini.input("x\($0.offset)", shape: builder.slots[Int($0.element)].shape) }
    let out = try mini.apply(op, inputs, attributes)
    let program: Program
    do {
      program = try mini.build(outputs: [("out", out)])
    } catch {
      preconditionFailure("the one-instruction program of \(op.name) is invalid: \(error)")
    }
    let workspace = Workspace(program)
    for (index, slot) in operands.enumerated() { workspace.setInput(index, Array(elements(of: slot))) }
    workspace.forward()
    return workspace.value(ofSlot: out.slot)
  }

  /// Runs `body`, stopping the program with the shape rule's message if it throws.
  @inline(never)
  private func trapping(_ body: () throws(ShapeError) -> Traced) -> Traced {
    do {
      return try body()
    } catch {
      preconditionFailure(error.message)
    }
  }

  // MARK: Storage

  /// Makes room for `count` value elements, doubling the buffer.
  @inline(__always)
  private func reserve(_ count: Int) {
    if count > capacity { grow(&values, &capacity, to: count) }
  }

  @inline(__always)
  private func reserveScratch(_ count: Int) {
    if count > scratchCapacity { grow(&scratch, &scratchCapacity, to: count) }
  }

  /// Replaces `buffer` by one of at least `count` (and at least twice the old capacity) elements, keeping the old
  /// elements. (Doubles are trivial: the new elements may be written without being initialised first.)
  @inline(never)
  private func grow(_ buffer: inout UnsafeMutablePointer<Double>, _ capacity: inout Int, to count: Int) {
    let newCapacity = Swift.max(count, 2 * capacity)
    let newBuffer = UnsafeMutablePointer<Double>.allocate(capacity: newCapacity)
    newBuffer.moveInitialize(from: buffer, count: capacity)
    buffer.deallocate()
    buffer = newBuffer
    capacity = newCapacity
  }

  private func store(_ scalars: [Double], at slot: Int32) {
    let info = builder.slots[Int(slot)]
    reserve(info.offset + info.count)
    scalars.withUnsafeBufferPointer { source in
      if let base = source.baseAddress { (values + info.offset).update(from: base, count: info.count) }
    }
  }

  private func elements(of slot: Int32) -> UnsafeBufferPointer<Double> {
    let info = builder.slots[Int(slot)]
    return UnsafeBufferPointer(start: values + info.offset, count: info.count)
  }

  /// The value of `x`.
  func value(of x: Traced) -> Tensor {
    precondition(owns(x), Self.foreign)
    return Tensor(shape: builder.slots[Int(x.slot)].shape, scalars: Array(elements(of: x.slot)))
  }

  /// The shape of `x`.
  func shape(of x: Traced) -> [Int] {
    precondition(owns(x), Self.foreign)
    return builder.slots[Int(x.slot)].shape
  }

  /// The first element of `x`'s value.
  func firstElement(of x: Traced) -> Double? {
    precondition(owns(x), Self.foreign)
    let info = builder.slots[Int(x.slot)]
    return info.count == 1 ? values[info.offset] : nil
  }

  // MARK: Derivatives

  /// The gradient of a one-element output with respect to the given values: the reverse sweep seeded with 1.
  ///
  /// ```swift
  /// let x = tape.variable(0.5)
  /// let y = sin(x) * x
  /// let g = tape.gradient(of: y, wrt: [x])[0].scalar!   // cos(0.5)·0.5 + sin(0.5)
  /// ```
  ///
  /// - Parameters:
  ///   - output: a value with one element (shape `[]`, `[1]`, …).
  ///   - wrt: variables, usually; an intermediate value gives the gradient with respect to that value, everything
  ///     before it held fixed.
  /// - Returns: one gradient per element of `wrt`, of its shape: zero for a value the output does not depend on (or
  ///   depends on only through comparisons and stopped gradients).
  /// - Precondition: `output` has one element, and every value is on this tape.
  public func gradient(of output: Traced, wrt: [Traced]) -> [Tensor] {
    let shape = shape(of: output)
    precondition(Tensor.elementCount(shape) == 1, "gradient(of:wrt:) needs an output with one element, not \(shape)")
    return pullback(output, wrt) { _ in 1 }
  }

  /// A vector-Jacobian product: the reverse sweep from `output` seeded with the cotangent `seed`.
  ///
  /// ```swift
  /// let v = tape.variable(Tensor(shape: [2], scalars: [1, 2]))
  /// let vjp = tape.gradient(of: v * v, wrt: [v], seed: Tensor(shape: [2], scalars: [1, 0]))[0]   // [2, 0]
  /// ```
  ///
  /// - Precondition: `seed` has the output's shape, and every value is on this tape.
  public func gradient(of output: Traced, wrt: [Traced], seed: Tensor) -> [Tensor] {
    precondition(seed.shape == shape(of: output), "the seed has shape \(seed.shape), the output \(shape(of: output))")
    return seed.scalars.withUnsafeBufferPointer { seed in pullback(output, wrt) { seed[$0] } }
  }

  private func pullback(_ output: Traced, _ wrt: [Traced], seed: (Int) -> Double) -> [Tensor] {
    precondition(owns(output), "the output: \(Self.foreign)")
    for x in wrt { precondition(owns(x), "a value in wrt: \(Self.foreign)") }
    let outputSlot = Int(output.slot)
    let end = instructionCount(upTo: outputSlot)
    if allScalar { return scalarPullback(outputSlot, end, wrt, seed: seed(0)) }
    // The values of `wrt` are outputs too, so that a fused run of the executor keeps their adjoints in the arena.
    let program = builder.snapshot(
      instructionCount: end,
      outputs: [Program.Binding(name: "out", slot: outputSlot)]
        + wrt.map { Program.Binding(name: "wrt", slot: Int($0.slot)) })
    #if DEBUG
      do { try program.verify() } catch { preconditionFailure("the tape's program is invalid: \(error)") }
    #endif
    let out = program.slots[outputSlot]
    let used = out.offset + out.count
    if used > adjointCapacity { grow(&adjoints, &adjointCapacity, to: used) }
    adjoints.update(repeating: 0, count: used)
    for i in 0..<out.count { adjoints[out.offset + i] = seed(i) }
    let active = Executor.activeSlots(program, from: wrt.map { Int($0.slot) })
    reserveScratch(program.scratchCount)
    Executor.reverse(program, values, adjoints, scratch, active: active)
    return wrt.map { x in
      let info = program.slots[Int(x.slot)]
      guard info.offset + info.count <= used else { return Tensor(repeating: 0, shape: info.shape) }
      return Tensor(
        shape: info.shape, scalars: Array(UnsafeBufferPointer(start: adjoints + info.offset, count: info.count)))
    }
  }

  /// The reverse sweep of an all-scalar recording: the executor's scalar loop over the first `end` instructions.
  private func scalarPullback(_ outputSlot: Int, _ end: Int, _ wrt: [Traced], seed: Double) -> [Tensor] {
    let used = outputSlot + 1
    if used > adjointCapacity { grow(&adjoints, &adjointCapacity, to: used) }
    adjoints.update(repeating: 0, count: used)
    adjoints[outputSlot] = seed
    Executor.scalarReverse(
      end == builder.instructionCount ? builder.code : Array(builder.code[..<end]), values, adjoints)
    return wrt.map { x in
      let slot = Int(x.slot)
      return Tensor(shape: builder.slots[slot].shape, scalars: [slot < used ? adjoints[slot] : 0])
    }
  }

  /// The number of instructions that define slots up to `slot` (instructions define slots in increasing order).
  private func instructionCount(upTo slot: Int) -> Int {
    builder.code.withUnsafeBufferPointer { code in
      var (low, high) = (0, code.count)
      while low < high {
        let middle = (low + high) / 2
        if Int(code[middle].out) <= slot { low = middle + 1 } else { high = middle }
      }
      return low
    }
  }

  // MARK: Compiling

  /// Freezes what was recorded into a verified program whose inputs are the tape's variables, in creation order,
  /// and whose outputs are the given values (named `out0`, `out1`, …). Replaying it at the recorded point gives the
  /// recorded values and gradients bit for bit; at other points, what recording again would give (as long as the
  /// recording took no branch on a value).
  ///
  /// ```swift
  /// let program = try tape.program(outputs: [loss])
  /// let workspace = Workspace(program)
  /// workspace.setInput(tape.inputIndex(of: w)!, [0.2, 0.1, 0])
  /// let (value, gradients) = workspace.valueWithPullback()
  /// ```
  ///
  /// - Throws: ``ProgramError`` if the recording breaks an invariant (a bug).
  public func program(outputs: [Traced]) throws(ProgramError) -> Program {
    for output in outputs { precondition(owns(output), "an output: \(Self.foreign)") }
    return try builder.build(
      outputs: outputs.enumerated().map { ("out\($0.offset)", ProgramBuilder.Value(slot: Int($0.element.slot))) })
  }

  /// The index of a variable among the inputs of ``program(outputs:)``, or nil if `x` is not a variable.
  public func inputIndex(of x: Traced) -> Int? {
    guard owns(x) else { return nil }
    return variableSlots.firstIndex(of: x.slot)
  }

  /// The number of instructions recorded so far.
  public var instructionCount: Int { builder.instructionCount }

  /// Forgets everything recorded, keeping the memory for the next recording (Stan's `recover_all`): a loop that
  /// records a new evaluation each time runs without allocating once the buffers are large enough.
  ///
  /// ```swift
  /// let tape = Tape()
  /// var w0 = 0.0
  /// for _ in 0..<100 {
  ///   tape.reset()
  ///   let w = tape.variable(w0)
  ///   let loss = (w - 3) ^ 2
  ///   w0 -= 0.1 * tape.gradient(of: loss, wrt: [w])[0].scalar!
  /// }
  /// ```
  ///
  /// Values recorded before the reset are stale: using one stops the program.
  public func reset() {
    builder.removeAll()
    variableSlots.removeAll(keepingCapacity: true)
    variableNames.removeAll(keepingCapacity: true)
    constantCache.update(repeating: (0, -1), count: Self.constantCacheSize)
    allScalar = true
    epoch &+= 1
  }
}

@available(*, unavailable, message: "a Tape belongs to one thread")
extension Tape: Sendable {}

/// A value on a ``Tape``: a variable, a constant, or the result of a recorded operation.
///
/// A `Traced` is a small handle (the tape and a slot); its ``value`` was computed when its operation was recorded.
/// Operators (`+ - * / ^`, with a `Double` on either side) and functions (`sin(x)`, `x.sum()`, `x.matmul(w)`, …)
/// record as they compute.
///
/// ```swift
/// let tape = Tape()
/// let x = tape.variable(2.0)
/// let y = x * x + 3 * x   // 10
/// let dy = tape.gradient(of: y, wrt: [x])[0]   // 2x + 3 = 7
/// ```
public struct Traced: CustomStringConvertible {
  /// The tape that recorded the value.
  public let tape: Tape
  /// The slot of the value in the recorded program.
  let slot: Int32
  /// The tape's epoch when the value was recorded.
  let epoch: UInt32

  init(tape: Tape, slot: Int32) {
    self.tape = tape
    self.slot = slot
    self.epoch = tape.epoch
  }

  /// The value, computed when the operation was recorded.
  public var value: Tensor { tape.value(of: self) }

  /// The shape of the value.
  public var shape: [Int] { tape.shape(of: self) }

  /// The single element of a value that has exactly one element, else nil.
  public var scalar: Double? { tape.firstElement(of: self) }

  /// The same value, through which no gradient flows.
  public func stopGradient() -> Traced { tape.stopGradient(self) }

  public var description: String { "Traced(%\(slot): \(value))" }
}

@available(*, unavailable, message: "a Tape belongs to one thread")
extension Traced: Sendable {}
