# The image of `adjoint serve`. Build: docker build -t adjoint . ; run: docker run -p 8080:8080 adjoint
# Configuration comes from ADJOINT_* environment variables (see `adjoint serve --help`), e.g. -e ADJOINT_WORKERS=2.

# BUILDER names the stage or image whose /adjoint goes into the runtime image: the build stage below by default.
# scripts/check-container passes an image holding a binary built on the host with the same command, since its
# machines cannot run the toolchain image; the runtime stage is the same either way.
ARG BUILDER=build

# Build stage: the Swift toolchain compiles a release binary with the static Swift standard library. The static
# FoundationNetworking (URLSession, for `adjoint health` and the SDK) leaves libcurl to the linker: -lcurl, from
# libcurl4-openssl-dev, and libcurl4 at run time.
FROM swift:6.3.1-bookworm AS build
# Debian's stable suite is the pin: its archive keeps only the current version of each package, so exact version
# pins would break the build at the next point release or security update.
# hadolint ignore=DL3008
RUN apt-get update \
  && apt-get install -y --no-install-recommends libssl-dev zlib1g-dev libopenblas-dev libcurl4-openssl-dev pkg-config \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN swift build -c release --static-swift-stdlib -Xlinker -lcurl --product adjoint \
  && cp "$(swift build -c release --static-swift-stdlib -Xlinker -lcurl --show-bin-path)/adjoint" /adjoint

# The stage the runtime stage copies from (a stage name or an image, from BUILDER).
FROM ${BUILDER} AS binary

# Runtime stage: slim Debian with only the shared libraries the binary loads (its NEEDED entries: OpenSSL, zlib,
# OpenBLAS, libcurl, libstdc++; libc, libm and libgcc_s are in the base image), run as a fixed non-root user.
FROM debian:bookworm-slim
# As in the build stage, the stable suite is the pin.
# hadolint ignore=DL3008
RUN apt-get update \
  && apt-get install -y --no-install-recommends libssl3 zlib1g libopenblas0-pthread libcurl4 libstdc++6 \
  && rm -rf /var/lib/apt/lists/* \
  && groupadd --system --gid 10001 adjoint \
  && useradd --system --uid 10001 --gid adjoint --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    adjoint
COPY --from=binary /adjoint /usr/local/bin/adjoint
# Numeric, so that Kubernetes' runAsNonRoot can check it without the image's /etc/passwd.
USER 10001:10001
ENV ADJOINT_HOST=0.0.0.0 \
  ADJOINT_PORT=8080 \
  ADJOINT_LOG_FORMAT=json
EXPOSE 8080
# SIGTERM drains: the server stops accepting, finishes requests in flight and exits 0 (ADJOINT_DRAIN_TIMEOUT).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/usr/local/bin/adjoint", "health"]
ENTRYPOINT ["/usr/local/bin/adjoint"]
CMD ["serve"]
