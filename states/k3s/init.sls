{#- The `k3s` role: server or agent as the data key k3s.role says (default agent). Other nodes see which one it plays
    when k3s.role is set in the inventory (group data or the node's overrides), not only in a pillar file. -#}
include:
  - k3s.{{ 'server' if pillar.get('k3s:role', 'agent') == 'server' else 'agent' }}
