# Shared by bin/run and bin/test: find Python 3.11+, create .venv, install the project.
# shellcheck shell=bash

KURA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$KURA_ROOT/.venv"

say() { printf '\033[1m[kura]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[kura]\033[0m %s\n' "$*" >&2; exit 1; }

find_python() {
  local candidate
  for candidate in "${KURA_PYTHON:-}" python3.11 python3.12 python3.13 python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 14) else 1)'; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

# ensure_venv EXTRA: create .venv and install the project (".[EXTRA]" when given).
# Reinstalls only when pyproject.toml or the extra changed since the last install.
ensure_venv() {
  local extra=${1:-} spec="." stamp
  [ -n "$extra" ] && spec=".[$extra]"
  if [ ! -x "$VENV/bin/python" ]; then
    local python
    python=$(find_python) || die "Kura needs Python 3.11 to 3.13 (set KURA_PYTHON to its path)."
    say "creating virtualenv .venv with $python"
    "$python" -m venv "$VENV" || die "could not create a virtualenv (on Debian: apt-get install python3-venv)"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
  fi
  stamp="$(cat "$KURA_ROOT/pyproject.toml" "$KURA_ROOT/client/pyproject.toml" | sha256sum | cut -c1-16)-$extra"
  if [ "$(cat "$VENV/.kura-installed" 2>/dev/null)" != "$stamp" ]; then
    say "installing $spec and the command-line uploader (client/) into .venv"
    (cd "$KURA_ROOT" && "$VENV/bin/python" -m pip install --quiet -e "$spec" -e ./client) \
      || die "pip install failed"
    echo "$stamp" >"$VENV/.kura-installed"
  fi
  export PATH="$VENV/bin:$PATH"
}

APT_UPDATED=0

# apt_install PACKAGE...: install Debian packages (as root only; else say what is missing).
apt_install() {
  [ "$(id -u)" = 0 ] || die "$* missing; install it (apt-get install $*) or run this as root"
  command -v apt-get >/dev/null || die "$* missing and apt-get is not available to install it"
  if [ "$APT_UPDATED" = 0 ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  say "installing $* from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# GakuNin (SAML) sign-in: pysaml2 signs and verifies XML with Debian's xmlsec1.
ensure_xmlsec1() {
  [ -x "${KURA_SAML_XMLSEC_BINARY:-/usr/bin/xmlsec1}" ] && return 0
  apt_install xmlsec1
}

# Previews of images (repository/previews/): pyvips needs Debian's libvips. bin/test installs
# it (as root); bin/run, with "soft", only says how when it is missing (previews of images
# then fail and are marked so; everything else works).
ensure_libvips() {
  ldconfig -p 2>/dev/null | grep -q 'libvips\.so\.42' && return 0
  if [ "${1:-}" = soft ] && [ "$(id -u)" != 0 ]; then
    say "libvips is missing: image previews need it (apt-get install libvips42)"
    return 0
  fi
  apt_install libvips42
}
