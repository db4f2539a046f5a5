#!/usr/bin/env bash
# Benchmarks pombo's inbound SMTP against a separate Postfix instance, both
# loaded by smtp-source on loopback. Needs root (Postfix's master), and
# Debian's postfix package (smtp-source ships with it).
#
#   bench/smtp/run.sh                      # the full table (a few minutes)
#   bench/smtp/run.sh -states empty -sessions 10 -n 3000
#
# Flags are those of main.go (go run ./bench/smtp -h).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/pombo" ./cmd/pombo
go build -o "$bin/smtpbench" ./bench/smtp
"$bin/smtpbench" -pombo "$bin/pombo" "$@"
