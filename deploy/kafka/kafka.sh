#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, combined broker+controller) for development and tests.
#
#   deploy/kafka/kafka.sh fetch|start|stop|status|restart|wipe
#
# Kafka's jars come from Maven Central through Maven (checksums enforced), cached outside the
# repo, so a cached start needs no network and takes seconds. Settings, all optional:
#   STATUSFLOW_KAFKA_VERSION  Kafka release (default 4.4.0, the current release; README says why 4.x)
#   STATUSFLOW_KAFKA_PORT     client port on 127.0.0.1 (default 9092); controller uses port+1
#   STATUSFLOW_KAFKA_DATA     data + log + pid directory (default: cache dir, one per port)
#   STATUSFLOW_KAFKA_HEAP     JVM heap (default 768m: the machine is shared, 2 cores)
#   STATUSFLOW_CACHE          cache root (default ${XDG_CACHE_HOME:-~/.cache}/statusflow)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=${STATUSFLOW_KAFKA_VERSION:-4.4.0}
port=${STATUSFLOW_KAFKA_PORT:-9092}
controller_port=$((port + 1))
cache=${STATUSFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/statusflow}
libs="$cache/kafka-$version/libs"
data=${STATUSFLOW_KAFKA_DATA:-$cache/kafka-data-$port}
heap=${STATUSFLOW_KAFKA_HEAP:-768m}
pidfile="$data/kafka.pid"

die() { echo "kafka.sh: $*" >&2; exit 1; }

fetch() {
    [ -f "$libs/.complete" ] && return 0
    command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka $version; install it (apt-get install maven)"
    command -v java >/dev/null || die "Java 17+ is needed to run Kafka $version"
    echo "kafka.sh: fetching Apache Kafka $version from Maven Central into $libs" >&2
    rm -rf "$libs"
    mvn -B -q --strict-checksums -f "$here/pom.xml" \
        -Dmaven.repo.local="$cache/m2" -Dkafka.version="$version" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs" >&2 \
        || die "Maven could not fetch Kafka $version (network? version?)"
    touch "$libs/.complete"
}

running_pid() {
    [ -f "$pidfile" ] || return 1
    local pid
    pid=$(cat "$pidfile")
    kill -0 "$pid" 2>/dev/null && echo "$pid"
}

write_config() {
    cat >"$data/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data/logs
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# A single local node has nobody to wait for; the 3 s default only slows every test start.
group.initial.rebalance.delay.ms=0
EOF
}

# No start-up tricks that cost throughput (-XX:TieredStopAtLevel): benchmarks use this broker.
java_opts=(-Xms256m -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -Djava.awt.headless=true -Dkafka.logs.dir="$data"
    -Dlog4j2.configurationFile="$here/log4j2.xml" -cp "$libs/*")

start() {
    if pid=$(running_pid); then echo "kafka.sh: already running (pid $pid) on 127.0.0.1:$port"; return 0; fi
    fetch
    mkdir -p "$data"
    write_config
    if [ ! -f "$data/logs/meta.properties" ]; then
        java "${java_opts[@]}" kafka.tools.StorageTool format --ignore-formatted \
            -t "$(java "${java_opts[@]}" kafka.tools.StorageTool random-uuid)" \
            -c "$data/server.properties" >"$data/format.log" 2>&1 \
            || die "formatting KRaft storage failed, see $data/format.log"
    fi
    : >"$data/server.log"
    java "${java_opts[@]}" kafka.Kafka "$data/server.properties" </dev/null >"$data/stdout.log" 2>&1 &
    echo $! >"$pidfile"
    local waited=0
    until grep -q "Kafka Server started" "$data/server.log" 2>/dev/null; do
        kill -0 "$(cat "$pidfile")" 2>/dev/null || die "broker exited during start-up, see $data/server.log and $data/stdout.log"
        sleep 0.2
        waited=$((waited + 1))
        [ "$waited" -lt 600 ] || die "broker not ready after 120 s, see $data/server.log"
    done
    echo "kafka.sh: Kafka $version ready on 127.0.0.1:$port (pid $(cat "$pidfile"), data $data)"
}

stop() {
    local pid
    if ! pid=$(running_pid); then rm -f "$pidfile"; echo "kafka.sh: not running"; return 0; fi
    kill -TERM "$pid"
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; echo "kafka.sh: stopped"; return 0; }
        sleep 0.1
    done
    echo "kafka.sh: broker did not stop in 30 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

status() {
    if pid=$(running_pid); then echo "kafka.sh: running (pid $pid) on 127.0.0.1:$port"; else echo "kafka.sh: not running"; return 3; fi
}

case "${1:-}" in
    fetch) fetch ;;
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    status) status ;;
    wipe) stop; rm -rf "$data"; echo "kafka.sh: removed $data" ;;
    *) echo "usage: $0 fetch|start|stop|status|restart|wipe" >&2; exit 2 ;;
esac
