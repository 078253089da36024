{#- slurm-compute: slurmd, restarted (watch) whenever slurm.conf, gres.conf or the munge key change. -#}
include:
  - slurm.common

slurmd-package:
  pkg.installed:
    - name: {{ 'slurm-slurmd' if facts.osFamily == 'redhat' else 'slurmd' }}

/var/lib/slurm/slurmd:
  file.directory:
    - mode: '0755'
    - makedirs: true
    - require:
      - pkg: slurmd-package

slurmd:
  service.running:
    - enable: true
    - require:
      - pkg: slurmd-package
      - file: /var/lib/slurm/slurmd
      - file: /var/log/slurm
      - service: munge-service
    - watch:
      - file: /etc/slurm/slurm.conf
      - file: /etc/slurm/gres.conf
      - cmd: munge-key
