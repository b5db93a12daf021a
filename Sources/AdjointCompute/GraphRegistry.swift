import AdjointExpressions

/// The graphs registered with `POST /graphs`, by content id (`sha256:` and the hex digest of the canonical JSON).
///
/// Bounded in bytes: the least recently used graphs are forgotten first. A forgotten id answers 404, and since ids
/// are content addresses, registering the same graph again gives back the same id.
package final class GraphRegistry: Sendable {
  /// A registered graph.
  package struct Entry: Sendable {
    /// The graph, ready to compile.
    let graph: Graph
    /// Its canonical JSON form, which `GET /graphs/{id}` answers.
    package let canonical: [UInt8]
  }

  private let entries: LRUCache<String, Entry>

  /// Creates an empty registry that keeps at most `budget` bytes of canonical JSON.
  package init(budget: Int) { entries = LRUCache(budget: budget) }

  /// Registers `graph`; returns its id and whether it was new.
  package func register(_ graph: Graph) -> (id: String, created: Bool) {
    let canonical = CanonicalGraph.encode(graph)
    let id = "sha256:" + SHA256.hash(canonical).hexString
    if entries.value(for: id) != nil { return (id, false) }
    entries.insert(Entry(graph: graph, canonical: canonical), for: id, cost: Self.cost(canonical))
    return (id, true)
  }

  /// The graph registered under `id`, if it is still kept.
  package func entry(_ id: String) -> Entry? { entries.value(for: id) }

  /// Forgets `id`; returns whether it was known.
  package func remove(_ id: String) -> Bool { entries.removeValue(for: id) }

  /// Forgets every graph.
  package func removeAll() { entries.removeAll() }

  /// The number of graphs kept.
  package var count: Int { entries.count }

  private static func cost(_ canonical: [UInt8]) -> Int { canonical.count + 512 }
}
