# Twenty states of a typical HPC base role (the service only on targets with systemd), the same as ../ansible/playbook.yml task for task.
# The benchmark applies it once to converge, then times a no-op apply (everything already in place).
bench-packages:
  pkg.installed:
    - pkgs: [openssh-server, procps, kmod, iproute2]

hpc-group:
  group.present:
    - name: hpc
    - gid: 2000

hpcuser:
  user.present:
    - uid: 2001
    - gid: 2000
    - home: /home/hpcuser
    - shell: /bin/bash
    - require:
      - group: hpc-group

slurmbench:
  user.present:
    - system: true
    - home: /var/lib/slurmbench
    - shell: /usr/sbin/nologin

/etc/rackseed-bench:
  file.directory:
    - mode: '0755'

{% for name in ['motd', 'cluster.conf', 'site.conf', 'nodes.list'] %}
/etc/rackseed-bench/{{ name }}:
  file.managed:
    - contents: |
        # managed by rackseed: {{ name }}
        cluster = bench
        node = {{ node.name }}
    - mode: '0644'
    - require:
      - file: /etc/rackseed-bench
{% endfor %}

/etc/security/limits.d/90-hpc.conf:
  file.managed:
    - makedirs: true
    - contents: |
        * soft memlock unlimited
        * hard memlock unlimited
    - mode: '0644'

/etc/profile.d/hpc.sh:
  file.managed:
    - contents: |
        export OMP_NUM_THREADS=1
    - mode: '0644'

vm.swappiness:
  sysctl.present:
    - value: 10
    - apply_runtime: false

net.core.rmem_max:
  sysctl.present:
    - value: 268435456
    - apply_runtime: false

net.core.wmem_max:
  sysctl.present:
    - value: 268435456
    - apply_runtime: false

/etc/rackseed-bench/current:
  file.symlink:
    - target: /etc/rackseed-bench/motd

bashrc-block:
  file.blockreplace:
    - name: /etc/bash.bashrc
    - marker_start: '# BEGIN rackseed-bench'
    - marker_end: '# END rackseed-bench'
    - content: 'export PATH=$PATH:/opt/bench/bin'
    - append_if_not_found: true

/etc/rackseed-bench/stale.conf:
  file.absent: []

/etc/rackseed-bench/old.d:
  file.absent: []

{% if group.data.bench_service %}
ssh-service:
  service.running:
    - name: ssh
    - enable: true
{% endif %}

initialize:
  cmd.run:
    - name: touch /var/lib/rackseed-bench-initialized
    - creates: /var/lib/rackseed-bench-initialized
