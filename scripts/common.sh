# Shared by scripts/serve and scripts/test: installs what the build needs when it is missing.
# Sourced, not run.

# Debian packages the build links against (OpenSSL, zlib and OpenBLAS, found through pkg-config) and the tools the
# tests use.
ADJOINT_DEBIAN_PACKAGES=(libssl-dev zlib1g-dev libopenblas-dev pkg-config curl openssl)

adjoint_install_debian_packages() {
  local missing=()
  for package in "${ADJOINT_DEBIAN_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing Debian packages: ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

adjoint_require_swift() {
  if ! command -v swift >/dev/null 2>&1; then
    echo "swift is not on PATH: install Swift 6.1 or newer from swift.org" >&2
    exit 1
  fi
}
