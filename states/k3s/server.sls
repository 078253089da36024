{#- k3s-server: the K3s control plane (also runs workloads unless tainted). -#}
include:
  - k3s.common
{% set role = 'server' %}
{% include 'k3s/files/service.sls.njk' %}
