#!/usr/bin/env bash
# Installs the Debian packages the system test tier needs (DESIGN.md §5):
#   python3-websockets + python3-numpy  the Habitat bridge under test
#   mono-mcs                            compiling the Unity bridge against UnityEngine stubs
#   chromium                            checking the HTML report headless (playwright-core drives it)
# Training needs more (python3-torch python3-onnx libopenblas0-pthread): see training/README.md.
set -euo pipefail
PKGS=(python3-websockets python3-numpy mono-mcs chromium)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then echo "setup-system: all present (${PKGS[*]})"; exit 0; fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "setup-system: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
