import AdjointEngine
import AdjointExpressions
import Locking
import Synchronization

/// Identifies a compiled program: the function (its `expr` text, its canonical graph, or its registered id) and the
/// shapes of its inputs in ``Graph/inputNames`` order.
struct ProgramKey: Hashable, Sendable {
  var function: String
  var shapes: [[Int]]
}

/// A compiled program shared read-only by every worker, with spare workspaces for it, so that a repeated request
/// neither compiles nor allocates arenas again.
final class CompiledProgram: Sendable {
  /// Wraps a workspace to move it between threads; only one thread uses a workspace at a time.
  private struct Spare: @unchecked Sendable {
    let workspace: Workspace
  }

  /// The program.
  let program: Program
  /// For each input of the graph (in ``Graph/inputNames`` order), its index in `program.inputs`, if the program
  /// kept it.
  let inputIndex: [Int?]
  /// Every input of the program, `0..<program.inputs.count` (what an absent `wrt` means), and their names.
  let allInputs: [Int]
  let allInputNames: [String]
  private let spares = Locked<[Spare]>([])
  private let maxSpares: Int

  /// Wraps `program` compiled from a graph whose inputs are `names`; keeps at most `maxSpares` idle workspaces.
  init(_ program: Program, names: [String], maxSpares: Int) {
    self.program = program
    inputIndex = names.map { program.inputIndex(named: $0) }
    allInputs = Array(program.inputs.indices)
    allInputNames = program.inputs.map(\.name)
    self.maxSpares = maxSpares
  }

  /// Runs `body` with a workspace of its own: an idle one, or a new one when all are in use.
  func withWorkspace<T>(_ body: (Workspace) throws(Problem) -> T) throws(Problem) -> T {
    let workspace = spares.withLock { $0.popLast() }?.workspace ?? Workspace(program)
    defer {
      let spare = Spare(workspace: workspace)
      spares.withLock { if $0.count < maxSpares { $0.append(spare) } }
    }
    return try body(workspace)
  }

  /// Writes a point's inputs (given in graph input order) into `workspace`.
  func load(_ point: [Tensor], into workspace: Workspace) {
    for (k, tensor) in point.enumerated() {
      if let index = inputIndex[k] { workspace.setInput(index, tensor.scalars) }
    }
  }

  /// The bytes a cached program is counted for: its instructions and slots, and the arenas of its spare workspaces
  /// (values, adjoints and scratch; the dual arena of forward mode, made only by the products that use it, is not
  /// counted).
  var cost: Int {
    256 * program.instructionCount + 64 * program.slots.count + 8 * program.arenaCount
      + 24 * program.arenaCount * maxSpares
  }
}

/// The compiled programs and parsed `expr` texts the service keeps for reuse, bounded in bytes, least recently used
/// evicted first.
package final class ProgramCache: Sendable {
  /// Parsed `expr` texts, resolved (graph, input names, cache key).
  private let functions: LRUCache<String, Function>
  private let programs: LRUCache<ProgramKey, CompiledProgram>
  private let workers: Int
  private let hitCount = Atomic<Int>(0)
  private let missCount = Atomic<Int>(0)
  /// Called with `true` on a hit and `false` on a miss (for metrics).
  package let observe: @Sendable (Bool) -> Void

  /// Creates a cache of `budget` bytes: a quarter for parsed texts, the rest for programs.
  package init(budget: Int, workers: Int, observe: @escaping @Sendable (Bool) -> Void = { _ in }) {
    functions = LRUCache(budget: budget / 4)
    programs = LRUCache(budget: budget - budget / 4)
    self.workers = workers
    self.observe = observe
  }

  /// Program lookups answered from the cache so far.
  package var hits: Int { hitCount.load(ordering: .relaxed) }
  /// Program lookups that compiled so far.
  package var misses: Int { missCount.load(ordering: .relaxed) }
  /// The bytes the cache holds.
  package var bytes: Int { functions.totalCost + programs.totalCost }

  /// Forgets every parsed text and compiled program.
  package func removeAll() {
    functions.removeAll()
    programs.removeAll()
  }

  /// The function of an `expr` text, parsed and resolved once.
  func function(forExpr source: String, parse: (String) throws(Problem) -> Function) throws(Problem) -> Function {
    if let function = functions.value(for: source) { return function }
    let function = try parse(source)
    functions.insert(
      function, for: source,
      cost: 3 * source.utf8.count + 96 * function.graph.nodes.count + 48 * function.names.count + 256)
    return function
  }

  /// The program for `key`, compiled once.
  func program(
    for key: ProgramKey, names: [String], compile: () throws(Problem) -> Program
  ) throws(Problem) -> CompiledProgram {
    if let compiled = programs.value(for: key) {
      hitCount.add(1, ordering: .relaxed)
      observe(true)
      return compiled
    }
    missCount.add(1, ordering: .relaxed)
    observe(false)
    let compiled = CompiledProgram(try compile(), names: names, maxSpares: workers + 1)
    programs.insert(compiled, for: key, cost: compiled.cost + 2 * key.function.utf8.count)
    return compiled
  }
}
