#!/usr/bin/env bash
# Stops the one-node cluster of start-cluster.sh: cancels its jobs (a slurmd stopped under a
# running job leaves slurmstepd and the job behind), then stops slurmd, slurmctld and munged
# by the pids they wrote. A process is gone when /proc/<pid>/stat is missing or says Z: in a
# container PID 1 may reap zombies late, and `kill -0` succeeds on a zombie.
#
#   scripts/slurm/stop-cluster.sh [--quiet]
set -euo pipefail

DIR="${VCP_SLURM_DIR:-/var/tmp/vcp-exp-slurm}"
CONF="${SLURM_CONF:-/etc/slurm/slurm.conf}"
quiet=0
[ "${1:-}" = --quiet ] && quiet=1
say() { [ "$quiet" = 1 ] || echo "stop-cluster: $*"; }

# Running: /proc/<pid>/stat exists, is not a zombie, and the command is the expected daemon
# (a pid file left by a crash may name a pid the system gave to something else since).
running() {
  local pid="$1" name="$2" stat
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  # The state is the first field after the ")" that closes the command name.
  [ "$(awk '{print $1}' <<<"${stat##*)}")" != Z ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]
}

stop() {
  local name="$1" file="$2" pid
  [ -s "$file" ] || return 0
  pid="$(tr -dc 0-9 <"$file")"
  rm -f "$file"
  [ -n "$pid" ] && running "$pid" "$name" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    running "$pid" "$name" || {
      say "$name ($pid) stopped"
      return 0
    }
    sleep 0.1
  done
  say "$name ($pid) ignored SIGTERM for 10 s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    running "$pid" "$name" || return 0
    sleep 0.1
  done
  echo "stop-cluster: $name ($pid) is still running" >&2
  return 1
}

if [ -s "$DIR/slurmctld.pid" ] && [ -e "$CONF" ]; then
  jobs="$(SLURM_CONF="$CONF" timeout 10 squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ' || true)"
  if [ -n "${jobs// /}" ]; then
    say "cancelling jobs $jobs"
    # shellcheck disable=SC2086
    SLURM_CONF="$CONF" timeout 10 scancel $jobs 2>/dev/null || true
    for _ in $(seq 150); do
      left="$(SLURM_CONF="$CONF" timeout 10 squeue -h -t RUNNING,COMPLETING,CONFIGURING -o %A 2>/dev/null || true)"
      [ -z "$left" ] && break
      sleep 0.2
    done
  fi
fi

status=0
stop slurmd "$DIR/slurmd.pid" || status=1
stop slurmctld "$DIR/slurmctld.pid" || status=1
stop munged "$DIR/munged.pid" || status=1
exit "$status"
