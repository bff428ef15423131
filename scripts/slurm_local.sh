#!/usr/bin/env bash
# A real single-node Slurm on this machine, for tests and CI (Debian/Ubuntu, root, no systemd needed).
#
#   scripts/slurm_local.sh start [--gpus N]   install packages if missing, write the config, start the daemons,
#                                             wait until the node is idle; prints `export SLURM_CONF=...`
#   scripts/slurm_local.sh stop               stop the daemons this script started (by their PIDs)
#   scripts/slurm_local.sh status             daemons, sinfo, squeue
#   scripts/slurm_local.sh env                prints `export SLURM_CONF=...` (for `eval "$(... env)"`)
#
# slurm.conf and gres.conf live in the state dir; /etc/slurm/slurm.conf and gres.conf become symlinks to them,
# because Snakemake's jobstep plugin strips every SLURM_* variable (SLURM_CONF included) from the environment of
# the `srun` it runs inside a job, so Slurm commands inside jobs only find the default path. An /etc/slurm file
# that is not our symlink is never overwritten (start fails instead). `stop` removes our symlinks.
# Environment: SWINGFLOW_SLURM_DIR (state dir, default /tmp/swingflow-slurm), SWINGFLOW_SLURM_CPUS (CPUs the
# node claims, default nproc; more than nproc is allowed), SWINGFLOW_SLURM_PORT (slurmctld port, default 6817;
# slurmd uses the next one), SWINGFLOW_SLURM_NO_INSTALL=1 (fail instead of calling apt-get).
# Measured facts and pitfalls: docs/OPERATIONS.md ("Local Slurm").
set -euo pipefail

STATE=${SWINGFLOW_SLURM_DIR:-/tmp/swingflow-slurm}
CONF_DIR=$STATE/etc
CONF=$CONF_DIR/slurm.conf
PORT=${SWINGFLOW_SLURM_PORT:-6817}
HOST=$(hostname -s)
PACKAGES=(slurmctld slurmd slurm-client munge)
# munged runs as the munge user, which cannot enter a private state dir (pytest's tmp dirs are 0700): its
# socket, pid and log live in a world-traversable folder named after the state dir.
MUNGE_DIR=/tmp/swingflow-munge-$(echo "$STATE" | md5sum | cut -c1-8)

log() { echo "slurm_local: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Exit codes: 1 error, 2 usage, 3 cannot install the packages, 4 not root (tests skip on 3 and 4).
die_install() { log "ERROR: $*"; exit 3; }
need_root() { [ "$(id -u)" = 0 ] || { log "ERROR: must run as root (slurmd and munged need it)"; exit 4; }; }

install_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "${SWINGFLOW_SLURM_NO_INSTALL:-0}" = 1 ] && die_install "packages missing (${missing[*]}) and SWINGFLOW_SLURM_NO_INSTALL=1"
    command -v apt-get >/dev/null || die_install "packages missing (${missing[*]}) and no apt-get"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Try without an update first (fast when the lists are fresh), then with one.
    if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >"$STATE/apt.log" 2>&1; then
        apt-get update -q >>"$STATE/apt.log" 2>&1 || die_install "apt-get update failed (see $STATE/apt.log)"
        apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$STATE/apt.log" 2>&1 \
            || die_install "apt-get install failed (see $STATE/apt.log)"
    fi
}

# A process that exists and is not a zombie (where PID 1 does not reap, a killed daemon lingers as one).
running() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]; }
alive() { [ -f "$1" ] && running "$(cat "$1")"; }

write_config() {
    local gpus=$1 cpus mem_kb mem_mb node_gres=""
    cpus=${SWINGFLOW_SLURM_CPUS:-$(nproc)}
    mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    mem_mb=$((mem_kb * 9 / 10 / 1024))
    mkdir -p "$CONF_DIR" "$STATE/spool/ctld" "$STATE/spool/d" "$STATE/log" "$STATE/run"
    if [ "$gpus" -gt 0 ]; then
        # Fake GPUs: character devices with /dev/null's numbers. Slurm only checks that the files exist.
        mkdir -p "$STATE/dev"
        for ((i = 0; i < gpus; i++)); do
            [ -e "$STATE/dev/nvidia$i" ] || mknod -m 666 "$STATE/dev/nvidia$i" c 1 3
        done
        node_gres=" Gres=gpu:$gpus"
        echo "NodeName=$HOST Name=gpu File=$STATE/dev/nvidia[0-$((gpus - 1))]" >"$CONF_DIR/gres.conf"
    else
        : >"$CONF_DIR/gres.conf"
    fi
    cat >"$CONF" <<EOF
# Written by scripts/slurm_local.sh: a single-node test cluster.
ClusterName=swingflow
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_DIR/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# Reject a request larger than the node at submit time (otherwise it pends forever).
EnforcePartLimits=ALL
# squeue must still see finished jobs when Snakemake asks (>= 3 x slurm-init-seconds-before-status-checks).
MinJobAge=300
# A job past its time limit gets SIGTERM, then SIGKILL 5 s later (default 30 s): retries start sooner.
KillWait=5
OverTimeLimit=0
ReturnToService=2
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
MpiDefault=none
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb$node_gres State=UNKNOWN
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
}

link_etc() {
    mkdir -p /etc/slurm
    local f
    for f in slurm.conf gres.conf; do
        if [ -e "/etc/slurm/$f" ] && [ ! -L "/etc/slurm/$f" ]; then
            die "/etc/slurm/$f exists and is not a link from this script; move it away first"
        fi
        ln -sfn "$CONF_DIR/$f" "/etc/slurm/$f"
    done
}

unlink_etc() {
    local f
    for f in slurm.conf gres.conf; do
        if [ -L "/etc/slurm/$f" ] && [ "$(readlink "/etc/slurm/$f")" = "$CONF_DIR/$f" ]; then rm -f "/etc/slurm/$f"; fi
    done
}

start_munge() {
    # Our own munged with its own socket in the state dir (AuthInfo=socket=... in slurm.conf): a munged another
    # session starts or stops on this machine cannot take our cluster's authentication down.
    local dir=$MUNGE_DIR
    mkdir -p "$dir" /etc/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    chown munge:munge "$dir"
    chmod 0755 "$dir"
    rm -f "$dir/munged.pid" "$dir/munge.socket" "$dir/munge.socket.lock"
    runuser -u munge -- /usr/sbin/munged --socket="$dir/munge.socket" --pid-file="$dir/munged.pid" \
        --log-file="$dir/munged.log" --seed-file="$dir/munged.seed" --key-file=/etc/munge/munge.key \
        || die "munged failed (see $dir/munged.log)"
    for _ in $(seq 50); do
        [ -S "$dir/munge.socket" ] && [ -s "$dir/munged.pid" ] && break
        sleep 0.1
    done
    munge -S "$dir/munge.socket" -n </dev/null 2>/dev/null | unmunge -S "$dir/munge.socket" >/dev/null 2>&1 \
        || die "munged does not answer (see $dir/munged.log)"
    cp "$dir/munged.pid" "$STATE/run/munged.ours"
}

wait_idle() {
    local state=""
    for _ in $(seq 300); do
        state=$(sinfo -h -o %T 2>/dev/null | head -1 || true)
        case $state in idle | idle*) return 0 ;; esac
        sleep 0.1
    done
    die "node not idle after 30 s (state '$state'); logs in $STATE/log"
}

cmd_start() {
    local gpus=0
    while [ $# -gt 0 ]; do
        case $1 in
            --gpus) gpus=$2; shift 2 ;;
            *) die "unknown option $1" ;;
        esac
    done
    need_root
    export SLURM_CONF=$CONF
    if alive "$STATE/run/slurmctld.pid" || alive "$STATE/run/slurmd.pid"; then
        log "already running (state $STATE); stop it first to change the GPU count"
        wait_idle
        echo "export SLURM_CONF=$CONF"
        return 0
    fi
    mkdir -p "$STATE/run"
    install_packages
    write_config "$gpus"
    link_etc
    start_munge
    rm -f "$STATE/run/slurmctld.pid" "$STATE/run/slurmd.pid" # stale pid files stop slurmctld from starting
    # -c: clean start (no saved jobs from an earlier run). Both daemonize and write their pid files.
    slurmctld -c -f "$CONF" || die "slurmctld failed (see $STATE/log/slurmctld.log)"
    slurmd -c -f "$CONF" -N "$HOST" || die "slurmd failed (see $STATE/log/slurmd.log)"
    wait_idle
    log "up: node $HOST idle (state $STATE, gpus $gpus)"
    echo "export SLURM_CONF=$CONF"
}

stop_pidfile() {
    local f=$1 pid
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    if running "$pid"; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
        if running "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$f"
}

cmd_stop() {
    export SLURM_CONF=$CONF
    # Jobs still running would outlive slurmd (proctrack/linuxproc): cancel them first.
    if alive "$STATE/run/slurmctld.pid"; then
        scancel --full --quiet --user=root 2>/dev/null || true
        sleep 0.5
    fi
    stop_pidfile "$STATE/run/slurmd.pid"
    stop_pidfile "$STATE/run/slurmctld.pid"
    stop_pidfile "$STATE/run/munged.ours"
    unlink_etc
    log "stopped (state $STATE kept for its logs)"
}

cmd_status() {
    export SLURM_CONF=$CONF
    local rc=0
    for d in slurmctld slurmd; do
        if alive "$STATE/run/$d.pid"; then echo "$d: running (pid $(cat "$STATE/run/$d.pid"))"; else echo "$d: stopped"; rc=1; fi
    done
    if [ $rc = 0 ]; then sinfo; squeue; fi
    return $rc
}

case ${1:-} in
    start) shift; cmd_start "$@" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *) echo "usage: $0 start [--gpus N] | stop | status | env" >&2; exit 2 ;;
esac
