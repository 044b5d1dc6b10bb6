# scripts/lib/jvm.sh - sourced, not run: Java 17 and Maven for the scripts that run Java daemons from Maven Central
# jars (scripts/stack's Kafka and OpenSearch, scripts/kafka-cluster).
#
# The sourcing script sources scripts/lib/apt.sh first and defines say and die (its own message prefix) and STACK_DIR
# (.stack at the repo root, where apt-get's log goes).
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables set here are read by the sourcing script

# Jars fetched with Maven are unpacked once here, shared by every checkout and script.
CACHE_DIR="${TIDINGS_STACK_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/tidings-stack}"

JAVA17_HOME=''
# Kafka and OpenSearch 2.19 run on Debian's Java 17.
java17_home() {
  local d
  for d in /usr/lib/jvm/java-17-openjdk-*; do
    if [[ -x $d/bin/java ]]; then
      JAVA17_HOME=$d
      return 0
    fi
  done
  return 1
}

ensure_java17() {
  java17_home && return 0
  apt_install "$STACK_DIR" openjdk-17-jre-headless
  java17_home || die "no Java 17 under /usr/lib/jvm after installing openjdk-17-jre-headless"
}

ensure_maven() {
  command -v mvn >/dev/null && return 0
  apt_install "$STACK_DIR" maven
}

# First <NAME>...</NAME> value of a pom (a property such as kafka.version).
pom_property() { sed -n "s:.*<$2>\(.*\)</$2>.*:\1:p" "$1" | head -n1; }

# Short hash of files, to name a cache entry after the recipe that built it.
files_hash() { cat "$@" | sha256sum | cut -c1-12; }

# mvn with its output in a log, shown only when it fails.
mvn_quiet() {
  local log=$1
  shift
  if ! mvn -B -q "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    return 1
  fi
}
