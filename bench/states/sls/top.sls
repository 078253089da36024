# The benchmark role: every target gets it.
base:
  '*':
    - benchrole
