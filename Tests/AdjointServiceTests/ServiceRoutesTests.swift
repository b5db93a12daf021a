import Foundation
import XCTest

/// Every compute route of the contract against closed forms and finite differences, batches against one-by-one
/// answers, and the graph registry, over the real `adjoint serve` subprocess (one worker per core).
final class ServiceRoutesTests: LiveServerTestCase {
  private func post(_ path: String, _ body: Any) throws -> RawConnection.Response {
    let connection = try RawConnection(port: try serverPort())
    let text: String
    if let string = body as? String {
      text = string
    } else {
      text = String(decoding: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]), as: UTF8.self)
    }
    connection.post(path, text)
    return try XCTUnwrap(connection.read(), "no response to \(path)")
  }

  private func object(_ path: String, _ body: Any, file: StaticString = #filePath, line: UInt = #line) throws
    -> [String: Any]
  {
    let response = try post(path, body)
    XCTAssertEqual(response.status, 200, response.body, file: file, line: line)
    return try XCTUnwrap(response.json as? [String: Any], response.body, file: file, line: line)
  }

  private func numbers(_ value: Any?) -> [Double] {
    if let number = value as? NSNumber { return [number.doubleValue] }
    if let array = value as? [Any] { return array.flatMap { numbers($0) } }
    return []
  }

  private func assertClose(
    _ actual: [Double], _ expected: [Double], tolerance: Double, _ message: String = "",
    file: StaticString = #filePath, line: UInt = #line
  ) {
    XCTAssertEqual(actual.count, expected.count, "\(message): counts differ", file: file, line: line)
    for (index, (a, e)) in zip(actual, expected).enumerated() {
      XCTAssertLessThanOrEqual(
        abs(a - e), tolerance * max(1, abs(e)), "\(message) [\(index)]: \(a) vs \(e)", file: file, line: line)
    }
  }

  private static func randomVector(_ count: Int, seed: UInt64) -> [Double] {
    var state = seed
    return (0..<count).map { _ in
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return Double(state >> 11) / Double(1 << 53) * 2 - 1
    }
  }

  /// Central differences of `f` (evaluated by the server, as one batch) at `x`.
  private func finiteDifferences(_ expr: String, x: [Double], others: [String: Any] = [:], h: Double = 1e-6) throws
    -> [[Double]]
  {
    var batch: [[String: Any]] = []
    for j in x.indices {
      for sign in [1.0, -1.0] {
        var point = x
        point[j] += sign * h
        batch.append(others.merging(["x": point]) { $1 })
      }
    }
    let results = try XCTUnwrap(try object("/evaluate", ["expr": expr, "batch": batch])["results"] as? [[String: Any]])
    return x.indices.map { j in
      let up = numbers((results[2 * j]["values"] as? [String: Any])?["out"])
      let down = numbers((results[2 * j + 1]["values"] as? [String: Any])?["out"])
      return zip(up, down).map { ($0 - $1) / (2 * h) }
    }
  }

  func testEvaluateAndGradientAgainstClosedFormsAndFiniteDifferences() throws {
    let x = Self.randomVector(5, seed: 1)
    let expr = "sum(sin(x) * x^2)"
    let values = try object("/evaluate", ["expr": expr, "at": ["x": x]])["values"] as? [String: Any]
    let value = numbers(values?["out"])
    assertClose(value, [x.reduce(0) { $0 + sin($1) * $1 * $1 }], tolerance: 1e-14, "value")
    let answer = try object("/gradient", ["expr": expr, "at": ["x": x]])
    let gradient = numbers((answer["gradient"] as? [String: Any])?["x"])
    assertClose(gradient, x.map { cos($0) * $0 * $0 + 2 * $0 * sin($0) }, tolerance: 1e-14, "closed form")
    assertClose(gradient, try finiteDifferences(expr, x: x).map { $0[0] }, tolerance: 1e-7, "finite differences")
  }

  /// A point's inputs may come in any order (the service places them by name; the graph's own order is only the
  /// quickest case): every order of three inputs, scalars and a vector, gives the same answer.
  func testInputsOfAPointInAnyOrder() throws {
    let expr = "x * sum(v) - 2 * y"
    let entries = [#""x": 1.5"#, #""v": [1, 2, 3]"#, #""y": -0.5"#]
    for order in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
      let body = #"{"expr": "\#(expr)", "at": {\#(order.map { entries[$0] }.joined(separator: ", "))}}"#
      let answer = try object("/gradient", body)
      XCTAssertEqual(numbers(answer["value"]), [1.5 * 6 + 1], body)
      let gradient = answer["gradient"] as? [String: Any]
      XCTAssertEqual(numbers(gradient?["x"]), [6], body)
      XCTAssertEqual(numbers(gradient?["v"]), [1.5, 1.5, 1.5], body)
      XCTAssertEqual(numbers(gradient?["y"]), [-2], body)
    }
  }

  func testVJPAndJVPAgainstClosedForms() throws {
    let x = Self.randomVector(4, seed: 2)
    let w = Self.randomVector(4, seed: 3)
    let cotangent = [1.0, -2.0, 0.5, 3.0]
    // f(x, w) = x^2 * w elementwise: ∂f_i/∂x_i = 2 x_i w_i, ∂f_i/∂w_i = x_i^2.
    let vjp = try object("/vjp", ["expr": "x^2 * w", "at": ["x": x, "w": w], "cotangent": cotangent, "wrt": ["x"]])
    assertClose(numbers(vjp["value"]), zip(x, w).map { $0 * $0 * $1 }, tolerance: 1e-15, "vjp value")
    let vjpX = numbers((vjp["vjp"] as? [String: Any])?["x"])
    assertClose(vjpX, (0..<4).map { 2 * x[$0] * w[$0] * cotangent[$0] }, tolerance: 1e-14, "vjp")
    XCTAssertNil((vjp["vjp"] as? [String: Any])?["w"], "only wrt is answered")

    let tangent = [0.5, 1.0, -1.0, 2.0]
    let jvp = try object("/jvp", ["expr": "x^2 * w", "at": ["x": x, "w": w], "tangent": ["w": tangent]])
    assertClose(numbers(jvp["jvp"]), (0..<4).map { x[$0] * x[$0] * tangent[$0] }, tolerance: 1e-14, "jvp (x missing)")
  }

  func testJacobianModesAgreeWithTheClosedFormAndFiniteDifferences() throws {
    // f(x) = tanh(x) * sum(x^2): J_ij = δ_ij (1 - tanh²x_i) S + tanh(x_i) 2 x_j.
    // n = 300 makes the server spread rows (or columns) over its workers; n = 6 does not.
    for n in [6, 300] {
      let x = Self.randomVector(n, seed: UInt64(n))
      let s = x.reduce(0) { $0 + $1 * $1 }
      var expected: [Double] = []
      for i in 0..<n {
        for j in 0..<n {
          expected.append((i == j ? (1 - tanh(x[i]) * tanh(x[i])) * s : 0) + tanh(x[i]) * 2 * x[j])
        }
      }
      var answers: [String: [Double]] = [:]
      for mode in ["auto", "forward", "reverse"] {
        let answer = try object("/jacobian", ["expr": "tanh(x) * sum(x^2)", "at": ["x": x], "mode": mode])
        let block = try XCTUnwrap((answer["jacobian"] as? [String: Any])?["x"] as? [[Any]])
        XCTAssertEqual(block.count, n)
        answers[mode] = numbers(block)
        assertClose(answers[mode]!, expected, tolerance: 1e-13, "n = \(n), \(mode)")
      }
      XCTAssertEqual(answers["forward"]!, answers["reverse"]!, "n = \(n): forward and reverse bit for bit")
      if n == 6 {
        let fd = try finiteDifferences("tanh(x) * sum(x^2)", x: x)  // fd[j][i] = ∂f_i/∂x_j
        let transposed = (0..<n).flatMap { i in (0..<n).map { j in fd[j][i] } }
        assertClose(answers["auto"]!, transposed, tolerance: 1e-7, "finite differences")
      }
    }
  }

  func testHessianIsSymmetricAndMatchesClosedForms() throws {
    // Rosenbrock, n = 4.
    let x = [-1.2, 1.0, 0.5, -0.3]
    let rosenbrock = "a = slice(x, start=1); b = slice(x, stop=-1); sum(100*(a - b^2)^2 + (1 - b)^2)"
    var expected = [[Double]](repeating: [Double](repeating: 0, count: 4), count: 4)
    for i in 0..<3 {
      expected[i][i] += 1200 * x[i] * x[i] - 400 * x[i + 1] + 2
      expected[i + 1][i + 1] += 200
      expected[i][i + 1] -= 400 * x[i]
      expected[i + 1][i] -= 400 * x[i]
    }
    let answer = try object("/hessian", ["expr": rosenbrock, "at": ["x": x]])
    let h = numbers(((answer["hessian"] as? [String: Any])?["x"] as? [String: Any])?["x"])
    assertClose(h, expected.flatMap { $0 }, tolerance: 1e-12, "Rosenbrock")

    // A dense Hessian large enough to be spread over the workers: f = (Σ tanh x_i)^2,
    // H_ij = 2 sech²x_i sech²x_j − δ_ij 4 S tanh x_i sech²x_i.
    let n = 150
    let y = Self.randomVector(n, seed: 9)
    let s = y.reduce(0) { $0 + tanh($1) }
    let sech2 = y.map { 1 - tanh($0) * tanh($0) }
    let dense = try object("/hessian", ["expr": "sum(tanh(x))^2", "at": ["x": y]])
    let block = numbers(((dense["hessian"] as? [String: Any])?["x"] as? [String: Any])?["x"])
    XCTAssertEqual(block.count, n * n)
    var closed: [Double] = []
    for i in 0..<n {
      for j in 0..<n { closed.append(2 * sech2[i] * sech2[j] - (i == j ? 4 * s * tanh(y[i]) * sech2[i] : 0)) }
    }
    assertClose(block, closed, tolerance: 1e-12, "dense")
    for i in 0..<n {
      for j in 0..<i { XCTAssertEqual(block[i * n + j], block[j * n + i], accuracy: 1e-12, "symmetric at \(i), \(j)") }
    }
    let gradient = numbers((dense["gradient"] as? [String: Any])?["x"])
    assertClose(gradient, sech2.map { 2 * s * $0 }, tolerance: 1e-13, "gradient beside the Hessian")

    // Two inputs: blocks of shape x.shape + y.shape.
    let mixed = try object("/hessian", ["expr": "sum(a * b^2)", "at": ["a": [1.0, 2.0], "b": [3.0, 4.0]]])
    let blocks = try XCTUnwrap(mixed["hessian"] as? [String: [String: Any]])
    XCTAssertEqual(numbers(blocks["a"]?["a"]), [0, 0, 0, 0])
    XCTAssertEqual(numbers(blocks["a"]?["b"]), [6, 0, 0, 8])
    XCTAssertEqual(numbers(blocks["b"]?["a"]), [6, 0, 0, 8])
    XCTAssertEqual(numbers(blocks["b"]?["b"]), [2, 0, 0, 4])
  }

  func testGradcheckReportsBothGradientsAndASmallError() throws {
    let answer = try object("/gradcheck", ["expr": "sum(exp(x) * y)", "at": ["x": [0.1, 0.2], "y": 3.0]])
    let analytic = numbers((answer["gradient"] as? [String: Any])?["x"])
    assertClose(analytic, [3 * exp(0.1), 3 * exp(0.2)], tolerance: 1e-14, "analytic")
    let numeric = numbers((answer["numeric_gradient"] as? [String: Any])?["x"])
    assertClose(numeric, analytic, tolerance: 1e-8, "numeric")
    let errors = try XCTUnwrap(answer["max_relative_error"] as? [String: Any])
    XCTAssertLessThan(numbers(errors["x"])[0], 1e-8)
    XCTAssertLessThan(numbers(errors["y"])[0], 1e-8)
    XCTAssertGreaterThan(numbers(errors["x"])[0], 0, "a real finite difference differs in its last digits")
  }

  func testBatchResultsEqualOneByOneResults() throws {
    let rosenbrock = "(1 - x)^2 + 100*(y - x^2)^2"
    // 1,000 points are spread over the workers; 3 are not.
    for count in [3, 1000] {
      let xs = Self.randomVector(count, seed: 11)
      let ys = Self.randomVector(count, seed: 12)
      let points = (0..<count).map { ["x": 2 * xs[$0], "y": 2 * ys[$0]] }
      for (path, extra) in [
        ("/gradient", [String: Any]()), ("/gradient", ["wrt": ["y"]]), ("/gradient", ["wrt": ["y", "x"]]),
        ("/hessian", [:]), ("/jvp", ["tangent": ["x": 1.0]]),
        ("/vjp", ["cotangent": 2.0]), ("/jacobian", ["mode": "forward"]), ("/evaluate", [:]),
      ] {
        let batch = try post(path, extra.merging(["expr": rosenbrock, "batch": points]) { $1 })
        XCTAssertEqual(batch.status, 200, batch.body)
        let results = try XCTUnwrap((batch.json as? [String: Any])?["results"] as? [Any])
        XCTAssertEqual(results.count, count)
        for index in Set([0, count / 2, count - 1]) {
          let single = try post(path, extra.merging(["expr": rosenbrock, "at": points[index]]) { $1 })
          let expected = try JSONSerialization.data(withJSONObject: single.json!, options: [.sortedKeys])
          let found = try JSONSerialization.data(withJSONObject: results[index], options: [.sortedKeys])
          XCTAssertEqual(
            String(decoding: found, as: UTF8.self), String(decoding: expected, as: UTF8.self),
            "\(path), \(count) points, point \(index)")
        }
      }
    }
  }

  /// Large matrix products (130 x 260 times 260 x 140: 4.7M multiply-adds) run in halves, on two workers for a single
  /// request and on one for a batch's points: the answers are the same (the whole products' would differ in their
  /// last bits).
  func testBatchOfLargeProductsEqualsOneByOne() throws {
    func matrix(_ rows: Int, _ columns: Int, _ seed: Int) -> [[Double]] {
      (0..<rows).map { i in (0..<columns).map { j in Double((i * 31 + j * 17 + seed) % 97 - 48) / 50 } }
    }
    let points = [
      ["X": matrix(130, 260, 1), "W": matrix(260, 140, 2)], ["X": matrix(130, 260, 3), "W": matrix(260, 140, 4)],
    ]
    let expr = "sum(tanh(X @ W))"
    let batch = try post("/gradient", ["expr": expr, "batch": points])
    XCTAssertEqual(batch.status, 200, String(batch.body.prefix(300)))
    let results = try XCTUnwrap((batch.json as? [String: Any])?["results"] as? [Any])
    XCTAssertEqual(results.count, 2)
    for (index, point) in points.enumerated() {
      let single = try post("/gradient", ["expr": expr, "at": point])
      let expected = try JSONSerialization.data(withJSONObject: single.json!, options: [.sortedKeys])
      let found = try JSONSerialization.data(withJSONObject: results[index], options: [.sortedKeys])
      XCTAssertTrue(found == expected, "point \(index): the batch's answer differs from the single request's")
    }
  }

  func testBatchPointsMayHaveDifferentShapes() throws {
    let answer = try object(
      "/gradient", ["expr": "sum(x^2)", "batch": [["x": [1.0, 2.0]], ["x": 3.0], ["x": [[1.0]]]]])
    let results = try XCTUnwrap(answer["results"] as? [[String: Any]])
    XCTAssertEqual(numbers((results[0]["gradient"] as? [String: Any])?["x"]), [2, 4])
    XCTAssertEqual(numbers((results[1]["gradient"] as? [String: Any])?["x"]), [6])
    XCTAssertEqual(numbers((results[2]["gradient"] as? [String: Any])?["x"]), [2])
  }

  func testLayoutsCarryTheSameNumbers() throws {
    let x = [[0.1, -2.5], [1e-300, 3.0]]
    let nested = try object("/gradient", ["expr": "sum(x^3)", "at": ["x": x]])
    let flat = try object("/gradient", ["expr": "sum(x^3)", "at": ["x": x], "layout": "flat"])
    let flatX = try XCTUnwrap((flat["gradient"] as? [String: Any])?["x"] as? [String: Any])
    XCTAssertEqual(numbers(flatX["shape"]), [2, 2])
    // The first request runs the tape instruction by instruction, a replay may fuse the gradient into the forward
    // pass: the same numbers to the last bit or two.
    let expected = x.flatMap { $0 }.map { 3 * $0 * $0 }
    assertClose(numbers((nested["gradient"] as? [String: Any])?["x"]), expected, tolerance: 1e-15, "nested")
    assertClose(numbers(flatX["data"]), expected, tolerance: 1e-15, "flat")
    let base64 = try object("/gradient", ["expr": "sum(x^3)", "at": ["x": x], "layout": "base64"])
    let encoded = try XCTUnwrap((base64["gradient"] as? [String: Any])?["x"] as? [String: Any])
    let bytes = try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(encoded["base64"] as? String)))
    let decoded = bytes.withUnsafeBytes { raw in
      (0..<4).map {
        Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))
      }
    }
    assertClose(decoded, expected, tolerance: 1e-15, "base64")
  }

  func testGraphRegistryRoundTrip() throws {
    let first = try post("/graphs", ["expr": "y * sin(x)"])
    XCTAssertEqual(first.status, 201, first.body)
    let id = try XCTUnwrap((first.json as? [String: Any])?["id"] as? String)
    XCTAssertTrue(id.hasPrefix("sha256:") && id.count == 71, id)
    XCTAssertEqual(first.headers["location"], "/graphs/\(id)")
    let again = try post("/graphs", ["expr": "y * sin(x)"])
    XCTAssertEqual(again.status, 200)
    XCTAssertEqual((again.json as? [String: Any])?["id"] as? String, id)

    // The canonical graph is a valid `graph` with the same id.
    let connection = try RawConnection(port: try serverPort())
    connection.send("GET /graphs/\(id) HTTP/1.1\r\nHost: x\r\n\r\n")
    let canonical = try XCTUnwrap(connection.read())
    XCTAssertEqual(canonical.status, 200)
    let graph = try XCTUnwrap(canonical.json)
    XCTAssertEqual((try object("/graphs", ["graph": graph])["id"] as? String), id)

    let point = ["x": 0.5, "y": 2.0]
    let byID = try object("/gradient", ["graph_id": id, "at": point])
    let byExpr = try object("/gradient", ["expr": "y * sin(x)", "at": point])
    assertClose(numbers((byID["gradient"] as? [String: Any])?["x"]), [2 * cos(0.5)], tolerance: 1e-15, "by id")
    XCTAssertEqual(
      numbers((byID["gradient"] as? [String: Any])?["y"]), numbers((byExpr["gradient"] as? [String: Any])?["y"]))

    connection.send("DELETE /graphs/\(id.replacingOccurrences(of: ":", with: "%3A")) HTTP/1.1\r\nHost: x\r\n\r\n")
    XCTAssertEqual(connection.read()?.status, 204)
    connection.send("GET /graphs/\(id) HTTP/1.1\r\nHost: x\r\n\r\n")
    XCTAssertEqual(connection.read()?.status, 404)
    connection.send("DELETE /graphs/\(id) HTTP/1.1\r\nHost: x\r\n\r\n")
    XCTAssertEqual(connection.read()?.status, 404)
    let gone = try post("/gradient", ["graph_id": id, "at": point])
    XCTAssertEqual(gone.status, 404)
    connection.send("PUT /graphs/\(id) HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    let put = try XCTUnwrap(connection.read())
    XCTAssertEqual(put.status, 405)
    XCTAssertEqual(put.headers["allow"], "GET, HEAD, DELETE")
  }

  func testOpsListsEveryOperationOfTheContract() throws {
    let connection = try RawConnection(port: try serverPort())
    connection.send("GET /ops HTTP/1.1\r\nHost: x\r\n\r\n")
    let response = try XCTUnwrap(connection.read())
    let ops = try XCTUnwrap((response.json as? [String: Any])?["ops"] as? [[String: Any]])
    let byName = Dictionary(uniqueKeysWithValues: ops.map { ($0["name"] as? String ?? "", $0) })
    let contract = """
      add sub mul div pow maximum minimum atan2 neg abs sign exp log log1p expm1 sqrt square sin cos tan asin acos atan \
      sinh cosh tanh sigmoid relu softplus erf sum mean max min prod logsumexp matmul dot transpose outer reshape \
      broadcast_to concat stack slice index squeeze expand_dims softmax log_softmax where lt le gt ge eq ne \
      stop_gradient const
      """
    for name in contract.split(separator: " ") {
      let op = try XCTUnwrap(byName[String(name)], "missing \(name)")
      XCTAssertFalse((op["doc"] as? String ?? "").isEmpty, "\(name) has no doc")
      XCTAssertNotNil(op["attrs"] as? [String], "\(name) has no attrs list")
    }
    XCTAssertEqual(byName["add"]?["arity"] as? Int, 2)
    XCTAssertEqual(byName["where"]?["arity"] as? Int, 3)
    XCTAssertTrue(byName["concat"]?["arity"] is NSNull, "variadic: null")
    XCTAssertEqual(byName["sum"]?["attrs"] as? [String], ["axis", "keepdims"])
  }

  func testCheckNumericsNamesTheNodeInBatchesToo() throws {
    let response = try post(
      "/gradient", ["expr": "sum(sqrt(x))", "batch": [["x": [1.0]], ["x": [0.0]]], "check_numerics": true])
    XCTAssertEqual(response.status, 422, response.body)
    let entry = try XCTUnwrap(((response.json as? [String: Any])?["errors"] as? [[String: Any]])?.first)
    XCTAssertEqual(entry["pointer"] as? String, "/expr")
    XCTAssertEqual(entry["position"] as? Int, 4)
    XCTAssertEqual(entry["message"] as? String, "at point 1: sqrt produced a NaN or an infinity in the backward pass")
    // Without the flag the same request answers, with the infinity as a string.
    let plain = try object("/gradient", ["expr": "sum(sqrt(x))", "batch": [["x": [1.0]], ["x": [0.0]]]])
    let second = try XCTUnwrap((plain["results"] as? [[String: Any]])?[1])
    XCTAssertEqual((second["gradient"] as? [String: Any])?["x"] as? [String], ["Infinity"])
  }

  /// A matrix of more than 256 KiB of text is parsed by the workers in slices of rows: the gradient is still exact,
  /// and a broken row near its end still gets the one-thread parse's error.
  func testLargeMatricesAreParsedExactly() throws {
    let rows = 400
    let columns = 80
    let values = Self.randomVector(rows * columns, seed: 21).map { $0 * 3 }
    let matrix = (0..<rows).map { r in
      "[" + values[(r * columns)..<((r + 1) * columns)].map { "\($0)" }.joined(separator: ",") + "]"
    }
    let text = "{\"expr\": \"sum(A * A) + b\", \"at\": {\"A\": [" + matrix.joined(separator: ", ") + "], \"b\": 1}}"
    XCTAssertGreaterThan(text.utf8.count, 1 << 18)
    let answer = try object("/gradient", text)
    let gradient = try XCTUnwrap((answer["gradient"] as? [String: Any])?["A"] as? [[Double]])
    XCTAssertEqual(gradient.count, rows)
    // Within an ulp: Foundation's JSON reader, not the server, may round the last digit.
    assertClose(gradient.flatMap { $0 }, values.map { 2 * $0 }, tolerance: 1e-15, "gradient")
    XCTAssertEqual(try XCTUnwrap(answer["value"] as? Double), values.reduce(0) { $0 + $1 * $1 } + 1, accuracy: 1e-9)

    var broken = matrix
    broken[rows - 2] = String(broken[rows - 2].dropLast()) + ",]"
    let response = try post(
      "/gradient", "{\"expr\": \"sum(A)\", \"at\": {\"A\": [" + broken.joined(separator: ", ") + "]}}")
    XCTAssertEqual(response.status, 400, response.body)
    let entry = try XCTUnwrap(((response.json as? [String: Any])?["errors"] as? [[String: Any]])?.first)
    XCTAssertEqual(entry["pointer"] as? String, "/at/A/\(rows - 2)/\(columns)")
    XCTAssertTrue((entry["message"] as? String ?? "").contains("not valid JSON"), "\(entry)")
  }
}
