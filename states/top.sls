# rackseed's built-in role library: each inventory role maps to its SLS. An operator state directory listed before
# the built-in one can override any of these files (the first root holding a path wins).
#
#   base                 host name, /etc/hosts, time sync, admin SSH keys, HPC sysctl and limits, metrics agent
#   nvidia               pinned driver and CUDA, persistence mode, power limit, compute mode, kernel module
#   infiniband           rdma-core, mlx5 modprobe file, IPoIB module, NCCL environment
#   slurm-controller     slurmctld (+ munge, slurm.conf, gres.conf)
#   slurm-compute        slurmd
#   slurm-login          client commands only
#   k3s-server           K3s control plane (air-gapped)
#   k3s-agent            K3s worker (air-gapped)
#   k3s                  server or agent, chosen by the data key k3s.role (default agent)
base:
  base:
    - match: role
    - base
  nvidia:
    - match: role
    - nvidia
  infiniband:
    - match: role
    - infiniband
  slurm-controller:
    - match: role
    - slurm.controller
  slurm-compute:
    - match: role
    - slurm.compute
  slurm-login:
    - match: role
    - slurm.login
  k3s-server:
    - match: role
    - k3s.server
  k3s-agent:
    - match: role
    - k3s.agent
  k3s:
    - match: role
    - k3s
