// swift-tools-version:6.1
// Examples of the Adjoint Swift SDK. Build and run from this directory: `swift run LinearRegression`.
import PackageDescription

let package = Package(
  name: "AdjointExamples",
  platforms: [.macOS(.v15)],
  dependencies: [.package(name: "Adjoint", path: "..")],
  targets: [
    // Linear regression by gradient descent: the gradient from the service, the update in Swift.
    .executableTarget(
      name: "LinearRegression", dependencies: [.product(name: "AdjointClient", package: "Adjoint")])
  ],
  swiftLanguageModes: [.v6]
)
