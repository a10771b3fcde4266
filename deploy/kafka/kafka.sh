#!/usr/bin/env bash
# Local Apache Kafka (KRaft) for development and tests: one combined broker+controller, or three.
#
#   deploy/kafka/kafka.sh fetch|start|stop|status|restart|wipe|bootstrap
#   deploy/kafka/kafka.sh kill-node N | start-node N     (one node of a cluster, for failure tests)
#   deploy/kafka/kafka.sh acl ARGS...                     (kafka-acls as the admin, secured mode)
#
# Kafka's jars come from Maven Central through Maven (checksums enforced), cached outside the
# repo, so a cached start needs no network and takes seconds. Settings, all optional:
#   STATUSFLOW_KAFKA_VERSION  Kafka release (default 4.4.0, the current release; README says why 4.x)
#   STATUSFLOW_KAFKA_PORT     client port on 127.0.0.1 (default 9092); controller uses port+1;
#                             node N of a cluster uses port+2(N-1) and the one after it
#   STATUSFLOW_KAFKA_DATA     data + log + pid directory (default: cache dir, one per port)
#   STATUSFLOW_KAFKA_HEAP     JVM heap per node (default 768m: the machine is shared, 2 cores)
#   STATUSFLOW_KAFKA_NODES    1 (default) or 3: three KRaft nodes, one controller quorum
#   STATUSFLOW_KAFKA_SECURITY plaintext (default), sasl_ssl (TLS with a throw-away CA, SCRAM users)
#                             or ssl (TLS, each client logs in with a certificate the CA signed);
#                             both with StandardAuthorizer ACLs (README, "Local Apache Kafka")
#   STATUSFLOW_KAFKA_USERS    extra users to create (SCRAM users for sasl_ssl, client certificates
#                             for ssl; space-separated)
#   STATUSFLOW_CACHE          cache root (default ${XDG_CACHE_HOME:-~/.cache}/statusflow)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=${STATUSFLOW_KAFKA_VERSION:-4.4.0}
port=${STATUSFLOW_KAFKA_PORT:-9092}
cache=${STATUSFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/statusflow}
libs="$cache/kafka-$version/libs"
data=${STATUSFLOW_KAFKA_DATA:-$cache/kafka-data-$port}
heap=${STATUSFLOW_KAFKA_HEAP:-768m}
nodes=${STATUSFLOW_KAFKA_NODES:-1}
security=${STATUSFLOW_KAFKA_SECURITY:-plaintext}
users="admin statusflow ${STATUSFLOW_KAFKA_USERS:-}"

die() { echo "kafka.sh: $*" >&2; exit 1; }
case "$nodes" in 1 | 3) ;; *) die "STATUSFLOW_KAFKA_NODES=$nodes: 1 or 3" ;; esac
case "$security" in plaintext | sasl_ssl | ssl) ;; *) die "STATUSFLOW_KAFKA_SECURITY=$security: plaintext, sasl_ssl or ssl" ;; esac

# The marker holds the pom's hash: a changed pom (a new tool jar) re-fetches an old cache by itself.
# The content only, read from stdin: with the file's path in it, each checkout (worktree) of the
# same pom re-fetched the shared cache after any other had (tens of seconds per broker start).
pom_hash() { { sha256sum <"$here/pom.xml"; echo "$version"; } | sha256sum | cut -c1-16; }

fetch() {
    [ "$(cat "$libs/.complete" 2>/dev/null)" = "$(pom_hash)" ] && return 0
    command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka $version; install it (apt-get install maven)"
    command -v java >/dev/null || die "Java 17+ is needed to run Kafka $version"
    echo "kafka.sh: fetching Apache Kafka $version from Maven Central into $libs" >&2
    # Into a new directory, swapped in at the end: brokers running from the old one keep their jars.
    rm -rf "$libs.new"
    mvn -B -q --strict-checksums -f "$here/pom.xml" \
        -Dmaven.repo.local="$cache/m2" -Dkafka.version="$version" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs.new" >&2 \
        || die "Maven could not fetch Kafka $version (network? version?)"
    pom_hash >"$libs.new/.complete"
    rm -rf "$libs.old"
    [ ! -d "$libs" ] || mv "$libs" "$libs.old"
    mv "$libs.new" "$libs"
}

# Node N: its directory (the data dir itself for a single node, as before clusters), its ports.
node_dir() { if [ "$nodes" = 1 ]; then echo "$data"; else echo "$data/node-$1"; fi; }
node_port() { echo $((port + 2 * ($1 - 1))); }
all_nodes() { seq 1 "$nodes"; }
bootstrap() {
    local servers=() n
    for n in $(all_nodes); do servers+=("127.0.0.1:$(node_port "$n")"); done
    (IFS=,; echo "${servers[*]}")
}

running_pid() {
    local pidfile pid
    pidfile="$(node_dir "$1")/kafka.pid"
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    kill -0 "$pid" 2>/dev/null && echo "$pid"
}

password() { cat "$data/secrets/$1.password"; }

# Secured modes: a CA and a broker certificate for 127.0.0.1 made here, one password per user,
# and in ssl mode a client certificate per user (CN=<user>), all in the data directory
# (throw-away, like the data). Made once; `wipe` removes them.
make_secrets() {
    [ -f "$data/tls/ca.pem" ] && return 0
    command -v openssl >/dev/null || die "openssl is needed for STATUSFLOW_KAFKA_SECURITY=$security"
    mkdir -p "$data/tls" "$data/secrets"
    chmod 700 "$data/secrets" "$data/tls"
    local user tls="$data/tls"
    for user in $users controller keystore; do
        openssl rand -hex 16 >"$data/secrets/$user.password"
    done
    (
        cd "$tls"
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout ca.key -out ca.pem \
            -subj "/CN=statusflow throw-away CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
        openssl req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr -subj "/CN=127.0.0.1"
        # clientAuth too: in ssl mode a broker shows the same certificate to the other brokers.
        printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "extendedKeyUsage=serverAuth,clientAuth" \
            "keyUsage=critical,digitalSignature,keyEncipherment" \
            "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid,issuer" >broker.ext
        openssl x509 -req -days 30 -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -extfile broker.ext -out broker.pem
        openssl pkcs12 -export -in broker.pem -inkey broker.key -certfile ca.pem -name broker \
            -out broker.p12 -passout "pass:$(password keystore)"
        if [ "$security" = ssl ]; then
            printf '%s\n' "extendedKeyUsage=clientAuth" "keyUsage=critical,digitalSignature,keyEncipherment" \
                "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid,issuer" >client.ext
            for user in $users; do
                openssl req -newkey rsa:2048 -nodes -keyout "$user.key" -out "$user.csr" -subj "/CN=$user"
                openssl x509 -req -days 30 -in "$user.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
                    -extfile client.ext -out "$user.pem"
                chmod 600 "$user.key"
            done
            cat admin.key admin.pem >admin-keystore.pem  # what a Java client's PEM keystore reads
        fi
    ) >"$data/tls.log" 2>&1 || die "making the TLS certificates failed, see $data/tls.log"
    # What kafka-acls (and any Java client) needs to act as the admin.
    if [ "$security" = ssl ]; then
        cat >"$data/admin.properties" <<EOF
security.protocol=SSL
ssl.keystore.type=PEM
ssl.keystore.location=$data/tls/admin-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$data/tls/ca.pem
EOF
    else
        cat >"$data/admin.properties" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(password admin)";
ssl.truststore.type=PEM
ssl.truststore.location=$data/tls/ca.pem
EOF
    fi
    chmod 600 "$data/admin.properties"
}

write_config() {
    local n=$1 dir client_port voters="" i
    dir=$(node_dir "$n")
    client_port=$(node_port "$n")
    for i in $(all_nodes); do voters+="${voters:+,}$i@127.0.0.1:$(($(node_port "$i") + 1))"; done
    local replicas=$((nodes == 3 ? 3 : 1)) min_isr=$((nodes == 3 ? 2 : 1))
    local name=PLAINTEXT map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
    [ "$security" = sasl_ssl ] && { name=CLIENT; map=CLIENT:SASL_SSL,CONTROLLER:SASL_PLAINTEXT; }
    [ "$security" = ssl ] && { name=CLIENT; map=CLIENT:SSL,CONTROLLER:SASL_PLAINTEXT; }
    cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=$name://127.0.0.1:$client_port,CONTROLLER://127.0.0.1:$((client_port + 1))
advertised.listeners=$name://127.0.0.1:$client_port
controller.listener.names=CONTROLLER
inter.broker.listener.name=$name
listener.security.protocol.map=$map
log.dirs=$dir/logs
num.partitions=1
offsets.topic.replication.factor=$replicas
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$replicas
share.coordinator.state.topic.min.isr=$min_isr
# A local node has nobody to wait for; the 3 s default only slows every test start.
group.initial.rebalance.delay.ms=0
# Topics come from the worker (stream/kafka/topics.py) with their partitions and configs; a topic the
# broker made because a reader asked for it first would have one partition and the wrong configs.
auto.create.topics.enable=false
EOF
    [ "$security" = plaintext ] && return 0
    # Clients: SASL_SSL with SCRAM users made at format time, or SSL with a client certificate
    # (ssl.client.auth=required: no certificate, no connection; the principal is the subject,
    # User:CN=<user>). Brokers talk to each other there too, as the admin or with their own
    # certificate. Controllers: SASL_PLAINTEXT on 127.0.0.1 with a PLAIN user of their own (SCRAM
    # lives in the metadata the controllers serve, so it cannot log them in), a super user, so
    # that neither listener lets an anonymous local process in.
    local plain="org.apache.kafka.common.security.plain.PlainLoginModule required username=\"controller\" password=\"$(password controller)\" user_controller=\"$(password controller)\";"
    if [ "$security" = sasl_ssl ]; then
        local scram="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$(password admin)\";"
        cat >>"$dir/server.properties" <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
listener.name.client.scram-sha-512.sasl.jaas.config=$scram
listener.name.client.scram-sha-256.sasl.jaas.config=$scram
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
ssl.client.auth=none
super.users=User:admin;User:controller
EOF
    else
        cat >>"$dir/server.properties" <<EOF
ssl.client.auth=required
super.users=User:CN=admin;User:CN=127.0.0.1;User:controller
EOF
    fi
    cat >>"$dir/server.properties" <<EOF
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=$plain
sasl.mechanism.controller.protocol=PLAIN
ssl.keystore.type=PKCS12
ssl.keystore.location=$data/tls/broker.p12
ssl.keystore.password=$(password keystore)
ssl.key.password=$(password keystore)
ssl.truststore.type=PEM
ssl.truststore.location=$data/tls/ca.pem
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
EOF
    chmod 600 "$dir/server.properties"
}

# No start-up tricks that cost throughput (-XX:TieredStopAtLevel): benchmarks use this broker.
# java_opts DIR: sets the array jopts, logging to DIR/server.log.
java_opts() {
    jopts=(-Xms256m -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
        -Dkafka.logs.dir="$1" -Dlog4j2.configurationFile="$here/log4j2.xml" -cp "$libs/*")
}

format() {
    local n=$1 dir args=() user
    dir=$(node_dir "$n")
    [ -f "$dir/logs/meta.properties" ] && return 0
    java_opts "$dir"
    [ -s "$data/cluster.id" ] || java "${jopts[@]}" kafka.tools.StorageTool random-uuid >"$data/cluster.id"
    if [ "$security" = sasl_ssl ]; then
        for user in $users; do
            args+=(--add-scram "SCRAM-SHA-512=[name=$user,password=$(password "$user")]")
            args+=(--add-scram "SCRAM-SHA-256=[name=$user,password=$(password "$user")]")
        done
    fi
    java "${jopts[@]}" kafka.tools.StorageTool format --ignore-formatted -t "$(cat "$data/cluster.id")" \
        -c "$dir/server.properties" "${args[@]}" >"$dir/format.log" 2>&1 \
        || die "formatting KRaft storage failed, see $dir/format.log"
}

launch() {
    local n=$1 dir pid
    dir=$(node_dir "$n")
    if pid=$(running_pid "$n"); then return 0; fi
    mkdir -p "$dir"
    write_config "$n"
    format "$n"
    : >"$dir/server.log"
    java_opts "$dir"
    java "${jopts[@]}" kafka.Kafka "$dir/server.properties" </dev/null >"$dir/stdout.log" 2>&1 &
    echo $! >"$dir/kafka.pid"
}

wait_ready() {
    local n=$1 dir waited=0 binds=0
    dir=$(node_dir "$n")
    until grep -q "Kafka Server started" "$dir/server.log" 2>/dev/null; do
        if ! kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then
            # A port in the kernel's ephemeral range (32768-60999) can be taken for a moment by an
            # outgoing connection, even the node's own to its controller: try again, a few times.
            if grep -q "Address already in use" "$dir/server.log" && [ "$binds" -lt 5 ]; then
                binds=$((binds + 1))
                echo "kafka.sh: node $n: port busy, starting it again ($binds)" >&2
                sleep 2
                launch "$n"
                continue
            fi
            die "node $n exited during start-up, see $dir/server.log and $dir/stdout.log"
        fi
        sleep 0.2
        waited=$((waited + 1))
        [ "$waited" -lt 900 ] || die "node $n not ready after 180 s, see $dir/server.log"
    done
}

start() {
    fetch
    mkdir -p "$data"
    [ "$security" = plaintext ] || make_secrets
    local n
    # All nodes first: each waits for a controller quorum the others complete.
    for n in $(all_nodes); do launch "$n"; done
    for n in $(all_nodes); do wait_ready "$n"; done
    echo "kafka.sh: Kafka $version ready on $(bootstrap) ($security, $nodes node(s), data $data)"
}

start_node() {
    fetch
    launch "$1"
    wait_ready "$1"
    echo "kafka.sh: node $1 ready on 127.0.0.1:$(node_port "$1") (pid $(running_pid "$1"))"
}

stop_node() {
    local n=$1 pid dir
    dir=$(node_dir "$n")
    if ! pid=$(running_pid "$n"); then rm -f "$dir/kafka.pid"; return 0; fi
    kill -TERM "$pid"
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$dir/kafka.pid"; return 0; }
        sleep 0.1
    done
    echo "kafka.sh: node $n did not stop in 30 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/kafka.pid"
}

stop() {
    local n pids=()
    # The last nodes of a quorum wait for each other at shutdown: stop them together.
    for n in $(all_nodes); do stop_node "$n" & pids+=($!); done
    wait "${pids[@]}"
    echo "kafka.sh: stopped"
}

kill_node() {
    local pid dir
    dir=$(node_dir "$1")
    pid=$(running_pid "$1") || die "node $1 is not running"
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$dir/kafka.pid"
    echo "kafka.sh: killed node $1 (pid $pid)"
}

status() {
    local n pid down=0
    for n in $(all_nodes); do
        if pid=$(running_pid "$n"); then
            echo "kafka.sh: node $n running (pid $pid) on 127.0.0.1:$(node_port "$n")"
        else
            echo "kafka.sh: node $n not running"
            down=1
        fi
    done
    [ "$down" = 0 ] || return 3
}

acl() {
    [ "$security" != plaintext ] || die "acl needs STATUSFLOW_KAFKA_SECURITY=sasl_ssl or ssl"
    mkdir -p "$data/tools"  # its own log: server.log beside a single node's data is the broker's
    java_opts "$data/tools"
    java "${jopts[@]}" org.apache.kafka.tools.AclCommand \
        --bootstrap-server "$(bootstrap)" --command-config "$data/admin.properties" "$@"
}

case "${1:-}" in
    fetch) fetch ;;
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    status) status ;;
    bootstrap) bootstrap ;;
    kill-node) kill_node "${2:?node number}" ;;
    start-node) start_node "${2:?node number}" ;;
    acl) shift; acl "$@" ;;
    wipe) stop; rm -rf "$data"; echo "kafka.sh: removed $data" ;;
    *) echo "usage: $0 fetch|start|stop|status|restart|wipe|bootstrap|kill-node N|start-node N|acl ARGS" >&2; exit 2 ;;
esac
