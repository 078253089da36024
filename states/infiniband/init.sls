{#-
  infiniband: RDMA user space, the mlx5 driver, IPoIB when asked for, and NCCL's environment. Reads:
    infiniband.mlx5_options: 'log_num_mgm_entry_size=-1'   optional `options mlx5_core ...` line
    infiniband.ipoib:        true (or {interface: ib0})      load ib_ipoib now and at boot
    nccl:                    {NCCL_IB_HCA: mlx5, NCCL_IB_GID_INDEX: 3, NCCL_SOCKET_IFNAME: eth0, NCCL_IB_DISABLE: 0}
  The NCCL variables go to /etc/nccl.conf (NCCL reads it itself) and /etc/profile.d for shells and batch jobs.
-#}
{%- set os = facts.osFamily %}
{%- set ib = pillar.get('infiniband', {}) %}
{%- set nccl = pillar.get('nccl', {}) %}
{%- if os == 'redhat' %}
{%- set rdma_packages = ['rdma-core', 'libibverbs-utils', 'infiniband-diags', 'librdmacm-utils'] %}
{%- else %}
{%- set rdma_packages = ['rdma-core', 'ibverbs-providers', 'ibverbs-utils', 'infiniband-diags', 'rdmacm-utils'] %}
{%- endif %}

rdma-packages:
  pkg.installed:
    - pkgs: {{ rdma_packages | tojson }}

/etc/modprobe.d/mlx5.conf:
  file.managed:
    - mode: '0644'
    - contents: |
        # Managed by rackseed (infiniband)
        softdep mlx5_core post: mlx5_ib
        {%- if ib.mlx5_options is defined %}
        options mlx5_core {{ ib.mlx5_options }}
        {%- endif %}

{%- for module in ['mlx5_core', 'mlx5_ib', 'ib_umad', 'rdma_ucm'] %}

{{ module }}:
  kmod.present:
    - persist: true
    - require:
      - pkg: rdma-packages
      - file: /etc/modprobe.d/mlx5.conf
{%- endfor %}

{%- if ib.ipoib | default(false) %}

ib_ipoib:
  kmod.present:
    - persist: true
    - require:
      - kmod: mlx5_ib
{%- endif %}

{%- if nccl | length > 0 %}

/etc/nccl.conf:
  file.managed:
    - mode: '0644'
    - contents: |
        # Managed by rackseed (infiniband: nccl)
        {%- for key, value in nccl %}
        {{ key }}={{ value }}
        {%- endfor %}

/etc/profile.d/rackseed-nccl.sh:
  file.managed:
    - mode: '0644'
    - contents: |
        # Managed by rackseed (infiniband: nccl)
        {%- for key, value in nccl %}
        export {{ key }}={{ (value ~ '') | quote }}
        {%- endfor %}
{%- endif %}
