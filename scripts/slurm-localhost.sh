#!/usr/bin/env bash
# Starts a real single-node SLURM cluster on localhost (Debian packages, no systemd), with two
# fake GPUs for GRES scheduling, so the SLURM executor can be tested. Idempotent; needs root.
# Used by scripts/test.sh when CAMU_TEST_SLURM=1 (CI sets it); `sinfo` shows the node when ready.
# CAMU_SLURM_CPUS=N declares N CPUs instead of nproc (slurmd takes the declared count): for
# workloads that sleep rather than compute, such as benches/slurm-scale. A cluster already up is
# left as it is.
set -euo pipefail
log() { printf '[slurm] %s\n' "$*" >&2; }
[[ "$(id -u)" == 0 ]] || { log "needs root; skipping"; exit 1; }

if sinfo -h -o '%T' 2>/dev/null | grep -qE 'idle|mixed|alloc'; then
  log "cluster already up"; exit 0
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  log "installing slurmctld slurmd slurm-client munge"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    slurmctld slurmd slurm-client munge >/dev/null 2>&1 ||
    { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y \
      --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null 2>&1; }
fi

mkdir -p /etc/munge /run/munge /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /var/lib/camu-fakegpu
if [[ ! -s /etc/munge/munge.key ]]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key /run/munge && chmod 400 /etc/munge/munge.key
chown slurm:slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm 2>/dev/null || true
pgrep -x munged >/dev/null || su -s /bin/sh munge -c /usr/sbin/munged
touch /var/lib/camu-fakegpu/fakegpu0 /var/lib/camu-fakegpu/fakegpu1

cpus=${CAMU_SLURM_CPUS:-$(nproc)}
overrides=
[[ "$cpus" == "$(nproc)" ]] || overrides=SlurmdParameters=config_overrides
cat >/etc/slurm/slurm.conf <<CONF
ClusterName=localcluster
SlurmctldHost=localhost
SlurmUser=slurm
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=300
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
${overrides}
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
NodeName=localhost CPUs=${cpus} RealMemory=4000 Gres=gpu:fake:2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
cat >/etc/slurm/gres.conf <<CONF
NodeName=localhost Name=gpu Type=fake File=/var/lib/camu-fakegpu/fakegpu[0-1]
CONF

pgrep -x slurmctld >/dev/null || slurmctld
sleep 2
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 1 30); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE 'idle|mixed|alloc'; then
    log "cluster up: $(sinfo -h -o '%P %D %T %G')"; exit 0
  fi
  sleep 1
done
log "cluster did not come up; see /var/log/slurm"; exit 1
