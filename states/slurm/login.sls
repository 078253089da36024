{#- slurm-login: the client commands (sbatch, squeue, ...), munge and slurm.conf; no daemon of its own. -#}
include:
  - slurm.common
