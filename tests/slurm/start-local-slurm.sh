#!/usr/bin/env bash
# A one-node SLURM cluster on 127.0.0.1 for facepipe's tests (Debian, as root, no systemd):
# munge, slurmctld, slurmd, and slurmdbd + MariaDB so that sacct works. Idempotent: rerunning it
# leaves running daemons alone and restarts them only if the generated slurm.conf changed.
# Stop with stop-local-slurm.sh.
set -euo pipefail
log() { echo "[facepipe-slurm] $*"; }
# A daemon is up if its pidfile names a live process that is not a zombie.
alive() { local p; p=$(cat "$1" 2>/dev/null) || return 1; [ -n "$p" ] && [ -r "/proc/$p/stat" ] && ! grep -q ') Z ' "/proc/$p/stat"; }
retry() { local n=$1; shift; for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done; return 1; }

need="slurmctld slurmd slurm-client munge slurmdbd mariadb-server"
missing=""
for p in $need; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"; done
if [ -n "$missing" ]; then
  log "installing:$missing"
  # Keep the packages' init scripts from starting daemons during installation.
  own_policy=""; [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; own_policy=1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
fi

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(( $(free -m | awk '/^Mem:/{print $2}') * 9 / 10 ))
new_conf=$(mktemp)
cat > "$new_conf" <<CONF
ClusterName=facepipe
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# A job that asks for no memory must not take the whole node.
DefMemPerCPU=500
ReturnToService=2
# Finished jobs stay visible to squeue-based status checks for 5 minutes.
MinJobAge=300
KillWait=10
SchedulerType=sched/backfill
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem_mb} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
if ! cmp -s "$new_conf" /etc/slurm/slurm.conf; then
  if alive /run/slurmctld.pid || alive /run/slurmd.pid; then
    log "slurm.conf changed: restarting the SLURM daemons"
    scontrol shutdown >/dev/null 2>&1 || true
    export -f alive
    retry 40 bash -c '! alive /run/slurmctld.pid && ! alive /run/slurmd.pid' || true
  fi
  install -D -m 644 "$new_conf" /etc/slurm/slurm.conf
fi
rm -f "$new_conf"
mkdir -p /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm /run/munge
chown slurm:slurm /var/lib/slurm/slurmctld /var/log/slurm
chown munge:munge /run/munge

if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --force
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
fi
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged --force
  retry 20 bash -c 'munge -n | unmunge' || { log "munged did not start"; exit 1; }
fi

if ! mysqladmin ping >/dev/null 2>&1; then
  log "starting MariaDB"
  /etc/init.d/mariadb start >/dev/null
fi
retry 60 mysqladmin ping || { log "MariaDB did not start"; exit 1; }
mysql -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db; CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'facepipe-test'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=slurm
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=facepipe-test
StorageLoc=slurm_acct_db
CONF
chown slurm:slurm /etc/slurm/slurmdbd.conf
chmod 600 /etc/slurm/slurmdbd.conf
if ! alive /run/slurmdbd.pid; then log "starting slurmdbd"; /usr/sbin/slurmdbd; fi
retry 120 sacctmgr -n list cluster || { log "slurmdbd did not start"; tail -n 20 /var/log/slurm/slurmdbd.log; exit 1; }

if ! alive /run/slurmctld.pid; then log "starting slurmctld"; /usr/sbin/slurmctld; fi
retry 60 bash -c 'scontrol ping | grep -q UP' || { log "slurmctld did not start"; tail -n 20 /var/log/slurm/slurmctld.log; exit 1; }
if ! alive /run/slurmd.pid; then log "starting slurmd"; /usr/sbin/slurmd; fi
# A node an earlier run left drained or down (state is kept across restarts) takes no jobs until
# it is resumed: say why it was, and resume it.
retry 60 bash -c "sinfo -h -n $host -o %t | grep -qv '^unk'" || true
state=$(sinfo -h -n "$host" -o %t)
case "$state" in
  drain*|drng*|down*|fail*)
    log "node $host was left $state ($(sinfo -h -n "$host" -o %E)): cancelling its jobs and resuming it"
    scancel --nodelist="$host" >/dev/null 2>&1 || true
    scancel --state=PENDING >/dev/null 2>&1 || true
    scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
esac
if ! retry 120 bash -c "[ \"\$(sinfo -h -n $host -o %t)\" = idle ]"; then
  log "node $host is not idle:"; sinfo -N -l; tail -n 20 /var/log/slurm/slurmd.log; exit 1
fi
retry 60 bash -c 'sacctmgr -n -P list cluster format=cluster | grep -qx facepipe' || { log "cluster not registered with slurmdbd"; exit 1; }
log "SLURM is up on 127.0.0.1: node $host idle ($cpus CPUs, $mem_mb MB), partition debug, accounting via slurmdbd"
