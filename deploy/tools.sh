#!/usr/bin/env bash
# Make sure the system tools a target needs are there: deploy/tools.sh COMMAND:DEBIAN_PACKAGE ...
#
# As root (CI, a fresh VM) it installs the missing packages with apt-get. As anyone else it names
# them and the command to install them, instead of failing on apt's lock file.
set -euo pipefail

missing=()
for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" -ne 0 ]; then
    echo "statusflow needs these Debian/Ubuntu packages: ${missing[*]}" >&2
    echo "install them with:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "installing Debian packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
