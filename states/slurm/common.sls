{#-
  What every Slurm node shares: munge with the cluster's key, and slurm.conf / gres.conf generated from the
  inventory (see files/slurm.conf.njk). The munge key is a secret the server makes once; the pillar carries it
  (secrets.munge_key_b64) only to nodes with a slurm-* role. It travels base64-encoded and is decoded on the node,
  so the key file holds exactly the server's bytes.
-#}
{%- set os = facts.osFamily %}

munge:
  pkg.installed: []

slurm-client-packages:
  pkg.installed:
    - pkgs: {{ (['slurm'] if os == 'redhat' else ['slurm-client']) | tojson }}

munge-key-encoded:
  file.managed:
    - name: /etc/munge/munge.key.b64
    - contents: {{ pillar.get('secrets:munge_key_b64') | tojson }}
    - contents_newline: false
    - mode: '0400'
    - user: root
    - group: root
    - show_changes: false
    - require:
      - pkg: munge

munge-key:
  cmd.run:
    - name: (umask 077 && base64 -d /etc/munge/munge.key.b64 > /etc/munge/munge.key.new) && chown munge:munge /etc/munge/munge.key.new && chmod 0400 /etc/munge/munge.key.new && mv -f /etc/munge/munge.key.new /etc/munge/munge.key
    - unless: base64 -d /etc/munge/munge.key.b64 | cmp -s - /etc/munge/munge.key && test "$(stat -c '%a %U %G' /etc/munge/munge.key)" = '400 munge munge'
    - require:
      - file: munge-key-encoded

munge-service:
  service.running:
    - name: munge
    - enable: true
    - watch:
      - cmd: munge-key

/etc/slurm:
  file.directory:
    - mode: '0755'

/var/log/slurm:
  file.directory:
    - user: slurm
    - group: slurm
    - mode: '0755'
    - require:
      - pkg: slurm-client-packages

/etc/slurm/slurm.conf:
  file.managed:
    - source: rackseed://slurm/files/slurm.conf.njk
    - template: nunjucks
    - mode: '0644'
    - require:
      - file: /etc/slurm

/etc/slurm/gres.conf:
  file.managed:
    - source: rackseed://slurm/files/gres.conf.njk
    - template: nunjucks
    - mode: '0644'
    - require:
      - file: /etc/slurm
