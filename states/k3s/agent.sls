{#- k3s-agent: a K3s worker joining the server (the first k3s-server node, or k3s.server_url). -#}
include:
  - k3s.common
{% set role = 'agent' %}
{% include 'k3s/files/service.sls.njk' %}
