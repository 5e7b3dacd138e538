#!/bin/sh
# Audits the runtime dependencies (what users install) against the npm advisory database.
# Not part of CI on purpose: its findings change with the advisory database, not with our code.
# Every finding must be fixed or explained in docs/security.md ("Dependency audit").
# Usage: sh scripts/audit.sh            (exit status: npm audit's; 0 = no finding)
#        sh scripts/audit.sh --json     (the full report as JSON)
set -u
cd "$(dirname "$0")/.."
echo "npm audit --omit=dev ($(date -u +%Y-%m-%dT%H:%MZ), node $(node --version), npm $(npm --version), registry $(npm config get registry 2>/dev/null))"
out=$(npm audit --omit=dev "$@" 2>&1)
status=$?
printf '%s\n' "$out" | grep -v '^npm warn Unknown project config'
if printf '%s' "$out" | grep -q 'audit endpoint returned an error'; then
  echo
  echo "audit.sh: the registry did not answer the audit request (npm's log says which HTTP status)."
  echo "audit.sh: this happens behind registry mirrors that serve packages but not the advisory API;"
  echo "audit.sh: run it where https://registry.npmjs.org is reachable. No finding was checked."
fi
exit $status
