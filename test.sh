#!/usr/bin/env bash
# Runs pombo's whole test suite: installs the Debian tools the end-to-end
# tests drive when they are missing, then `go vet` and `go test -race`.
# Under CI (CI=true) a tool that cannot be installed fails the run; the tests
# themselves also fail, never skip, when a tool is missing under CI.
set -euo pipefail
cd "$(dirname "$0")"

# command:package pairs of the tools the end-to-end tests use.
TOOLS=(
  swaks:swaks
  mbsync:isync
  fetchmail:fetchmail
  getmail:getmail6
  python3:python3
  postfix:postfix
)

missing=()
for pair in "${TOOLS[@]}"; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "test.sh: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
    if [ "${CI:-}" = true ]; then
      echo "test.sh: could not install ${missing[*]}" >&2
      exit 1
    fi
    echo "test.sh: could not install ${missing[*]}; the tests that need them will be skipped" >&2
  fi
fi

go vet ./...
go test -race -timeout 25m -count=1 ./...
