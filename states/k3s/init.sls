{#- The `k3s` role: server or agent as the data key k3s.role says (default agent). Clusters with more than one
    server, or agents that should find their server by itself, use the k3s-server / k3s-agent roles instead. -#}
include:
  - k3s.{{ 'server' if pillar.get('k3s:role', 'agent') == 'server' else 'agent' }}
