// The CPU affinity of threads: the one place in AdjointCompute that calls C.

import CSched
import Glibc

/// Which CPUs a thread may run on (Linux's `sched_getaffinity` and `sched_setaffinity` system calls, with the mask
/// as a plain array of words, which the kernel takes at any length).
package enum CPUAffinity {
  /// The CPUs the calling thread may run on, in ascending order (the process's own, inherited at its start).
  /// Empty if the kernel does not say.
  package static func allowedCPUs() -> [Int] {
    var words = [UInt](repeating: 0, count: 16)  // 1,024 CPUs; more, and the mask doubles
    while true {
      let size = words.count * MemoryLayout<UInt>.size
      let result = words.withUnsafeMutableBytes { adjoint_get_thread_affinity(UInt(size), $0.baseAddress) }
      if result >= 0 { break }
      guard errno == EINVAL, words.count < 1 << 16 else { return [] }
      words = [UInt](repeating: 0, count: words.count * 2)
    }
    let bits = UInt.bitWidth
    return words.indices.flatMap { w in (0..<bits).filter { words[w] >> UInt($0) & 1 == 1 }.map { w * bits + $0 } }
  }

  /// Binds the calling thread to one CPU. Returns whether the kernel agreed.
  @discardableResult
  package static func pinCurrentThread(to cpu: Int) -> Bool {
    guard cpu >= 0 else { return false }
    let bits = UInt.bitWidth
    var words = [UInt](repeating: 0, count: max(16, cpu / bits + 1))
    words[cpu / bits] = 1 << UInt(cpu % bits)
    let size = words.count * MemoryLayout<UInt>.size
    return words.withUnsafeBytes { adjoint_set_thread_affinity(UInt(size), $0.baseAddress) } == 0
  }
}
