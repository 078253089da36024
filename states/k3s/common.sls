{#-
  K3s, air-gapped: nothing is downloaded at run time. The operator places K3s's release files in a directory of the
  node's image (or copies them there by other means):
    <k3s.artifacts>/k3s                              the k3s binary (required)
    <k3s.artifacts>/k3s-airgap-images-<arch>.tar.zst the air-gap image bundle (optional; copied where K3s imports it)
  Reads: k3s.artifacts (default /opt/rackseed/artifacts/k3s), k3s.sha256 (optional checksum of the binary).
-#}
{%- set artifacts = pillar.get('k3s:artifacts', '/opt/rackseed/artifacts/k3s') %}
{%- set binary = artifacts ~ '/k3s' %}
{%- set images = '/var/lib/rancher/k3s/agent/images' %}
{%- set sha256 = pillar.get('k3s:sha256', '') %}
{%- set install_binary =
  'test -f ' ~ (binary | quote) ~ ' || { echo ' ~ (('k3s artefact ' ~ binary ~ ' is missing: place the k3s binary there (rackseed never downloads it)') | quote) ~ ' >&2; exit 1; }'
  ~ ((' && echo ' ~ ((sha256 ~ '  ' ~ binary) | quote) ~ ' | sha256sum -c --quiet -') if sha256 else '')
  ~ ' && install -m 0755 -o root -g root ' ~ (binary | quote) ~ ' /usr/local/bin/k3s' %}
{%- set images_glob = (artifacts | quote) ~ '/k3s-airgap-images-*' %}

k3s-binary:
  cmd.run:
    - name: {{ install_binary | tojson }}
    - unless: {{ ('cmp -s ' ~ (binary | quote) ~ ' /usr/local/bin/k3s && test "$(stat -c %a-%U /usr/local/bin/k3s)" = 755-root') | tojson }}

{%- for tool in ['kubectl', 'crictl', 'ctr'] %}

/usr/local/bin/{{ tool }}:
  file.symlink:
    - target: k3s
    - require:
      - cmd: k3s-binary
{%- endfor %}

k3s-airgap-images:
  cmd.run:
    - name: {{ ('mkdir -p ' ~ images ~ ' && for f in ' ~ images_glob ~ '; do cmp -s "$f" ' ~ images ~ '/"${f##*/}" || install -m 0644 "$f" ' ~ images ~ '/ || exit 1; done') | tojson }}
    - onlyif: {{ ('set -- ' ~ images_glob ~ '; test -e "$1"') | tojson }}
    - unless: {{ ('for f in ' ~ images_glob ~ '; do cmp -s "$f" ' ~ images ~ '/"${f##*/}" || exit 1; done') | tojson }}

/etc/rancher/k3s:
  file.directory:
    - mode: '0755'
    - makedirs: true
