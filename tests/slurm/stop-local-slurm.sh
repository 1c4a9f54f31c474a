#!/usr/bin/env bash
# Stop what start-local-slurm.sh started. --purge also removes SLURM's state, logs and accounting data.
set -uo pipefail
alive() { local p; p=$(cat "$1" 2>/dev/null) || return 1; [ -n "$p" ] && [ -r "/proc/$p/stat" ] && ! grep -q ') Z ' "/proc/$p/stat"; }
stop_daemon() {  # pidfile: TERM, wait up to 20 s, then KILL; remove the pidfile either way
  if alive "$1"; then
    kill "$(cat "$1")" 2>/dev/null
    for _ in $(seq 40); do alive "$1" || break; sleep 0.5; done
    alive "$1" && kill -9 "$(cat "$1")" 2>/dev/null
  fi
  rm -f "$1"
}
command -v scontrol >/dev/null && scontrol shutdown >/dev/null 2>&1
stop_daemon /run/slurmd.pid
stop_daemon /run/slurmctld.pid
stop_daemon /run/slurmdbd.pid
if mysqladmin ping >/dev/null 2>&1; then
  [ "${1:-}" = --purge ] && mysql -e "DROP DATABASE IF EXISTS slurm_acct_db"
  /etc/init.d/mariadb stop >/dev/null
fi
stop_daemon /run/munge/munged.pid
if [ "${1:-}" = --purge ]; then
  rm -rf /var/lib/slurm/slurmctld/* /var/lib/slurm/slurmd/* /var/log/slurm/*
fi
echo "[facepipe-slurm] stopped${1:+ ($1)}"
