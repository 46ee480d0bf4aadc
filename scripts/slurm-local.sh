#!/usr/bin/env bash
# A one-node Slurm cluster on this machine (Debian 12's slurm-wlm 22.05 + munge), for trying the
# sweep's Slurm job array (train/slurm/sweep.sbatch) without a real cluster; scripts/slurm-proof.sh
# uses it. Idempotent: rerunning it installs nothing new and restarts nothing that already runs
# with the same configuration.
#
#   scripts/slurm-local.sh [start]   install slurm-wlm + munge if missing, write /etc/slurm/slurm.conf,
#                                    start munged, slurmctld and slurmd, wait until the node is idle
#   scripts/slurm-local.sh stop      stop slurmd, slurmctld and munged (the ones the pid files name)
#   scripts/slurm-local.sh status    the daemons' pids and `sinfo`
#
# Needs root or sudo (apt-get, /etc/slurm, the daemons). Made for a container without systemd and
# without usable cgroups: the daemons are started directly (not through their systemd units), and
# the configuration uses no cgroup plugin (proctrack/linuxproc, task/none). The node is this host
# (`hostname -s`, reached on 127.0.0.1) with CPUs from nproc and RealMemory from free; one
# partition, `local`, is the default. There is no slurmdbd, so `sacct` does not work here: finished
# jobs stay visible to `scontrol show job` / `squeue -t all` for MinJobAge (an hour), and every
# finished job is also logged with its state and exit code to /var/log/slurm/jobcomp.log.
#
# An /etc/slurm/slurm.conf that this script did not write (a real cluster's) is never replaced;
# SLURM_LOCAL_FORCE=1 replaces it (the old one is kept as slurm.conf.bak.<time>).
set -euo pipefail

MARKER="# Written by paca-fer scripts/slurm-local.sh"
CONF=/etc/slurm/slurm.conf
STATE=/var/lib/slurm/slurmctld
SPOOL=/var/lib/slurm/slurmd
LOGS=/var/log/slurm
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
MUNGE_KEY=/etc/munge/munge.key
PARTITION=local

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "slurm-local: needs root or sudo" >&2; exit 1; }
  sudo="sudo"
fi

log() { echo "slurm-local: $*"; }

# The pid in pid file $1 when that process is alive, else nothing (and a non-zero status).
alive_pid() {
  local pid
  pid=$($sudo cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && $sudo kill -0 "$pid" 2>/dev/null && echo "$pid"
}

install_packages() {
  local missing=() p
  for p in slurm-wlm slurmctld slurmd slurm-client munge; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "packages present (slurm-wlm $(dpkg-query -W -f='${Version}' slurm-wlm), munge $(dpkg-query -W -f='${Version}' munge))"
    return
  fi
  log "installing ${missing[*]} (apt-get; its output: /tmp/slurm-local-apt.log)"
  if ! { $sudo apt-get update -qq &&
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >/tmp/slurm-local-apt.log 2>&1; then
    tail -20 /tmp/slurm-local-apt.log >&2
    echo "slurm-local: installing ${missing[*]} failed (/tmp/slurm-local-apt.log)" >&2
    exit 1
  fi
}

start_munge() {
  if ! $sudo test -s "$MUNGE_KEY"; then
    log "creating the munge key $MUNGE_KEY"
    $sudo install -d -o munge -g munge -m 0700 /etc/munge
    if command -v mungekey >/dev/null; then
      $sudo mungekey --create --keyfile="$MUNGE_KEY"
    else
      $sudo dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
    fi
    $sudo chown munge:munge "$MUNGE_KEY"
    $sudo chmod 0400 "$MUNGE_KEY"
  fi
  local pid
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    pid=$(alive_pid "$MUNGE_PID" || true)
    log "munged running${pid:+ (pid $pid)}"
    return
  fi
  $sudo install -d -o munge -g munge -m 0755 /run/munge
  $sudo install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
  # A stale socket or pid file of a munged that died is in the way of a new one.
  if ! alive_pid "$MUNGE_PID" >/dev/null; then
    $sudo rm -f "$MUNGE_PID" /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  fi
  log "starting munged"
  $sudo runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
    sleep 0.2
  done
  echo "slurm-local: munged does not answer; see /var/log/munge/munged.log" >&2
  exit 1
}

# slurm.conf for this host, on stdout.
render_conf() {
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(free -m | awk '/^Mem:/ {print $2}')
  # slurmd drains a node that has less memory than configured: never configure more than it sees.
  local seen
  seen=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -1)
  if [ -n "$seen" ] && [ "$seen" -lt "$mem" ]; then mem=$seen; fi
  cat <<EOF
$MARKER: a one-node cluster on this machine.
# Rewritten on every start; edit the script, not this file.
ClusterName=paca-local
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# No systemd and no usable cgroups here: track processes by /proc, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=${LOGS}/jobcomp.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$((mem / cpus))
# A node that was down comes back when its slurmd registers with a valid configuration.
ReturnToService=2
# Without slurmdbd (no sacct) finished jobs stay visible to scontrol/squeue for an hour.
MinJobAge=3600
StateSaveLocation=${STATE}
SlurmdSpoolDir=${SPOOL}
SlurmctldPidFile=${CTLD_PID}
SlurmdPidFile=${SLURMD_PID}
SlurmctldLogFile=${LOGS}/slurmctld.log
SlurmdLogFile=${LOGS}/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=${PARTITION} Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
}

# Writes slurm.conf; prints "changed" when its content changed.
write_conf() {
  local new
  new=$(mktemp)
  render_conf >"$new"
  if $sudo test -f "$CONF" && $sudo cmp -s "$new" "$CONF"; then
    rm -f "$new"
    return
  fi
  if $sudo test -f "$CONF" && ! $sudo grep -qF "$MARKER" "$CONF"; then
    if [ "${SLURM_LOCAL_FORCE:-0}" != 1 ]; then
      rm -f "$new"
      echo "slurm-local: $CONF was not written by this script (a real cluster's?); not replacing it." >&2
      echo "slurm-local: rerun with SLURM_LOCAL_FORCE=1 to replace it (a backup is kept)." >&2
      exit 1
    fi
    $sudo cp -p "$CONF" "$CONF.bak.$(date +%Y%m%d%H%M%S)"
  fi
  $sudo install -d -m 0755 /etc/slurm
  $sudo install -m 0644 "$new" "$CONF"
  rm -f "$new"
  log "wrote $CONF" >&2
  echo changed
}

stop_one() { # name pidfile
  local pid
  pid=$(alive_pid "$2") || { $sudo rm -f "$2"; return 0; }
  log "stopping $1 (pid $pid)"
  $sudo kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    $sudo kill -0 "$pid" 2>/dev/null || { $sudo rm -f "$2"; return 0; }
    sleep 0.1
  done
  log "$1 (pid $pid) ignores SIGTERM; killing it"
  $sudo kill -9 "$pid" 2>/dev/null || true
  $sudo rm -f "$2"
}

start_daemons() {
  local changed=$1 host state pid
  host=$(hostname -s)
  $sudo install -d -o slurm -g slurm -m 0755 "$STATE" "$LOGS"
  $sudo install -d -o root -g root -m 0755 "$SPOOL"
  if [ -n "$changed" ]; then
    # A daemon reading an older configuration restarts with the new one.
    stop_one slurmd "$SLURMD_PID"
    stop_one slurmctld "$CTLD_PID"
  fi
  if pid=$(alive_pid "$CTLD_PID"); then
    log "slurmctld running (pid $pid)"
  else
    log "starting slurmctld"
    $sudo slurmctld
  fi
  if pid=$(alive_pid "$SLURMD_PID"); then
    log "slurmd running (pid $pid)"
  else
    log "starting slurmd"
    $sudo slurmd
  fi
  for _ in $(seq 60); do
    state=$(sinfo -h -N -n "$host" -o '%T' 2>/dev/null | head -1 || true)
    case "$state" in
      idle | mixed | allocated | completing) break ;;
      down* | drain* | fail*)
        # A node left down by an earlier run (e.g. a killed slurmd) comes back once it registers.
        $sudo scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
    esac
    sleep 1
  done
  case "$state" in
    idle | mixed | allocated | completing) ;;
    *)
      echo "slurm-local: node $host is '${state:-unknown}' after 60 s; see $LOGS/slurmctld.log and $LOGS/slurmd.log" >&2
      sinfo -N -l >&2 || true
      exit 1 ;;
  esac
  sinfo
  log "up: node $host ($state), partition $PARTITION"
  log "try:  sbatch --array=0-1 --wrap 'echo task \$SLURM_ARRAY_TASK_ID of \$SLURM_ARRAY_TASK_COUNT'"
  log "stop: $0 stop"
}

status() {
  local name file pid
  for name in munged slurmctld slurmd; do
    case $name in
      munged) file=$MUNGE_PID ;;
      slurmctld) file=$CTLD_PID ;;
      slurmd) file=$SLURMD_PID ;;
    esac
    if pid=$(alive_pid "$file"); then echo "$name: running (pid $pid)"; else echo "$name: stopped"; fi
  done
  if alive_pid "$CTLD_PID" >/dev/null; then sinfo; fi
}

case "${1:-start}" in
  start)
    install_packages
    start_munge
    changed=$(write_conf)
    start_daemons "$changed"
    ;;
  stop)
    stop_one slurmd "$SLURMD_PID"
    stop_one slurmctld "$CTLD_PID"
    stop_one munged "$MUNGE_PID"
    log "stopped"
    ;;
  status) status ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
