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

# What slurm.conf's RebootProgram runs when Slurm reboots this node for `rackseed reimage --when-idle` (its jobs
# done). The node netboots, and rackseed's boot script sends it into the installer. slurm.reboot_command replaces
# the reboot for sites that must do more first (a BMC boot override on machines that boot from disk first).
/usr/local/sbin/rackseed-slurm-reboot:
  file.managed:
    - makedirs: true
    - mode: '0755'
    - contents: |
        #!/bin/sh
        # Managed by rackseed (slurm-compute): slurmd runs this for `scontrol reboot`. Local edits are overwritten.
        {{ pillar.get('slurm:reboot_command', 'exec systemctl reboot') | indent(8) }}

{% set gpus = 'nvidia' in node.roles %}
{%- if gpus %}

# gres.conf names /dev/nvidia*, which exist only once something has opened the driver (loading the module does not
# make them). At boot slurmd can start first, give up on the missing device after 20 s and stay down (Debian's unit
# has no Restart=), taking the node out of Slurm while rackseed last saw it ready. nvidia-smi makes the device files;
# a failing GPU must not keep slurmd from starting and draining the node itself, hence the '-'.
/etc/systemd/system/slurmd.service.d/10-rackseed-nvidia.conf:
  file.managed:
    - makedirs: true
    - mode: '0644'
    - contents: |
        # Managed by rackseed (slurm-compute with nvidia): local edits are overwritten.
        [Unit]
        After=nvidia-persistenced.service

        [Service]
        ExecStartPre=-/usr/bin/nvidia-smi -L
        Restart=on-failure
        RestartSec=10s
{%- else %}

# No nvidia role (any more): slurmd does not wait for GPU devices.
/etc/systemd/system/slurmd.service.d/10-rackseed-nvidia.conf:
  file.absent
{%- endif %}

slurmd:
  service.running:
    - enable: true
    # Debian's unit is Type=simple: a slurmd that rejects slurm.conf dies after its start succeeded. Checked a
    # second later, the run fails with slurmd's own error instead of reading as changed.
    - init_delay: 1
    - require:
      - pkg: slurmd-package
      - file: /var/lib/slurm/slurmd
      - file: /var/log/slurm
      - service: munge-service
      {%- if gpus %}
      - kmod: nvidia
      {%- endif %}
    - watch:
      - file: /etc/slurm/slurm.conf
      - file: /etc/slurm/gres.conf
      - cmd: munge-key
      - file: /etc/systemd/system/slurmd.service.d/10-rackseed-nvidia.conf
