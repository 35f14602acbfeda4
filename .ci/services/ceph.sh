#!/usr/bin/env bash
# A private, throwaway single-node Ceph cluster with an S3 gateway (radosgw) for the tests:
#   .ci/services/ceph.sh run CMD...          starts one, runs CMD with TEST_S3_* set, stops it
#   eval "$(.ci/services/ceph.sh start)"     starts one; exports TEST_S3_ENDPOINT, TEST_S3_ACCESS_KEY_ID,
#                                            TEST_S3_SECRET_ACCESS_KEY, TEST_S3_REGION and CEPH_TEST_DIR
#   .ci/services/ceph.sh stop "$CEPH_TEST_DIR" stops it and removes its directory
#   .ci/services/ceph.sh gateway-stop|gateway-start "$CEPH_TEST_DIR"
#                                            kills just radosgw (as a crash would) / starts it again
# One monitor, one manager, one OSD keeping its objects in memory (memstore), radosgw (beast) on
# 127.0.0.1; authentication off inside the cluster (S3 requests are still signed and checked),
# every pool one replica. Installs the Debian packages when they are missing. Each start gets
# its own directory and free ports, so several clusters may run side by side.
set -Eeuo pipefail

# What the OSD may hold in memory at most (memstore): objects of the tests, deleted as they go.
CEPH_MEMSTORE_BYTES=${CEPH_MEMSTORE_BYTES:-$((8 * 1024 * 1024 * 1024))}
BOOT_SECONDS=${CEPH_BOOT_SECONDS:-120}
MAKING=() # the pool-making jobs running in the background

install_packages() {
  command -v radosgw >/dev/null && command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null &&
    command -v ceph-mgr >/dev/null && command -v radosgw-admin >/dev/null && return 0
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends ceph-mon ceph-mgr ceph-osd radosgw ceph-common >&2
}

free_port() {
  node -e 'const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })'
}

random_hex() {
  head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'
}

# Runs until CONDITION succeeds or the boot bound passes; says which step timed out.
await() {
  local what=$1 deadline=$((SECONDS + BOOT_SECONDS))
  shift
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "ceph.sh: $what did not come up within ${BOOT_SECONDS}s" >&2
      return 1
    fi
    sleep 0.2
  done
}

# Starts a Ceph daemon (it detaches itself); its output goes to the logs, never to the caller's
# stdout, which `$(ceph.sh start)` reads until every holder closes it.
daemon() {
  "$@" </dev/null >>"$CEPH_TEST_DIR_LOG" 2>&1
}

start() {
  install_packages
  local dir
  dir=$(mktemp -d /tmp/dropfold-ceph.XXXXXX)
  # From here on a failure stops whatever did start and removes the directory.
  trap 'on_failure "'"$dir"'"' ERR
  boot "$dir"
  trap - ERR
}

on_failure() {
  local dir=$1
  [ ${#MAKING[@]} -gt 0 ] && kill "${MAKING[@]}" 2>/dev/null
  echo "ceph.sh: start failed; the last lines of the logs in $dir:" >&2
  tail -n 15 "$dir"/log/*.log >&2 2>/dev/null || true
  stop "$dir"
  exit 1
}

boot() {
  local dir=$1 fsid mon_port rgw_port osd_uuid access_key secret_key
  fsid=$(uuidgen)
  osd_uuid=$(uuidgen)
  mon_port=$(free_port)
  rgw_port=$(free_port)
  mkdir -p "$dir"/{run,log,crash,mon,mgr,osd,rgw}
  export CEPH_CONF=$dir/ceph.conf CEPH_TEST_DIR_LOG=$dir/log/daemons.out
  cat >"$CEPH_CONF" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
mon initial members = a
public addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
keyring = $dir/keyring
run dir = $dir/run
pid file = $dir/run/\$name.pid
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
mon cluster log file = $dir/log/cluster.log
crash dir = $dir/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
mon data = $dir/mon/\$name
mgr data = $dir/mgr/\$name
osd data = $dir/osd/\$name
osd objectstore = memstore
memstore device bytes = $CEPH_MEMSTORE_BYTES
mgr initial modules =

[client.rgw.a]
rgw data = $dir/rgw/\$name
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
# Deleted objects' data is freed by garbage collection, by default hours later: in memory, the
# tests' deleted files would pile up. Half a minute still lets a read under way finish.
rgw gc obj min wait = 30
rgw gc processor period = 15
EOF
  ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
  ceph-mon --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring"
  daemon ceph-mon -i a
  await "the monitor" ceph --connect-timeout 5 mon stat

  daemon ceph-mgr -i a
  local osd_id
  osd_id=$(ceph osd new "$osd_uuid")
  mkdir -p "$dir/osd/osd.$osd_id"
  ceph-osd -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1
  daemon ceph-osd -i "$osd_id"

  # radosgw makes its bucket pools on first use, each taking seconds to become usable: made
  # now, side by side, they come up while radosgw boots, and a suite's first bucket, put and
  # multipart upload need not wait for them.
  local pool
  for pool in default.rgw.buckets.index default.rgw.buckets.data default.rgw.buckets.non-ec; do
    ceph --connect-timeout 30 osd pool create "$pool" >/dev/null 2>&1 &
    MAKING+=($!)
  done
  daemon radosgw -n client.rgw.a
  await "radosgw on 127.0.0.1:$rgw_port" curl -sf -o /dev/null "http://127.0.0.1:$rgw_port/"
  for pid in "${MAKING[@]}"; do wait "$pid"; done

  access_key=DROPFOLD$(random_hex 6 | tr a-f A-F)
  secret_key=$(random_hex 20)
  radosgw-admin user create --uid=dropfold-tests --display-name="Dropfold tests" \
    --access-key="$access_key" --secret-key="$secret_key" >/dev/null
  echo "export CEPH_TEST_DIR=$dir"
  echo "export TEST_S3_ENDPOINT=http://127.0.0.1:$rgw_port"
  echo "export TEST_S3_ACCESS_KEY_ID=$access_key"
  echo "export TEST_S3_SECRET_ACCESS_KEY=$secret_key"
  echo "export TEST_S3_REGION=default"
}

stop() {
  local dir=${1:?the cluster directory (CEPH_TEST_DIR)}
  case "$dir" in /tmp/dropfold-ceph.*) ;; *) echo "ceph.sh: not a cluster directory: $dir" >&2; exit 2 ;; esac
  local pids=() pid
  for file in "$dir"/run/*.pid; do
    [ -f "$file" ] || continue
    pid=$(cat "$file")
    # Only a process of this cluster: its command line names this directory's configuration.
    if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/environ" 2>/dev/null | grep -q "CEPH_CONF=$dir/ceph.conf"; then
      pids+=("$pid")
    fi
  done
  if [ ${#pids[@]} -gt 0 ]; then
    # A throwaway cluster whose objects live in memory: nothing to shut down cleanly.
    kill -9 "${pids[@]}" 2>/dev/null || true
    local deadline=$((SECONDS + 10)) alive
    while [ $SECONDS -lt $deadline ]; do
      alive=0
      for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      [ $alive = 0 ] && break
      sleep 0.1
    done
  fi
  rm -rf "$dir"
}

# For tests of a store that goes away: stops just radosgw (at once, as a crash would) ...
gateway_stop() {
  local dir=${1:?the cluster directory (CEPH_TEST_DIR)} pid
  pid=$(cat "$dir/run/client.rgw.a.pid" 2>/dev/null) || return 0
  kill -9 "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 10))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
}

# ... and starts it again on the same port, returning once it answers.
gateway_start() {
  local dir=${1:?the cluster directory (CEPH_TEST_DIR)} port
  export CEPH_CONF=$dir/ceph.conf CEPH_TEST_DIR_LOG=$dir/log/daemons.out
  port=$(sed -n 's/^rgw frontends = beast endpoint=127.0.0.1:\([0-9]*\).*/\1/p' "$CEPH_CONF")
  daemon radosgw -n client.rgw.a
  await "radosgw on 127.0.0.1:$port" curl -sf -o /dev/null "http://127.0.0.1:$port/"
}

run() {
  local exports
  exports=$(start) # on its own line, so that a failed start stops here (set -e) rather than running CMD without a cluster
  eval "$exports"
  trap 'stop "$CEPH_TEST_DIR"' EXIT
  "$@"
}

case "${1:-}" in
  start) start ;;
  run) shift; run "$@" ;;
  stop) stop "${2:-}" ;;
  gateway-stop) gateway_stop "${2:-}" ;;
  gateway-start) gateway_start "${2:-}" ;;
  *) echo "usage: $0 run CMD... | start | stop DIR | gateway-stop DIR | gateway-start DIR" >&2; exit 2 ;;
esac
