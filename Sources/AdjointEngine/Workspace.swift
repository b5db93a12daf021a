// The workspace owns the memory of one evaluation: three arenas of doubles (values, adjoints, tangents) laid out
// as the program's slots say. It is allocated once per program and reused across replays, so a warm replay
// allocates nothing. Unsafe pointers stay inside this file and Executor.swift.

/// The mutable state of evaluating a ``Program``: values, adjoints and tangents of every slot.
///
/// A workspace belongs to one thread at a time; workers keep one per program and reuse it.
///
/// ```swift
/// let ws = Workspace(program)
/// ws.setInput(0, [1.5])
/// ws.forward()
/// ws.backward()
/// let g = ws.adjoint(ofSlot: program.inputs[0].slot)
/// ```
public final class Workspace {
  /// The program this workspace evaluates.
  public let program: Program
  let values: UnsafeMutablePointer<Double>
  let adjoints: UnsafeMutablePointer<Double>
  let tangents: UnsafeMutablePointer<Double>
  let count: Int

  /// Allocates arenas for `program` and writes its constants.
  public init(_ program: Program) {
    self.program = program
    count = max(program.arenaCount, 1)
    values = .allocate(capacity: count)
    values.initialize(repeating: 0, count: count)
    adjoints = .allocate(capacity: count)
    adjoints.initialize(repeating: 0, count: count)
    tangents = .allocate(capacity: count)
    tangents.initialize(repeating: 0, count: count)
    for constant in program.constants {
      let offset = program.slots[constant.slot].offset
      constant.scalars.withUnsafeBufferPointer { source in
        (values + offset).update(from: source.baseAddress!, count: source.count)
      }
    }
  }

  deinit {
    values.deallocate()
    adjoints.deallocate()
    tangents.deallocate()
  }

  /// Writes the elements of input number `index` (in `program.inputs` order).
  ///
  /// - Precondition: `scalars.count` equals the input's element count.
  public func setInput(_ index: Int, _ scalars: [Double]) {
    let slot = program.slots[program.inputs[index].slot]
    precondition(scalars.count == slot.count, "input \(program.inputs[index].name) takes \(slot.count) elements")
    scalars.withUnsafeBufferPointer { source in
      if let base = source.baseAddress { (values + slot.offset).update(from: base, count: slot.count) }
    }
  }

  /// Writes one scalar input without allocating.
  public func setInput(_ index: Int, scalar: Double) {
    let slot = program.slots[program.inputs[index].slot]
    precondition(slot.count == 1, "input \(program.inputs[index].name) is not a scalar")
    values[slot.offset] = scalar
  }

  /// Writes the tangent of input number `index` for ``forwardTangents()``; inputs not set keep tangent zero.
  public func setTangent(_ index: Int, _ scalars: [Double]) {
    let slot = program.slots[program.inputs[index].slot]
    precondition(scalars.count == slot.count, "tangent of \(program.inputs[index].name) takes \(slot.count) elements")
    scalars.withUnsafeBufferPointer { source in
      if let base = source.baseAddress { (tangents + slot.offset).update(from: base, count: slot.count) }
    }
  }

  /// Sets every input tangent to zero.
  public func clearTangents() {
    for binding in program.inputs {
      let slot = program.slots[binding.slot]
      (tangents + slot.offset).update(repeating: 0, count: slot.count)
    }
  }

  /// The value of a slot after ``forward()``.
  public func value(ofSlot slot: Int) -> Tensor { read(values, slot) }

  /// The adjoint (gradient) of a slot after ``backward(output:seed:)``.
  public func adjoint(ofSlot slot: Int) -> Tensor { read(adjoints, slot) }

  /// The tangent of a slot after ``forwardTangents()``.
  public func tangent(ofSlot slot: Int) -> Tensor { read(tangents, slot) }

  /// The first element of a slot's value, without allocating.
  public func scalarValue(ofSlot slot: Int) -> Double { values[program.slots[slot].offset] }

  /// The first element of a slot's adjoint, without allocating.
  public func scalarAdjoint(ofSlot slot: Int) -> Double { adjoints[program.slots[slot].offset] }

  private func read(_ arena: UnsafeMutablePointer<Double>, _ slot: Int) -> Tensor {
    let info = program.slots[slot]
    return Tensor(shape: info.shape, scalars: Array(UnsafeBufferPointer(start: arena + info.offset, count: info.count)))
  }

  /// Runs the program forward, filling every slot's value.
  public func forward() {
    Executor.forward(program, values)
  }

  /// Runs the reverse pass: zeroes the adjoints, seeds the output's adjoint and accumulates adjoints from the last
  /// instruction to the first.
  ///
  /// - Parameters:
  ///   - output: the index of the output in `program.outputs`.
  ///   - seed: the cotangent of the output; `nil` seeds every element with 1 (the gradient of a scalar output).
  public func backward(output: Int = 0, seed: [Double]? = nil) {
    let slot = program.slots[program.outputs[output].slot]
    adjoints.update(repeating: 0, count: count)
    if let seed {
      precondition(seed.count == slot.count, "the cotangent takes \(slot.count) elements")
      seed.withUnsafeBufferPointer { source in
        if let base = source.baseAddress { (adjoints + slot.offset).update(from: base, count: slot.count) }
      }
    } else {
      (adjoints + slot.offset).update(repeating: 1, count: slot.count)
    }
    Executor.reverse(program, values, adjoints)
  }

  /// Runs forward mode over the values of the last ``forward()``: propagates the input tangents to every slot.
  public func forwardTangents() {
    Executor.tangents(program, values, tangents)
  }
}
