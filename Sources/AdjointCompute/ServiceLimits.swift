/// The limits on what a request may contain. Each is inclusive: a value equal to the limit is accepted.
public struct ServiceLimits: Sendable {
  /// The largest request body, in bytes (64 MiB).
  public var maxBodyBytes: Int = 64 << 20
  /// The deepest JSON nesting (512).
  public var maxJSONDepth: Int = 512
  /// The longest `expr`, in Unicode scalars (1 MiB).
  public var maxExprLength: Int = 1 << 20
  /// The most elements in one tensor (2^24).
  public var maxTensorElements: Int = 1 << 24
  /// The most nodes in a graph, a JSON `graph` or the graph an `expr` parses to (100,000).
  public var maxGraphNodes: Int = 100_000
  /// The most points in one `batch` (100,000).
  public var maxBatchPoints: Int = 100_000

  /// The contract's defaults.
  public init() {}
}
