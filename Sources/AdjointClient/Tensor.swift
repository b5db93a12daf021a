import AdjointJSON

/// A dense, row-major tensor of doubles, as the service sends and receives them.
///
/// It converts from a `Double`, a `[Double]` and nested arrays, and back, and it is written with literals:
///
/// ```swift
/// let point: [String: Tensor] = ["x": 1.5, "v": [1, 2, 3], "W": [[1, 2], [3, 4]]]
/// let m = Tensor([[1.0, 2.0], [3.0, 4.0]])
/// let rows: [[Double]]? = m.matrix      // [[1, 2], [3, 4]]
/// let total = m.scalars.reduce(0, +)    // 10
/// ```
public struct Tensor: Sendable, Equatable, CustomStringConvertible {
  /// The extent of each axis, outermost first (`[]` for a scalar).
  public let shape: [Int]
  /// The elements in row-major order; their count is the product of ``shape``.
  public let scalars: [Double]

  /// Creates a tensor from its shape and row-major elements.
  ///
  /// - Precondition: `scalars.count` is the product of `shape`, and no extent is negative.
  public init(shape: [Int], scalars: [Double]) {
    precondition(shape.allSatisfy { $0 >= 0 }, "negative extent in shape \(shape)")
    precondition(shape.reduce(1, *) == scalars.count, "shape \(shape) does not hold \(scalars.count) elements")
    self.shape = shape
    self.scalars = scalars
  }

  /// A scalar (rank 0).
  public init(_ value: Double) { self.init(shape: [], scalars: [value]) }

  /// A vector (rank 1).
  public init(_ values: [Double]) { self.init(shape: [values.count], scalars: values) }

  /// A matrix (rank 2) from its rows.
  ///
  /// - Precondition: every row has the same length.
  public init(_ rows: [[Double]]) { self.init(stacking: rows.map { Tensor($0) }) }

  /// A rank-3 tensor from nested arrays.
  ///
  /// - Precondition: the arrays are rectangular.
  public init(_ blocks: [[[Double]]]) { self.init(stacking: blocks.map { Tensor($0) }) }

  /// Stacks tensors of one shape along a new first axis (`torch.stack`); `[]` gives a tensor of shape `[0]`.
  ///
  /// - Precondition: every element has the same shape.
  public init(stacking elements: [Tensor]) {
    guard let first = elements.first else {
      self.init(shape: [0], scalars: [])
      return
    }
    precondition(elements.allSatisfy { $0.shape == first.shape }, "ragged array: the elements differ in shape")
    self.init(shape: [elements.count] + first.shape, scalars: elements.flatMap(\.scalars))
  }

  /// A tensor of `shape` filled with `value`.
  public init(repeating value: Double, shape: [Int]) {
    self.init(shape: shape, scalars: Array(repeating: value, count: shape.reduce(1, *)))
  }

  /// A tensor of zeros (`torch.zeros`).
  public static func zeros(_ shape: [Int]) -> Tensor { Tensor(repeating: 0, shape: shape) }

  /// The number of axes.
  public var rank: Int { shape.count }
  /// The number of elements.
  public var count: Int { scalars.count }

  /// The single element of a tensor that has exactly one (`tensor.item()`), else `nil`.
  public var item: Double? { scalars.count == 1 ? scalars[0] : nil }

  /// The elements of a rank-1 tensor, else `nil` (use ``scalars`` for the flat elements of any tensor).
  public var vector: [Double]? { rank == 1 ? scalars : nil }

  /// The rows of a rank-2 tensor, else `nil`.
  public var matrix: [[Double]]? {
    guard rank == 2 else { return nil }
    let columns = shape[1]
    return (0..<shape[0]).map { Array(scalars[($0 * columns)..<(($0 + 1) * columns)]) }
  }

  /// The same elements under another shape (`torch.reshape`); one extent may be -1.
  ///
  /// - Precondition: the shapes hold the same number of elements.
  public func reshaped(_ newShape: [Int]) -> Tensor {
    var resolved = newShape
    if let hole = newShape.firstIndex(of: -1) {
      let known = newShape.enumerated().filter { $0.offset != hole }.reduce(1) { $0 * $1.element }
      resolved[hole] = known == 0 ? 0 : count / known
    }
    return Tensor(shape: resolved, scalars: scalars)
  }

  /// The tensor as nested arrays: `Double` for rank 0, `[Double]`, `[[Double]]`, … (`tensor.tolist()`).
  public var nested: Any {
    if rank == 0 { return scalars[0] }
    return Self.nest(scalars[...], shape[...])
  }

  private static func nest(_ data: ArraySlice<Double>, _ shape: ArraySlice<Int>) -> Any {
    if shape.count == 1 { return Array(data) }
    let inner = shape.dropFirst().reduce(1, *)
    return (0..<shape.first!).map { index in
      let start = data.startIndex + index * inner
      return nest(data[start..<(start + inner)], shape.dropFirst())
    }
  }

  /// The JSON text of the tensor as nested arrays (non-finite values as `"NaN"`, `"Infinity"`, `"-Infinity"`).
  public var description: String { json(layout: .nested).description }

  // MARK: JSON

  func json(layout: JSONTensorLayout) -> JSONValue {
    JSONTensorDecoding.encode(shape: shape, data: scalars, layout: layout)
  }

  func write(to writer: inout JSONWriter, layout: JSONTensorLayout) {
    writer.writeTensor(shape: shape, data: scalars, layout: layout)
  }

  /// Decodes any tensor form of the contract (a number, nested arrays, `{"shape", "data"}`, `{"shape", "base64"}`).
  init(json: JSONValue, at pointer: JSONPointer) throws(AdjointError) {
    do {
      let (shape, data) = try JSONTensorDecoding.decode(json, maxElements: .max, at: pointer)
      self.init(shape: shape, scalars: data)
    } catch {
      throw .invalidResponse("\(error.description)")
    }
  }
}

extension Tensor: ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral {
  /// A scalar.
  public init(floatLiteral value: Double) { self.init(value) }
  /// A scalar.
  public init(integerLiteral value: Int) { self.init(Double(value)) }
  /// Nested arrays: `[1, 2]` is a vector, `[[1, 2], [3, 4]]` a matrix.
  public init(arrayLiteral elements: Tensor...) { self.init(stacking: elements) }
}

extension Array where Element == Double {
  /// The flat, row-major elements of a tensor of any shape.
  public init(_ tensor: Tensor) { self = tensor.scalars }
}

extension Array where Element == [Double] {
  /// The rows of a rank-2 tensor; `nil` for another rank.
  public init?(_ tensor: Tensor) {
    guard let rows = tensor.matrix else { return nil }
    self = rows
  }
}
