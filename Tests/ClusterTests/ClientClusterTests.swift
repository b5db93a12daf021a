import AdjointClient
import Foundation
import XCTest

/// The SDK in front of three replicas behind nginx: a graph registered once and named by its id keeps working when
/// requests land on replicas that have never seen it.
final class ClientClusterTests: XCTestCase {
  func testRegisteredGraphsWorkAcrossReplicas() async throws {
    let cluster = try Cluster(replicas: 3)
    let client = try AdjointClient(url: cluster.url)
    let loss = try await client.register("loss = sum(x * x)")
    for i in 0..<12 {
      let result = try await client.gradient(of: loss, at: ["x": [Tensor(Double(i)), 2]])
      XCTAssertEqual(result.gradient["x"].map { [Double]($0) }, [Double(2 * i), 4])
    }
    // Replicas without the id answered 404, and the SDK registered the graph again and repeated the request: every
    // call above still got its answer.
    var notFound = 0
    var answered = 0
    for replica in cluster.replicas {
      notFound += try replica.gradients(answered: 404)
      answered += try replica.gradients(answered: 200)
    }
    XCTAssertGreaterThan(notFound, 0, "no replica ever lacked the id: the test did not cross replicas")
    XCTAssertEqual(answered, 12)
  }
}
