#!/usr/bin/env bash
# Downloads (here, where Debian's registry is reachable) the Debian -dev packages that a lent GPU
# machine may lack, into .devdebs/ (git-ignored), so scripts/gpu_check.sh can unpack them there
# into a private prefix. Only Debian packages, pinned by the running Debian release.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .devdebs
exclude="$(git rev-parse --git-dir)/info/exclude"
mkdir -p "$(dirname "$exclude")"
grep -qx '/.devdebs/' "$exclude" 2>/dev/null || echo '/.devdebs/' >>"$exclude"
cd .devdebs
apt-get download libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 \
  libutf8proc-dev libutf8proc2 libssl-dev libgtest-dev libgmock-dev libbenchmark-dev \
  libbenchmark1debian libhiredis-dev libhiredis0.14 2>&1 | grep -v unsandboxed || true
ls -1
