// adjoint-bench: times Adjoint's engine on the workloads of BENCHMARKS.md, single-threaded, with the anchors'
// timing method, and prints one JSON line per workload on standard output. A workload the engine cannot run yet
// is skipped with a line on standard error and no JSON line. `scripts/bench engine` runs it beside the anchors.

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

let usage = """
  usage: adjoint-bench [--target-seconds S] [--max-runs N] WORKLOAD...
    WORKLOAD: W1, W1-eager, W2, W3, W4 or all
    Prints one JSON line per workload on standard output; skips and errors go to standard error.
  """

let workloads: [(name: String, run: (TimingPolicy) throws -> Void)] = [
  ("W1", ScalarChain.compiledReplay),
  ("W1-eager", ScalarChain.eager),
  ("W2", Rosenbrock.run),
  ("W3", MLP.run),
  ("W4", Hessian.run),
]

var policy = TimingPolicy()
var selected: [String] = []
var arguments = CommandLine.arguments.dropFirst()[...]

func fail(_ message: String) -> Never {
  note(message)
  note(usage)
  exit(2)
}

while let argument = arguments.popFirst() {
  switch argument {
  case "-h", "--help":
    writeLine(STDOUT_FILENO, usage)
    exit(0)
  case "--target-seconds":
    guard let text = arguments.popFirst(), let seconds = Double(text), seconds > 0 else {
      fail("--target-seconds takes a positive number of seconds")
    }
    policy.targetSeconds = seconds
  case "--max-runs":
    guard let text = arguments.popFirst(), let runs = Int(text), runs >= policy.minRuns else {
      fail("--max-runs takes a count of at least \(policy.minRuns)")
    }
    policy.maxRuns = runs
  default:
    if argument.lowercased() == "all" {
      selected += workloads.map(\.name)
    } else if let workload = workloads.first(where: { $0.name.lowercased() == argument.lowercased() }) {
      selected.append(workload.name)
    } else {
      fail("unknown workload '\(argument)'")
    }
  }
}
if selected.isEmpty { fail("name at least one workload") }

var failed = false
for name in selected {
  guard let workload = workloads.first(where: { $0.name == name }) else { continue }
  do {
    try workload.run(policy)
  } catch {
    note("\(name): failed: \(error)")
    failed = true
  }
}
exit(failed ? 1 : 0)
