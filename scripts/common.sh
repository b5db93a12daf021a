# Shared by the scripts: installs what the build needs when it is missing, and finds a started server's port.
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

# The Python tools the tests run (openapi-spec-validator, schemathesis), pinned in scripts/requirements-tools.txt,
# in the git-ignored venv .venv-tools/ of the repository root; or, given REQUIREMENTS and VENV, the tools pinned there
# in that venv. It is made when missing, and made again when the pins or the Python version changed. Prints the
# venv's bin folder. Run from the repository root.
adjoint_python_tools() {
  local requirements="${1:-scripts/requirements-tools.txt}" venv="${2:-.venv-tools}"
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    adjoint_install_debian_packages python3 python3-venv
  fi
  local stamp
  stamp="$(sha256sum "$requirements" | cut -d' ' -f1) $(python3 -c 'import sys; print(sys.version.split()[0])')"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "$PWD/$venv/bin"
    return 0
  fi
  echo "installing the Python tools of $requirements into $venv" >&2
  # Each step is checked: errexit does not reach into the command substitution this usually runs in.
  rm -rf "$venv" || return 1
  python3 -m venv "$venv" >&2 || return 1
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" >&2 || return 1
  echo "$stamp" >"$venv/stamp" || return 1
  echo "$PWD/$venv/bin"
}

# Waits (up to 10 s) for `adjoint serve`, whose standard output goes to FILE, to print the loopback port it listens
# on ("adjoint listening on http://127.0.0.1:PORT"), and prints the port; prints nothing when the process PID exits
# first or the time runs out.
adjoint_listening_port() {
  local file="$1" pid="$2" port=""
  for _ in $(seq 1 200); do
    port="$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$file" | head -n 1)"
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "$port"
}

# Prints a loopback port that was free a moment ago (the kernel's pick, released at once).
adjoint_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
