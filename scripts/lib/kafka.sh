# scripts/lib/kafka.sh - sourced, not run: the Kafka broker's jars, its JVM command line and a readiness probe,
# shared by scripts/stack (one broker on 9092) and scripts/kafka-cluster (three brokers on 9192-9194), so both run
# the same Kafka on the same Java.
#
# The sourcing script sources scripts/lib/jvm.sh first and defines ROOT (the repo root).
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables set here are read by the sourcing script

KAFKA_POM="$ROOT/scripts/kafka/pom.xml"
# Set by kafka_fetch: the folder of the broker's jars.
KAFKA_LIBS=''

kafka_cache_dir() {
  echo "$CACHE_DIR/kafka-$(pom_property "$KAFKA_POM" kafka.version)-$(files_hash "$KAFKA_POM")"
}

# The version of the fetched broker, "-" before the first fetch.
kafka_version() {
  local jar
  jar=$(find "$(kafka_cache_dir)/libs" -maxdepth 1 -name 'kafka_2.13-*.jar' 2>/dev/null | head -n1)
  if [[ -n $jar ]]; then
    jar=${jar##*/kafka_2.13-}
    echo "${jar%.jar}"
  else echo -; fi
}

# The broker's jars: fetched once with Maven into the cache, named after the pom's hash.
kafka_fetch() {
  local cache tmp
  cache=$(kafka_cache_dir)
  KAFKA_LIBS="$cache/libs"
  [[ -f $cache/.complete ]] && return 0
  ensure_maven
  say "kafka: fetching jars with Maven (scripts/kafka/pom.xml) into $cache"
  mkdir -p "$CACHE_DIR"
  tmp=$(mktemp -d "$CACHE_DIR/.kafka.XXXXXX")
  mvn_quiet "$tmp/mvn.log" -f "$KAFKA_POM" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp/libs" || die "kafka: Maven could not fetch the broker's jars"
  touch "$tmp/.complete"
  rm -rf "$cache"
  mv "$tmp" "$cache"
}

# Java 17 with the broker's jars and log4j2 configuration, logging into LOG_DIR (for kafka.tools.StorageTool).
#   kafka_java LOG_DIR ARG...
kafka_java() {
  local logdir=$1
  shift
  "$JAVA17_HOME/bin/java" -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.properties" \
    -Dkafka.logs.dir="$logdir" -cp "$KAFKA_LIBS/*" "$@"
}

# The command line of a broker, into the array KAFKA_ARGV: the same JVM flags as Kafka's kafka-server-start.
#   kafka_server_argv HEAP_MIN HEAP_MAX LOG_DIR PROPERTIES
kafka_server_argv() {
  KAFKA_ARGV=("$JAVA17_HOME/bin/java" "-Xms$1" "-Xmx$2"
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.properties" -Dkafka.logs.dir="$3"
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$4")
}

# Ready = the broker answers a request. An ApiVersions v0 request (correlation id 1, client id
# "s") written with bash's /dev/tcp: the broker only serves requests once it has started and
# been unfenced by the controller. The answer must carry correlation id 1 and error code 0.
# Prints why not when it is not ready.
#   kafka_api_versions HOST PORT
kafka_api_versions() {
  local host=$1 port=$2 b=()
  read -ra b <<<"$(timeout 3 bash -c "exec 3<>/dev/tcp/$host/$port || exit 1
    printf '\\x00\\x00\\x00\\x0b\\x00\\x12\\x00\\x00\\x00\\x00\\x00\\x01\\x00\\x01s' >&3
    head -c 10 <&3 | od -An -tx1" 2>/dev/null | tr -s ' \n' ' ')" || true
  # bytes 0-3: size, 4-7: correlation id, 8-9: error code
  if [[ "${b[*]:4:6}" == "00 00 00 01 00 00" ]]; then return 0; fi
  if ((${#b[@]} >= 10)); then
    echo "ApiVersions answered with error code 0x${b[8]}${b[9]}"
  elif timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
    echo "port $port open, no ApiVersions answer yet"
  else
    echo "port $port closed"
  fi
  return 1
}
