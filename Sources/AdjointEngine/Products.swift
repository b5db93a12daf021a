/// The derivative products of a program, computed in a workspace.
extension Workspace {
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

  /// Runs forward and returns the value of every output, in `program.outputs` order.
  public func evaluate() -> [Tensor] {
    forward()
    return program.outputs.map { value(ofSlot: $0.slot) }
  }

  /// Runs forward and reverse for one output and returns its value and the gradient with respect to every input.
  ///
  /// - Parameters:
  ///   - output: the index of the output in `program.outputs`.
  ///   - seed: the output's cotangent; `nil` means ones (for a scalar output, the gradient).
  /// - Returns: the output's value and one adjoint per input, in `program.inputs` order.
  public func valueWithPullback(output: Int = 0, seed: [Double]? = nil) -> (value: Tensor, adjoints: [Tensor]) {
    forward()
    backward(output: output, seed: seed)
    let value = value(ofSlot: program.outputs[output].slot)
    return (value, program.inputs.map { adjoint(ofSlot: $0.slot) })
  }

  /// Runs forward mode: the output's value and its directional derivative along the given input tangents.
  ///
  /// - Parameter tangents: one tangent per input index; missing inputs have tangent zero.
  public func valueWithDifferential(output: Int = 0, tangents: [Int: [Double]]) -> (value: Tensor, tangent: Tensor) {
    forward()
    clearTangents()
    for (index, tangent) in tangents { setTangent(index, tangent) }
    forwardTangents()
    let slot = program.outputs[output].slot
    return (value(ofSlot: slot), tangent(ofSlot: slot))
  }
}
