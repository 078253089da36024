{#- slurm-controller: slurmctld. slurm.conf changes are picked up with `scontrol reconfigure`; a change of what
    Slurm 22.05 reads only at start (controllers, nodes joining or leaving, a node's CPUs, memory or GPUs: the file
    rackseed-nodes) restarts slurmctld, because reconfigure refuses those. -#}
include:
  - slurm.common

slurmctld-package:
  pkg.installed:
    - name: {{ 'slurm-slurmctld' if facts.osFamily == 'redhat' else 'slurmctld' }}

/var/lib/slurm/slurmctld:
  file.directory:
    - user: slurm
    - group: slurm
    - mode: '0755'
    - makedirs: true
    - require:
      - pkg: slurmctld-package

/etc/slurm/rackseed-nodes:
  file.managed:
    - source: rackseed://slurm/files/nodes.njk
    - template: nunjucks
    - mode: '0644'
    - require:
      - file: /etc/slurm

slurmctld:
  service.running:
    - enable: true
    # Debian's unit is Type=simple: a slurmctld that rejects slurm.conf dies after its start succeeded. Checked a
    # second later, the run fails with slurmctld's own error instead of reading as changed.
    - init_delay: 1
    - require:
      - pkg: slurmctld-package
      - file: /var/lib/slurm/slurmctld
      - file: /var/log/slurm
      - file: /etc/slurm/slurm.conf
      - file: /etc/slurm/gres.conf
      - service: munge-service
    - watch:
      - file: /etc/slurm/rackseed-nodes
      - cmd: munge-key

slurm-reconfigure:
  cmd.run:
    - name: scontrol reconfigure
    - onchanges:
      - file: /etc/slurm/slurm.conf
      - file: /etc/slurm/gres.conf
    - require:
      - service: slurmctld
    # slurmctld may have been (re)started a moment ago and not listen yet.
    - retry:
        attempts: 10
        interval: 2
