/// A dense, row-major tensor of IEEE-754 doubles.
///
/// A tensor of rank 0 has shape `[]` and one element. Storage is a Swift array, so copies are cheap until one of them
/// is written (copy on write).
///
/// ```swift
/// let m = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
/// let s = Tensor(3.5)
/// ```
public struct Tensor: Sendable, Equatable, CustomStringConvertible {
  /// The extent of each axis, outermost first.
  public var shape: [Int]
  /// The elements in row-major order; `scalars.count` is the product of `shape`.
  public var scalars: [Double]

  /// Creates a tensor from its shape and row-major elements.
  ///
  /// - Precondition: `scalars.count` equals the product of `shape`, and no extent is negative.
  public init(shape: [Int], scalars: [Double]) {
    precondition(shape.allSatisfy { $0 >= 0 }, "negative extent in shape \(shape)")
    precondition(Tensor.elementCount(shape) == scalars.count, "shape \(shape) does not hold \(scalars.count) elements")
    self.shape = shape
    self.scalars = scalars
  }

  /// Creates a rank-0 tensor holding one value.
  public init(_ value: Double) {
    self.shape = []
    self.scalars = [value]
  }

  /// Creates a tensor of the given shape with every element equal to `value`.
  public init(repeating value: Double, shape: [Int]) {
    self.init(shape: shape, scalars: Array(repeating: value, count: Tensor.elementCount(shape)))
  }

  /// The number of axes.
  public var rank: Int { shape.count }
  /// The number of elements.
  public var count: Int { scalars.count }
  /// The single element of a tensor that has exactly one element, else `nil`.
  public var scalar: Double? { scalars.count == 1 ? scalars[0] : nil }

  /// The number of elements a tensor of `shape` holds: 0 if an extent is 0, and `Int.max` when the product does not
  /// fit an `Int` (so that comparing it with a limit rejects it rather than trapping).
  public static func elementCount(_ shape: [Int]) -> Int {
    if shape.contains(0) { return 0 }
    var count = 1
    for extent in shape {
      let (product, overflow) = count.multipliedReportingOverflow(by: extent)
      if overflow { return .max }
      count = product
    }
    return count
  }

  public var description: String {
    rank == 0 ? "\(scalars[0])" : "Tensor(shape: \(shape), scalars: \(scalars))"
  }
}
