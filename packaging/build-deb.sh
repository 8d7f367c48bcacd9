#!/usr/bin/env bash
# Build the Debian package target/debian/topicd_<version>-1_<arch>.deb: the release binaries,
# then the man pages and shell completions generated from the clap definitions
# (packaging/assets, into target/release/assets/), then cargo-deb (installed first when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version >/dev/null 2>&1; then
    echo "installing cargo-deb $CARGO_DEB_VERSION (cargo install, about a minute)" >&2
    cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
fi
cargo build --release --bins
rm -rf target/release/assets
target/release/topicd-assets target/release/assets
gzip -9n target/release/assets/man/*   # Debian policy: man pages compressed
rm -f target/debian/topicd_*.deb
# --strip: the release profile keeps line tables for backtraces; the package does not ship them.
cargo deb -p topicd --no-build --strip "$@"
