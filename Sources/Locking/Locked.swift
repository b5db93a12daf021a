import Foundation

/// A value that threads share, guarded by a lock: the shape of Synchronization's `Mutex`, over `NSLock` (a pthread
/// mutex).
///
/// Under ThreadSanitizer on Linux, accesses guarded by Synchronization's `Mutex` were reported as races (its lock is
/// taken inside the standard library, which is not instrumented); a pthread mutex ThreadSanitizer sees. The server
/// and the service guard their shared state with this type so that `swift test --sanitize=thread` reports only real
/// races.
///
/// ```swift
/// let count = Locked(0)
/// count.withLock { $0 += 1 }
/// ```
///
/// Its members are `@inlinable`: callers in other modules (the server, the compute layer) get it specialized to their
/// value types instead of going through generic metadata on every call.
public final class Locked<Value: ~Copyable>: @unchecked Sendable {
  @usableFromInline let lock = NSLock()
  @usableFromInline var value: Value

  /// Guards `value`.
  @inlinable public init(_ value: consuming Value) { self.value = value }

  /// Runs `body` with the value, holding the lock.
  @inlinable public func withLock<Result: ~Copyable, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result)
    throws(Failure)
    -> Result
  {
    lock.lock()
    defer { lock.unlock() }
    return try body(&value)
  }
}
