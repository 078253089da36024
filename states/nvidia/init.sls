{#-
  nvidia: the GPU driver and CUDA, pinned per group. Reads (group data, overridable per node):
    nvidia.driver:        '535.183.01'          required: the driver version every node of the group runs
    nvidia.cuda:          '12.2'                optional: installs the CUDA toolkit of that version
    nvidia.persistence:   true                  keep the driver loaded between jobs (nvidia-persistenced)
    nvidia.power_limit:   700                   watts, applied to every GPU (nvidia-smi -pl)
    nvidia.compute_mode:  DEFAULT | EXCLUSIVE_PROCESS | PROHIBITED
    nvidia.packages:      [...]                 replaces the driver package list below (other repositories)
  Package names follow NVIDIA's CUDA repositories: Debian `nvidia-driver` + `nvidia-smi`, RHEL `nvidia-driver` +
  `nvidia-driver-cuda` (nvidia-smi) + `kmod-nvidia-latest-dkms`; CUDA `cuda-toolkit-12-2` on both.
-#}
{%- set os = facts.osFamily %}
{%- set nv = pillar.get('nvidia', {}) %}
{%- set driver = pillar.get('nvidia:driver') %}
{%- if nv.packages is defined %}
{%- set driver_packages = nv.packages %}
{%- elif os == 'redhat' %}
{%- set driver_packages = ['nvidia-driver', 'nvidia-driver-cuda', 'nvidia-persistenced', 'kmod-nvidia-latest-dkms'] %}
{%- else %}
{%- set driver_packages = ['nvidia-driver', 'nvidia-smi', 'nvidia-persistenced'] %}
{%- endif %}

{%- if os == 'redhat' %}

# dnf holds a version through its versionlock plugin, which a stock RHEL or Rocky install does not have.
dnf-versionlock:
  pkg.installed:
    - name: python3-dnf-plugin-versionlock
{%- endif %}

# The driver version is pinned (and held, so an unattended upgrade cannot move one node ahead of its group).
nvidia-driver-packages:
  pkg.installed:
    - hold: true
    {%- if os == 'redhat' %}
    - require:
      - pkg: dnf-versionlock
    {%- endif %}
    - pkgs:
      {%- for name in driver_packages %}
      - {{ name }}: {{ (driver ~ '*') | tojson }}
      {%- endfor %}

{%- if nv.cuda is defined %}
{%- set cuda_package = 'cuda-toolkit-' ~ (nv.cuda ~ '') | replace('.', '-') %}

{{ cuda_package }}:
  pkg.installed:
    - require:
      - pkg: nvidia-driver-packages
{%- endif %}

nvidia:
  kmod.present:
    - persist: true
    - require:
      - pkg: nvidia-driver-packages

{%- if nv.persistence | default(true) %}

nvidia-persistenced:
  service.running:
    - enable: true
    - require:
      - kmod: nvidia
{%- else %}

nvidia-persistenced:
  service.dead:
    - enable: false
{%- endif %}

{%- if nv.power_limit is defined %}
{%- set watts = nv.power_limit | int %}

nvidia-power-limit:
  cmd.run:
    - name: nvidia-smi -pl {{ watts }}
    # Every GPU already at the limit (nvidia-smi prints watts with decimals).
    - unless: nvidia-smi --query-gpu=power.limit --format=csv,noheader,nounits | awk '{ if (int($1 + 0.5) != {{ watts }}) bad = 1 } END { exit (bad || NR == 0) }'
    - require:
      - kmod: nvidia
{%- endif %}

{%- if nv.compute_mode is defined %}
{%- set modes = {'DEFAULT': 'Default', 'EXCLUSIVE_PROCESS': 'Exclusive_Process', 'PROHIBITED': 'Prohibited'} %}
{%- set mode = nv.compute_mode | upper %}
{%- if mode not in modes %}{{ pillar.get('nvidia:compute_mode must be one of DEFAULT, EXCLUSIVE_PROCESS, PROHIBITED') }}{% endif %}

nvidia-compute-mode:
  cmd.run:
    - name: nvidia-smi -c {{ mode }}
    # Every GPU already in that mode; no answer from nvidia-smi is not "in sync".
    - unless: modes="$(nvidia-smi --query-gpu=compute_mode --format=csv,noheader)" && test -n "$modes" && ! printf '%s\n' "$modes" | grep -qvx {{ modes[mode] }}
    - require:
      - kmod: nvidia
{%- endif %}
