# Build stage: a Swift toolchain image compiles a release binary with the static Swift standard library.
FROM swift:6.1-bookworm AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends libssl-dev zlib1g-dev pkg-config \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift openapi.yaml ./
COPY Sources ./Sources
RUN swift build -c release --product adjoint --static-swift-stdlib \
  && cp "$(swift build -c release --show-bin-path)/adjoint" /adjoint

# Runtime stage: slim Debian with only the shared libraries the binary needs, run as a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends libssl3 zlib1g ca-certificates \
  && rm -rf /var/lib/apt/lists/* \
  && useradd --system --uid 10001 --no-create-home adjoint
COPY --from=build /adjoint /usr/local/bin/adjoint
USER adjoint
ENV ADJOINT_HOST=0.0.0.0 ADJOINT_PORT=8080
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/adjoint"]
CMD ["serve"]
