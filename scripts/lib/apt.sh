# shellcheck shell=bash
# scripts/lib/apt.sh - install missing Debian packages the way every scripts/* daemon runner does. Sourced, not run.
#
#   apt_install DIR PACKAGE...   install the packages that are missing; apt-get's output goes to DIR/apt.log
#
# apt-get update runs once per process, only when something is missing. A policy-rc.d keeps the packages' own
# services (the system mariadb, redis, prometheus) from starting: ours are started from .stack. The caller defines
# say and die (its own prefix on messages).

APT_UPDATED=0

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

apt_install() {
  local dir=$1 missing=() p
  shift
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  mkdir -p "$dir"
  local aptlog="$dir/apt.log" policy=/usr/sbin/policy-rc.d own_policy=0 rc=0
  export DEBIAN_FRONTEND=noninteractive
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# written by a tidings script during apt-get install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  if ((!APT_UPDATED)); then
    say "apt-get update"
    apt-get update -q >"$aptlog" 2>&1 || rc=$?
    APT_UPDATED=1
  fi
  if ((rc == 0)); then
    say "installing ${missing[*]} (apt-get)"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$aptlog" 2>&1 || rc=$?
  fi
  if ((own_policy)); then
    rm -f "$policy"
    trap - EXIT
  fi
  if ((rc != 0)); then
    tail -n 30 "$aptlog" >&2
    die "apt-get failed installing ${missing[*]} (full log: $aptlog)"
  fi
}
