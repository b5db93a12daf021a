/// Parses the `expr` language of the wire contract into a flat ``Graph``.
///
/// Statements are separated by `;` or line breaks; `name = expression` binds a name and the last statement is the
/// output, named by its binding or else `out`. Precedence, lowest first: comparisons (not chained), `+ -`,
/// `* / @`, unary `-`, `^` (right-associative; `-x^2` is `-(x^2)`, `x^-2` is allowed). Calls take positional
/// arguments and keyword arguments whose values are numbers, lists of numbers, `true` or `false`. Any free name is an
/// input.
///
/// The parser is precedence climbing over an array of Unicode scalars; binary chains are loops, and only nesting
/// (parentheses, unary minus, `^`, calls) recurses, through `parseUnary`, which counts the depth and stops at
/// ``ExprParser/maxNesting``.
///
/// ```swift
/// let graph = try ExprParser.parse("sin(x*y) + x^2")
/// ```
public struct ExprParser {
  /// The deepest nesting of parentheses, calls, unary minus and `^` accepted.
  public static let maxNesting = 256

  private let text: [Unicode.Scalar]
  private var index = 0
  private var depth = 0
  private var graph = Graph()
  private var bindings: [String: Int] = [:]
  private var inputs: [String: Int] = [:]
  private var constants: [UInt64: Int] = [:]

  private init(_ source: String) {
    text = Array(source.unicodeScalars)
  }

  /// Parses `source` into a graph of at most `maxNodes` nodes (inputs, constants and operations, each counted once
  /// however often the text uses it).
  ///
  /// - Throws: a ``Diagnostic`` of kind ``Diagnostic/Kind/syntax`` with the offset of the offending character, or of
  ///   kind ``Diagnostic/Kind/limit`` at the first node past `maxNodes`.
  public static func parse(_ source: String, maxNodes: Int = .max) throws(Diagnostic) -> Graph {
    var parser = ExprParser(source)
    try parser.parseProgram()
    let nodes = parser.graph.nodes
    if nodes.count > maxNodes {
      throw Diagnostic(
        .limit, "the expression has \(nodes.count) nodes, more than the limit of \(maxNodes)",
        at: nodes[maxNodes].position)
    }
    return parser.graph
  }

  // MARK: Statements

  private mutating func parseProgram() throws(Diagnostic) {
    var last: (name: String, node: Int)?
    while true {
      skipSpace()
      guard let scalar = peek() else { break }
      if isSeparator(scalar) {
        index += 1
        continue
      }
      var name = "out"
      var bound = false
      let start = index
      if isNameStart(scalar) {
        let identifier = readName()
        skipSpace()
        if peek() == "=" && peek(1) != "=" {
          index += 1
          name = identifier
          bound = true
        } else {
          index = start
        }
      }
      let node = try parseComparison()
      skipSpace()
      if let next = peek(), !isSeparator(next) {
        throw syntax("unexpected '\(next)' after the end of an expression", at: index)
      }
      if bound { bindings[name] = node }
      last = (name, node)
    }
    guard let last else { throw syntax("the expression is empty", at: 0) }
    graph.outputs = [last]
  }

  // MARK: Expressions

  private static let comparisons: [(String, String)] = [
    ("<=", "le"), (">=", "ge"), ("==", "eq"), ("!=", "ne"), ("<", "lt"), (">", "gt"),
  ]

  private mutating func parseComparison() throws(Diagnostic) -> Int {
    let left = try parseAdditive()
    guard let (op, position) = readComparison() else { return left }
    let right = try parseAdditive()
    if let (_, second) = readComparison() {
      throw syntax("comparisons cannot be chained; use parentheses", at: second)
    }
    return operation(op, [left, right], at: position)
  }

  private mutating func readComparison() -> (String, Int)? {
    skipSpace()
    for (symbol, op) in Self.comparisons where matches(symbol) {
      let position = index
      index += symbol.unicodeScalars.count
      return (op, position)
    }
    return nil
  }

  private mutating func parseAdditive() throws(Diagnostic) -> Int {
    var left = try parseMultiplicative()
    while true {
      skipSpace()
      guard let scalar = peek(), scalar == "+" || scalar == "-" else { return left }
      let position = index
      index += 1
      let right = try parseMultiplicative()
      left = operation(scalar == "+" ? "add" : "sub", [left, right], at: position)
    }
  }

  private mutating func parseMultiplicative() throws(Diagnostic) -> Int {
    var left = try parseUnary()
    while true {
      skipSpace()
      guard let scalar = peek(), scalar == "*" || scalar == "/" || scalar == "@" else { return left }
      let position = index
      index += 1
      let right = try parseUnary()
      let op = scalar == "*" ? "mul" : scalar == "/" ? "div" : "matmul"
      left = operation(op, [left, right], at: position)
    }
  }

  private mutating func parseUnary() throws(Diagnostic) -> Int {
    skipSpace()
    try enter()
    defer { depth -= 1 }
    if peek() == "-" {
      let position = index
      index += 1
      let operand = try parseUnary()
      return operation("neg", [operand], at: position)
    }
    return try parsePower()
  }

  private mutating func parsePower() throws(Diagnostic) -> Int {
    let base = try parsePrimary()
    skipSpace()
    guard peek() == "^" else { return base }
    let position = index
    index += 1
    let exponent = try parseUnary()
    return operation("pow", [base, exponent], at: position)
  }

  private mutating func parsePrimary() throws(Diagnostic) -> Int {
    skipSpace()
    guard let scalar = peek() else { throw syntax("the expression ends where a value was expected", at: index) }
    let start = index
    if scalar == "(" {
      index += 1
      let inner = try parseComparison()
      skipSpace()
      guard peek() == ")" else { throw expected("')' to close the '(' at \(start)") }
      index += 1
      return inner
    }
    if isDigit(scalar) || (scalar == "." && peek(1).map(isDigit) == true) {
      let value = try readNumber()
      return constant(value, at: start)
    }
    if isNameStart(scalar) {
      let name = readName()
      skipSpace()
      if peek() == "(" { return try parseCall(name, at: start) }
      if name == "true" || name == "false" {
        throw syntax("'\(name)' is only allowed as a keyword argument", at: start)
      }
      if let bound = bindings[name] { return bound }
      if let input = inputs[name] { return input }
      graph.nodes.append(Graph.Node(kind: .input(name), position: start))
      inputs[name] = graph.nodes.count - 1
      return graph.nodes.count - 1
    }
    throw syntax("unexpected '\(scalar)' where a value was expected", at: start)
  }

  private mutating func parseCall(_ name: String, at position: Int) throws(Diagnostic) -> Int {
    index += 1  // "("
    var arguments: [Int] = []
    var attributes: [(name: String, value: Graph.Attribute, position: Int)] = []
    skipSpace()
    if peek() == ")" {
      index += 1
      return operation(name, arguments, attributes, at: position)
    }
    while true {
      skipSpace()
      let start = index
      if let scalar = peek(), isNameStart(scalar) {
        let key = readName()
        skipSpace()
        if peek() == "=" && peek(1) != "=" {
          index += 1
          if attributes.contains(where: { $0.name == key }) {
            throw syntax("keyword argument '\(key)' is given twice", at: start)
          }
          attributes.append((key, try parseAttribute(), start))
        } else {
          index = start
          guard attributes.isEmpty else { throw syntax("a positional argument follows a keyword argument", at: start) }
          arguments.append(try parseComparison())
        }
      } else {
        guard attributes.isEmpty else { throw syntax("a positional argument follows a keyword argument", at: start) }
        arguments.append(try parseComparison())
      }
      skipSpace()
      guard let next = peek() else { throw expected("')' to close the call of '\(name)'") }
      index += 1
      if next == ")" { break }
      guard next == "," else {
        index -= 1
        throw expected("',' or ')' in the call of '\(name)'")
      }
    }
    return operation(name, arguments, attributes, at: position)
  }

  private mutating func parseAttribute() throws(Diagnostic) -> Graph.Attribute {
    skipSpace()
    let start = index
    if let scalar = peek(), isNameStart(scalar) {
      let word = readName()
      if word == "true" { return .bool(true) }
      if word == "false" { return .bool(false) }
      throw syntax("a keyword value must be a number, a list of numbers, true or false", at: start)
    }
    if peek() == "[" {
      index += 1
      var values: [Double] = []
      skipSpace()
      if peek() == "]" {
        index += 1
        return .numbers(values)
      }
      while true {
        values.append(try readSignedNumber())
        skipSpace()
        guard let next = peek() else { throw expected("']' to close the list") }
        index += 1
        if next == "]" { return .numbers(values) }
        guard next == "," else {
          index -= 1
          throw expected("',' or ']' in the list")
        }
      }
    }
    return .number(try readSignedNumber())
  }

  // MARK: Graph building

  private mutating func operation(
    _ name: String, _ arguments: [Int], _ attributes: [(name: String, value: Graph.Attribute, position: Int)] = [],
    at position: Int
  ) -> Int {
    graph.nodes.append(
      Graph.Node(kind: .operation(name: name, arguments: arguments, attributes: attributes), position: position))
    return graph.nodes.count - 1
  }

  private mutating func constant(_ value: Double, at position: Int) -> Int {
    if let existing = constants[value.bitPattern] { return existing }
    graph.nodes.append(Graph.Node(kind: .constant(value), position: position))
    constants[value.bitPattern] = graph.nodes.count - 1
    return graph.nodes.count - 1
  }

  private mutating func enter() throws(Diagnostic) {
    depth += 1
    if depth > Self.maxNesting {
      throw syntax("the expression is nested more than \(Self.maxNesting) levels deep", at: index)
    }
  }

  // MARK: Lexing

  private func peek(_ offset: Int = 0) -> Unicode.Scalar? {
    index + offset < text.count ? text[index + offset] : nil
  }

  private func matches(_ symbol: String) -> Bool {
    var position = index
    for scalar in symbol.unicodeScalars {
      guard position < text.count, text[position] == scalar else { return false }
      position += 1
    }
    return true
  }

  private func isSeparator(_ scalar: Unicode.Scalar) -> Bool { scalar == ";" || scalar == "\n" }
  private func isDigit(_ scalar: Unicode.Scalar) -> Bool { scalar >= "0" && scalar <= "9" }
  private func isNameStart(_ scalar: Unicode.Scalar) -> Bool {
    (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z") || scalar == "_"
  }
  private func isNamePart(_ scalar: Unicode.Scalar) -> Bool { isNameStart(scalar) || isDigit(scalar) }

  /// Skips spaces, tabs and carriage returns (a CR before LF ends a statement with the LF).
  private mutating func skipSpace() {
    while let scalar = peek(), scalar == " " || scalar == "\t" || scalar == "\r" { index += 1 }
  }

  private mutating func readName() -> String {
    var name = String.UnicodeScalarView()
    while let scalar = peek(), isNamePart(scalar) {
      name.append(scalar)
      index += 1
    }
    return String(name)
  }

  private mutating func readSignedNumber() throws(Diagnostic) -> Double {
    skipSpace()
    var negative = false
    if peek() == "-" {
      negative = true
      index += 1
      skipSpace()
    }
    guard let scalar = peek(), isDigit(scalar) || scalar == "." else {
      throw syntax("a keyword value must be a number, a list of numbers, true or false", at: index)
    }
    let value = try readNumber()
    return negative ? -value : value
  }

  private mutating func readNumber() throws(Diagnostic) -> Double {
    let start = index
    var literal = ""
    func take(_ predicate: (Unicode.Scalar) -> Bool) {
      while let scalar = peek(), predicate(scalar) {
        literal.unicodeScalars.append(scalar)
        index += 1
      }
    }
    take(isDigit)
    if peek() == "." {
      literal += "."
      index += 1
      take(isDigit)
    }
    if let e = peek(), e == "e" || e == "E" {
      literal += "e"
      index += 1
      if let sign = peek(), sign == "+" || sign == "-" {
        literal.unicodeScalars.append(sign)
        index += 1
      }
      guard let digit = peek(), isDigit(digit) else {
        throw syntax("the exponent of a number has no digits", at: index)
      }
      take(isDigit)
    }
    if let next = peek(), isNameStart(next) || next == "." {
      throw syntax("unexpected '\(next)' in a number", at: index)
    }
    if literal.hasPrefix(".") { literal = "0" + literal }
    if literal.hasSuffix(".") { literal += "0" }
    guard let value = Double(literal), value.isFinite else {
      throw syntax("the number \(literal) is outside the range of a double", at: start)
    }
    return value
  }

  private func syntax(_ message: String, at position: Int) -> Diagnostic {
    Diagnostic(.syntax, message, at: position)
  }

  private func expected(_ what: String) -> Diagnostic {
    if let scalar = peek() { return syntax("expected \(what), found '\(scalar)'", at: index) }
    return syntax("expected \(what), found the end of the expression", at: index)
  }
}
