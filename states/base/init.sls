{#-
  base: every node. Reads (all optional; group data, pillar files and node overrides all land in the pillar):
    hosts.extra:       [{ip: 10.0.0.254, names: [nas, nas.site]}]   extra /etc/hosts lines
    time.sync:         timesyncd | chrony | none   (default: timesyncd on Debian, chrony on RHEL)
    time.servers:      [ntp1.site, 10.0.0.1]       (none: the distribution's own configuration is left alone)
    admin.ssh_keys:    ["ssh-ed25519 AAAA... alice"]  kept in a marked block of root's authorized_keys
    hpc.sysctl:        {net.core.rmem_max: 268435456}  added to / overriding the HPC defaults below
    hpc.apply_runtime: true   (false: only persist sysctls, e.g. when the states run in an image chroot)
    hpc.nofile:        1048576
    metrics.node_exporter: false   (true: install and run the Prometheus node exporter)
-#}
{%- set os = facts.osFamily %}
{%- set time = pillar.get('time', {}) %}
{%- set sync = time.sync | default('chrony' if os == 'redhat' else 'timesyncd') %}
{%- set servers = time.servers | default([]) %}
{%- set hpc = pillar.get('hpc', {}) %}
{%- set admin_keys = pillar.get('admin:ssh_keys', []) %}

rackseed-hostname-file:
  file.managed:
    - name: /etc/hostname
    - contents: {{ node.name | tojson }}
    - mode: '0644'

rackseed-hostname:
  cmd.run:
    - name: hostname {{ node.name | quote }}
    - unless: test "$(hostname)" = {{ node.name | quote }}
    - require:
      - file: rackseed-hostname-file

/etc/hosts:
  file.managed:
    - source: rackseed://base/files/hosts.njk
    - template: nunjucks
    - mode: '0644'

{%- if sync == 'timesyncd' and servers | length > 0 %}

systemd-timesyncd:
  pkg.installed: []
  service.running:
    - enable: true
    - require:
      - pkg: systemd-timesyncd
    - watch:
      - file: /etc/systemd/timesyncd.conf.d/rackseed.conf

/etc/systemd/timesyncd.conf.d/rackseed.conf:
  file.managed:
    - makedirs: true
    - mode: '0644'
    - contents: |
        # Managed by rackseed (base: time.servers)
        [Time]
        NTP={{ servers | join(' ') }}
    - require:
      - pkg: systemd-timesyncd

{%- elif sync == 'chrony' and servers | length > 0 %}
{%- set chrony_conf = '/etc/chrony.conf' if os == 'redhat' else '/etc/chrony/chrony.conf' %}
{%- set chrony_service = 'chronyd' if os == 'redhat' else 'chrony' %}

chrony-package:
  pkg.installed:
    - name: chrony

{{ chrony_conf }}:
  file.managed:
    - mode: '0644'
    - contents: |
        # Managed by rackseed (base: time.servers)
        {%- for server in servers %}
        server {{ server }} iburst
        {%- endfor %}
        driftfile /var/lib/chrony/{{ 'drift' if os == 'redhat' else 'chrony.drift' }}
        makestep 1.0 3
        rtcsync
    - require:
      - pkg: chrony-package

chrony-service:
  service.running:
    - name: {{ chrony_service }}
    - enable: true
    - watch:
      - file: {{ chrony_conf }}
{%- endif %}

{%- if admin_keys | length > 0 %}

/root/.ssh:
  file.directory:
    - mode: '0700'

rackseed-authorized-keys-file:
  file.managed:
    - name: /root/.ssh/authorized_keys
    - replace: false
    - mode: '0600'
    - require:
      - file: /root/.ssh

# A marked block, not the whole file: the key rackseed itself logs in with stays untouched.
rackseed-admin-keys:
  file.blockreplace:
    - name: /root/.ssh/authorized_keys
    - marker_start: '# BEGIN rackseed admin keys'
    - marker_end: '# END rackseed admin keys'
    - content: {{ admin_keys | join('\n') | tojson }}
    - append_if_not_found: true
    - require:
      - file: rackseed-authorized-keys-file
{%- endif %}

{#- HPC defaults: large socket buffers for MPI/NCCL over TCP, no NUMA zone reclaim. Data overrides any of them. #}
{%- set sysctl_defaults = {
  'net.core.rmem_max': 268435456,
  'net.core.wmem_max': 268435456,
  'net.core.netdev_max_backlog': 250000,
  'net.ipv4.tcp_rmem': '4096 87380 134217728',
  'net.ipv4.tcp_wmem': '4096 65536 134217728',
  'vm.zone_reclaim_mode': 0
} %}
{%- set sysctl_extra = hpc.sysctl | default({}) %}
{%- for key, value in sysctl_defaults %}{% if key not in sysctl_extra %}

sysctl-{{ key }}:
  sysctl.present:
    - name: {{ key }}
    - value: {{ value | tojson }}
    - config: /etc/sysctl.d/90-rackseed-hpc.conf
    - apply_runtime: {{ hpc.apply_runtime | default(true) | tojson }}
{%- endif %}{% endfor %}
{%- for key, value in sysctl_extra %}

sysctl-{{ key }}:
  sysctl.present:
    - name: {{ key }}
    - value: {{ value | tojson }}
    - config: /etc/sysctl.d/90-rackseed-hpc.conf
    - apply_runtime: {{ hpc.apply_runtime | default(true) | tojson }}
{%- endfor %}

# RDMA registers (pins) job memory: without an unlimited memlock, verbs and NCCL fail with "cannot allocate memory".
/etc/security/limits.d/90-rackseed-hpc.conf:
  file.managed:
    - mode: '0644'
    - makedirs: true
    - contents: |
        # Managed by rackseed (base): RDMA needs unlimited locked memory.
        *    soft    memlock    unlimited
        *    hard    memlock    unlimited
        *    soft    nofile     {{ hpc.nofile | default(1048576) }}
        *    hard    nofile     {{ hpc.nofile | default(1048576) }}

# The same for daemons started by systemd (slurmd's job steps inherit it); read when systemd next starts.
/etc/systemd/system.conf.d/90-rackseed-hpc.conf:
  file.managed:
    - mode: '0644'
    - makedirs: true
    - contents: |
        # Managed by rackseed (base)
        [Manager]
        DefaultLimitMEMLOCK=infinity
        DefaultLimitNOFILE={{ hpc.nofile | default(1048576) }}

{%- if pillar.get('metrics:node_exporter', false) %}
{%- set exporter = 'golang-github-prometheus-node-exporter' if os == 'redhat' else 'prometheus-node-exporter' %}
{%- set exporter_service = 'node_exporter' if os == 'redhat' else 'prometheus-node-exporter' %}

node-exporter-package:
  pkg.installed:
    - name: {{ exporter }}

node-exporter-service:
  service.running:
    - name: {{ exporter_service }}
    - enable: true
    - require:
      - pkg: node-exporter-package
{%- endif %}

{#- A role taken away from a node (its group or roles changed without a reimage): the daemons rackseed ran for it are
    stopped and disabled, where rackseed's own configuration shows it set them up; packages and data stay. Without
    this a former compute node kept its slurmd, idle in sinfo and taking jobs, while readiness called it ready. -#}
{%- set k3s_roles = node.roles | select('in', ['k3s', 'k3s-server', 'k3s-agent']) | list %}
{%- set gone = [] %}
{%- if 'slurm-compute' not in node.roles %}{% set gone = (gone.push(['slurmd', '/etc/slurm/slurm.conf']), gone) %}{% endif %}
{%- if 'slurm-controller' not in node.roles %}{% set gone = (gone.push(['slurmctld', '/etc/slurm/slurm.conf']), gone) %}{% endif %}
{%- if k3s_roles | length == 0 %}{% set gone = (gone.push(['k3s', '/etc/rancher/k3s/config.yaml']), gone.push(['k3s-agent', '/etc/rancher/k3s/config.yaml']), gone) %}{% endif %}
{%- for service, managed in gone %}

rackseed-role-gone-{{ service }}:
  service.dead:
    - name: {{ service }}
    - enable: false
    - onlyif: {{ ('grep -qs "^# Managed by rackseed" ' ~ managed) | tojson }}
{%- endfor %}
