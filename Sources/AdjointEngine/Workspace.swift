// A workspace owns the memory of evaluating one program: arenas of values, adjoints and scratch laid out as the
// program's slots say. It is allocated once per program and reused across replays, so a warm replay allocates
// nothing. Unsafe pointers stay inside the engine's Executor and Ops files and this one.

/// Runs `body(0)`, …, `body(count - 1)`, perhaps on several threads at once, and returns when all have returned.
public typealias ParallelFor = @Sendable (_ count: Int, _ body: @escaping @Sendable (Int) -> Void) -> Void

/// The arenas of one evaluation, generic over the number type.
final class Arena<T: ADScalar> {
  let program: Program
  let values: UnsafeMutablePointer<T>
  let adjoints: UnsafeMutablePointer<T>
  let scratch: UnsafeMutablePointer<T>
  let registers: UnsafeMutablePointer<T>
  /// For a scalar program over doubles: the derivatives the forward sweep keeps for the reverse sweep (sin, cos).
  let derivatives: UnsafeMutablePointer<Double>?
  /// Where the sweeps run a large matrix product in parts (`nil`: all on the calling thread).
  var parallel: ParallelFor?
  private let count: Int
  private let scratchCount: Int
  private let registerCount: Int

  init(_ program: Program) {
    _ = Executor.blasSingleThreaded
    self.program = program
    count = max(program.arenaCount, 1)
    scratchCount = max(program.scratchCount, 1)
    values = .allocate(capacity: count)
    values.initialize(repeating: T(0), count: count)
    adjoints = .allocate(capacity: count)
    adjoints.initialize(repeating: T(0), count: count)
    scratch = .allocate(capacity: scratchCount)
    scratch.initialize(repeating: T(0), count: scratchCount)
    registerCount = max(program.fusionScratchCount, 1)
    registers = .allocate(capacity: registerCount)
    registers.initialize(repeating: T(0), count: registerCount)
    if T.self == Double.self && program.allScalar {
      derivatives = .allocate(capacity: count)
      derivatives?.initialize(repeating: 0, count: count)
    } else {
      derivatives = nil
    }
    for constant in program.constants {
      let base = values + program.slots[constant.slot].offset
      for (i, scalar) in constant.scalars.enumerated() { base[i] = T(scalar) }
    }
  }

  deinit {
    values.deinitialize(count: count)
    values.deallocate()
    adjoints.deinitialize(count: count)
    adjoints.deallocate()
    scratch.deinitialize(count: scratchCount)
    scratch.deallocate()
    registers.deinitialize(count: registerCount)
    registers.deallocate()
    derivatives?.deallocate()
  }

  func forward() {
    Executor.forward(program, values, scratch, registers, derivatives: derivatives, parallel: parallel)
  }

  /// Zeroes the adjoints the sweep will accumulate into, seeds output `output` with `seed(i)` and runs the reverse
  /// sweep.
  func reverse(output: Int, active: ActiveSet, seed: (Int) -> T) {
    prepareReverse(output: output, active: active, seed: seed)
    Executor.reverse(
      program, values, adjoints, scratch, registers, active: active.slots, derivatives: derivatives, parallel: parallel)
  }

  /// The forward sweep and the reverse sweep of output `output` seeded with ones, in one pass over memory.
  ///
  /// - Precondition: `output` is the program's `fusedGradientOutput`.
  func forwardAndReverse(output: Int, active: ActiveSet) {
    prepareReverse(output: output, active: active) { _ in T(1) }
    Executor.fusedReverse(program.fusedGroups[0], program, values, adjoints, registers, active.slots, full: true)
  }

  private func prepareReverse(output: Int, active: ActiveSet, seed: (Int) -> T) {
    for k in active.zeroRanges.indices {  // not `for range in`: a generic iterator allocates in debug builds
      (adjoints + active.zeroRanges[k].lowerBound).update(repeating: T(0), count: active.zeroRanges[k].count)
    }
    let slot = program.slots[program.outputs[output].slot]
    for i in 0..<slot.count { adjoints[slot.offset + i] = seed(i) }
  }

  func read(_ arena: UnsafeMutablePointer<T>, slot: Int) -> UnsafeBufferPointer<T> {
    let info = program.slots[slot]
    return UnsafeBufferPointer(start: arena + info.offset, count: info.count)
  }

  func write(_ slot: Int, _ element: (Int) -> T) {
    let info = program.slots[slot]
    for i in 0..<info.count { values[info.offset + i] = element(i) }
  }
}

/// The slots whose adjoints a reverse sweep wants, for one choice of inputs to differentiate, and the arena ranges
/// it must zero first: active slots and outputs, less the slots that fused runs keep in registers, merged where they
/// touch.
struct ActiveSet {
  let slots: [Bool]
  let zeroRanges: [Range<Int>]

  init(_ program: Program, wrt inputs: [Int]) {
    slots = Executor.activeSlots(program, wrt: inputs)
    var ranges: [Range<Int>] = []
    for (slot, info) in program.slots.enumerated()
    where (slots[slot] || program.isOutput(slot)) && !program.isFusedAway(slot) && info.count > 0
      && program.adjointStorers[slot] < 0
    {
      if let last = ranges.last, last.upperBound == info.offset {
        ranges[ranges.count - 1] = last.lowerBound..<(info.offset + info.count)
      } else {
        ranges.append(info.offset..<(info.offset + info.count))
      }
    }
    zeroRanges = ranges
  }
}

/// The mutable state of evaluating a ``Program``: the values and adjoints of every slot.
///
/// A workspace belongs to one thread at a time; workers keep one per program and reuse it, and a warm replay
/// allocates nothing.
///
/// ```swift
/// let ws = Workspace(program)
/// ws.setInput(0, scalar: 1.5)
/// ws.forward()
/// ws.backward()
/// let g = ws.scalarAdjoint(ofSlot: program.inputs[0].slot)
/// ```
public final class Workspace {
  /// The program this workspace evaluates.
  public let program: Program
  let arena: Arena<Double>
  private var activeInputs: [Int]
  /// Every input index, made once: `wrt: nil` then allocates nothing (and compares equal by identity).
  private let allInputs: [Int]
  private var active: ActiveSet
  private var dualArena: Arena<Dual>?
  /// The Hessian colouring for the last `wrt` asked for (nil inside: the dense path).
  var coloring: (inputs: [Int], coloring: HessianColoring?)?
  /// Whether ``forward()`` also computes the gradient of `program.fusedGradientOutput` (for the inputs last
  /// differentiated), in the same pass: set while each forward sweep is followed by that gradient's backward sweep.
  private var anticipatesGradient = false
  /// Whether the adjoint arena holds the gradient that the last ``forward()`` computed ahead of ``backward()``.
  var gradientAhead = false

  /// Where the forward and reverse sweeps over doubles run the two halves of the rows of a large matrix product (at
  /// least 2^22 multiply-adds), for instance at once over a pool's idle threads. The results are the same, bit for
  /// bit, whichever threads run the halves; they may differ in the last bits from those of `nil` (the default: each
  /// product whole, on the calling thread), as BLAS blocks the halves differently.
  public var parallelFor: ParallelFor? {
    get { arena.parallel }
    set { arena.parallel = newValue }
  }

  /// Allocates arenas for `program` and writes its constants.
  public init(_ program: Program) {
    self.program = program
    arena = Arena(program)
    allInputs = Array(program.inputs.indices)
    activeInputs = allInputs
    active = ActiveSet(program, wrt: activeInputs)
  }

  // MARK: Inputs

  /// Writes the elements of input number `index` (in `program.inputs` order).
  ///
  /// - Precondition: `scalars.count` equals the input's element count.
  public func setInput(_ index: Int, _ scalars: [Double]) {
    let slot = program.slots[program.inputs[index].slot]
    precondition(scalars.count == slot.count, "input \(program.inputs[index].name) takes \(slot.count) elements")
    scalars.withUnsafeBufferPointer { source in
      if let base = source.baseAddress { (arena.values + slot.offset).update(from: base, count: slot.count) }
    }
  }

  /// Writes one scalar input without allocating.
  public func setInput(_ index: Int, scalar: Double) {
    let slot = program.slots[program.inputs[index].slot]
    precondition(slot.count == 1, "input \(program.inputs[index].name) is not a scalar")
    arena.values[slot.offset] = scalar
  }

  /// Writes every input from a dictionary keyed by input name.
  ///
  /// - Precondition: every input has a value of its declared shape.
  public func setInputs(_ inputs: [String: Tensor]) {
    for (index, binding) in program.inputs.enumerated() {
      guard let tensor = inputs[binding.name] else { preconditionFailure("no value for input \(binding.name)") }
      precondition(tensor.shape == program.slots[binding.slot].shape, "input \(binding.name) has the wrong shape")
      setInput(index, tensor.scalars)
    }
  }

  /// The current value of every input, in `program.inputs` order.
  public var inputValues: [Tensor] { program.inputs.map { value(ofSlot: $0.slot) } }

  // MARK: Sweeps

  /// Runs the program forward, filling every slot's value.
  ///
  /// When the program is one fused run ending in a scalar `sum` and the last backward sweep took that output's
  /// gradient, this sweep computes the gradient too, in the same pass over memory, and the next matching
  /// ``backward(output:seed:wrt:)`` has nothing left to do. A forward sweep that no backward sweep follows stops that.
  public func forward() {
    if gradientAhead { anticipatesGradient = false }  // the gradient computed ahead went unused
    if anticipatesGradient, let output = program.fusedGradientOutput {
      arena.forwardAndReverse(output: output, active: active)
      gradientAhead = true
    } else {
      arena.forward()
      gradientAhead = false
    }
  }

  /// Runs the reverse sweep over the values of the last ``forward()``.
  ///
  /// - Parameters:
  ///   - output: the index of the output in `program.outputs`.
  ///   - seed: the cotangent of the output; `nil` seeds every element with 1 (the gradient of a scalar output).
  ///   - wrt: the indices of the inputs whose gradients are wanted; `nil` means all. Work that leads only to other
  ///     inputs is skipped.
  public func backward(output: Int = 0, seed: [Double]? = nil, wrt: [Int]? = nil) {
    setActive(wrt)
    let gradient = seed == nil && output == program.fusedGradientOutput
    defer {
      anticipatesGradient = gradient
      gradientAhead = false
    }
    if gradient && gradientAhead { return }
    if let seed {
      precondition(seed.count == program.slots[program.outputs[output].slot].count, "the cotangent has the wrong size")
      seed.withUnsafeBufferPointer { seed in arena.reverse(output: output, active: active) { seed[$0] } }
    } else {
      arena.reverse(output: output, active: active) { _ in 1 }
    }
  }

  private func setActive(_ wrt: [Int]?) {
    let inputs = wrt ?? allInputs
    if inputs != activeInputs {
      activeInputs = inputs
      active = ActiveSet(program, wrt: inputs)
      gradientAhead = false  // it was taken for other inputs
    }
  }

  // MARK: Reading

  /// The value of a slot after ``forward()``.
  public func value(ofSlot slot: Int) -> Tensor { tensor(arena.read(arena.values, slot: slot), slot) }

  /// The adjoint (gradient) of a slot after ``backward(output:seed:wrt:)``.
  public func adjoint(ofSlot slot: Int) -> Tensor { tensor(arena.read(arena.adjoints, slot: slot), slot) }

  /// The first element of a slot's value, without allocating.
  public func scalarValue(ofSlot slot: Int) -> Double { arena.values[program.slots[slot].offset] }

  /// The first element of a slot's adjoint, without allocating.
  public func scalarAdjoint(ofSlot slot: Int) -> Double { arena.adjoints[program.slots[slot].offset] }

  private func tensor(_ elements: UnsafeBufferPointer<Double>, _ slot: Int) -> Tensor {
    Tensor(shape: program.slots[slot].shape, scalars: Array(elements))
  }

  // MARK: Dual numbers

  /// The dual arena, created on first use and reused.
  var dual: Arena<Dual> {
    if let dualArena { return dualArena }
    let created = Arena<Dual>(program)
    dualArena = created
    return created
  }

  /// Copies the inputs into the dual arena with the given tangents (missing inputs get tangent zero).
  func loadDual(tangents: [Int: [Double]]) {
    let dual = self.dual
    for (index, binding) in program.inputs.enumerated() {
      let slot = program.slots[binding.slot]
      let tangent = tangents[index]
      for i in 0..<slot.count {
        dual.values[slot.offset + i] = Dual(arena.values[slot.offset + i], tangent: tangent?[i] ?? 0)
      }
    }
  }

  /// The active slots for `wrt`.
  func activeMask(_ wrt: [Int]?) -> ActiveSet {
    setActive(wrt)
    return active
  }
}
