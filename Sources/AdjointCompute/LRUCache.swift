import Locking

/// A least-recently-used map bounded by a total cost (bytes, or entries with cost 1), safe to share between threads.
///
/// Lookups and insertions are O(1): the entries form a doubly linked list through array indices, most recent first.
/// Inserting past the budget evicts from the least recent end; an entry costlier than the whole budget is not kept.
final class LRUCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
  private struct Entry {
    var key: Key
    var value: Value?
    var cost: Int
    var newer: Int
    var older: Int
  }

  private struct State {
    var index: [Key: Int] = [:]
    var entries: [Entry] = []
    var free: [Int] = []
    /// The most recent entry, or -1.
    var newest = -1
    /// The least recent entry, or -1.
    var oldest = -1
    var cost = 0

    mutating func unlink(_ slot: Int) {
      let (newer, older) = (entries[slot].newer, entries[slot].older)
      if newer >= 0 { entries[newer].older = older } else { newest = older }
      if older >= 0 { entries[older].newer = newer } else { oldest = newer }
    }

    mutating func pushFront(_ slot: Int) {
      entries[slot].newer = -1
      entries[slot].older = newest
      if newest >= 0 { entries[newest].newer = slot }
      newest = slot
      if oldest < 0 { oldest = slot }
    }

    mutating func remove(_ slot: Int) {
      unlink(slot)
      index[entries[slot].key] = nil
      cost -= entries[slot].cost
      entries[slot].value = nil
      free.append(slot)
    }
  }

  /// The largest total cost kept.
  let budget: Int
  private let state = Locked(State())

  /// Creates an empty cache that keeps entries of total cost at most `budget`.
  init(budget: Int) { self.budget = max(0, budget) }

  /// The value for `key`, which becomes the most recent entry; `nil` when absent.
  func value(for key: Key) -> Value? {
    state.withLock { state -> Value? in
      guard let slot = state.index[key] else { return nil }
      if state.newest != slot {
        state.unlink(slot)
        state.pushFront(slot)
      }
      return state.entries[slot].value
    }
  }

  /// Whether `key` is present (without making it recent).
  func contains(_ key: Key) -> Bool { state.withLock { $0.index[key] != nil } }

  /// Stores `value` as the most recent entry, replacing any value for `key`, and evicts least recent entries while
  /// the total cost is over budget. Returns false when the value alone costs more than the budget (nothing is kept).
  @discardableResult
  func insert(_ value: Value, for key: Key, cost: Int) -> Bool {
    state.withLock { state -> Bool in
      if let slot = state.index[key] { state.remove(slot) }
      guard cost <= budget else { return false }
      while state.cost + cost > budget, state.oldest >= 0 { state.remove(state.oldest) }
      let entry = Entry(key: key, value: value, cost: cost, newer: -1, older: -1)
      let slot: Int
      if let reused = state.free.popLast() {
        state.entries[reused] = entry
        slot = reused
      } else {
        slot = state.entries.count
        state.entries.append(entry)
      }
      state.index[key] = slot
      state.cost += cost
      state.pushFront(slot)
      return true
    }
  }

  /// Removes the entry for `key`; returns whether there was one.
  @discardableResult
  func removeValue(for key: Key) -> Bool {
    state.withLock { state -> Bool in
      guard let slot = state.index[key] else { return false }
      state.remove(slot)
      return true
    }
  }

  /// Removes every entry.
  func removeAll() { state.withLock { $0 = State() } }

  /// The number of entries.
  var count: Int { state.withLock { $0.index.count } }

  /// The total cost of the entries.
  var totalCost: Int { state.withLock { $0.cost } }
}
