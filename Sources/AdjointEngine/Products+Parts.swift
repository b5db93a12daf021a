/// Parts of the Jacobian and Hessian products, so that a caller can split one product over several workspaces (one
/// per thread) over the same program: each part is independent of the others.
extension Workspace {
  /// The number of Hessian-vector products ``hessian(output:wrt:)`` runs: one per colour of the Hessian's sparsity
  /// pattern when it has structure to exploit, else one per input element.
  public func hessianProductCount(wrt: [Int]? = nil) -> Int {
    let inputs = wrt ?? Array(program.inputs.indices)
    if coloring?.inputs != inputs { coloring = (inputs, HessianColoring.analyze(program, wrt: inputs)) }
    if let sparse = coloring?.coloring { return sparse.colors }
    return inputs.reduce(0) { $0 + program.slots[program.inputs[$1].slot].count }
  }

  /// Rows of a reverse-mode Jacobian: for each output element `i` in `rows`, the VJP with the unit cotangent `e_i`.
  /// Runs forward once first.
  ///
  /// - Parameter row: called with the row's index and the adjoint of each input of `wrt` (in that order).
  public func jacobianRows(
    output: Int = 0, wrt: [Int], rows: Range<Int>, _ row: (Int, [UnsafeBufferPointer<Double>]) -> Void
  ) {
    let outSlot = program.slots[program.outputs[output].slot]
    forward()
    var seed = [Double](repeating: 0, count: outSlot.count)
    for i in rows {
      seed[i] = 1
      backward(output: output, seed: seed, wrt: wrt)
      seed[i] = 0
      let adjoints = wrt.map { arena.read(arena.adjoints, slot: program.inputs[$0].slot) }
      row(i, adjoints)
    }
  }

  /// Hessian-vector products along unit directions: for each element `j` in `columns` of input `wrt[input]`, the
  /// product `H·e_j` with every input of `wrt` (its column of the Hessian), by forward-over-reverse.
  ///
  /// - Parameter column: called with the column's element index, and per input of `wrt` the gradient and the
  ///   column's part of the product.
  public func hessianColumns(
    output: Int = 0, wrt: [Int], input: Int, columns: Range<Int>,
    _ column: (Int, _ gradient: [Tensor], _ product: [Tensor]) -> Void
  ) {
    let count = program.slots[program.inputs[wrt[input]].slot].count
    var direction = [Double](repeating: 0, count: count)
    for j in columns {
      direction[j] = 1
      let result = hessianVectorProduct(output: output, wrt: wrt, direction: [wrt[input]: direction])
      direction[j] = 0
      column(j, result.gradient, result.product)
    }
  }
}
