#!/usr/bin/env bash
# Installs OpenLDAP's slapd and ldap-utils for the ldap-auth tests
# (test/helpers/slapd.ts starts a private slapd per test file; the system
# service is never configured, started or used).
#
# Non-interactive (debconf preseeded: no admin password prompt, no default
# database), idempotent, silent when everything is already in place.
# Debian/Ubuntu (apt-get). Runs apt-get through sudo when not root.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
# slapd and slapadd live in sbin, often not on a non-root PATH.
sbin() {
  for d in /usr/sbin /usr/local/sbin /usr/local/libexec; do [ -x "$d/$1" ] && return 0; done
  have "$1"
}
installed() { sbin slapd && sbin slapadd && have ldapsearch; }

SUDO=""
if [ "$(id -u)" -ne 0 ] && have sudo; then SUDO="sudo"; fi

# Ubuntu confines /usr/sbin/slapd with AppArmor to the system paths; the tests
# run private instances from a temporary directory, so lift the confinement.
unconfine() {
  local profile=/etc/apparmor.d/usr.sbin.slapd
  if [ -f "$profile" ] && [ ! -e /etc/apparmor.d/disable/usr.sbin.slapd ] && have apparmor_parser && [ -d /sys/kernel/security/apparmor ]; then
    $SUDO mkdir -p /etc/apparmor.d/disable
    $SUDO ln -sf "$profile" /etc/apparmor.d/disable/usr.sbin.slapd
    $SUDO apparmor_parser -R "$profile" >/dev/null 2>&1 || true
  fi
}

if installed; then
  unconfine
  exit 0
fi

if ! have apt-get; then
  echo "install-slapd.sh: apt-get not found; install OpenLDAP's slapd and ldap-utils with your package manager" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
  echo "install-slapd.sh: needs root (or sudo) to install slapd and ldap-utils" >&2
  exit 1
fi

echo "== installing slapd and ldap-utils (apt-get) =="
# No configuration: the package installs the binaries only; no default
# database, no admin password, nothing for the system service to serve.
printf '%s\n' \
  'slapd slapd/no_configuration boolean true' \
  'slapd slapd/password1 password' \
  'slapd slapd/password2 password' | $SUDO debconf-set-selections

# Keep the package from starting the system service during the install
# (policy-rc.d "101 = action forbidden", honoured by invoke-rc.d and
# deb-systemd-invoke); only when no policy is in place already.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  trap '$SUDO rm -f "$POLICY"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
apt_install() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slapd ldap-utils >/dev/null; }
# Package lists missing or stale: refresh them and try again.
if ! apt-cache show slapd >/dev/null 2>&1 || ! apt_install; then
  $SUDO apt-get update -qq
  apt_install
fi

unconfine
# Should a service have started anyway, stop it: the tests do not use it.
if have systemctl && systemctl is-active --quiet slapd 2>/dev/null; then
  $SUDO systemctl stop slapd >/dev/null 2>&1 || true
fi

installed || { echo "install-slapd.sh: slapd or ldap-utils still missing after apt-get install" >&2; exit 1; }
echo "slapd installed: $(/usr/sbin/slapd -VV 2>&1 | head -n 1 || true)"
