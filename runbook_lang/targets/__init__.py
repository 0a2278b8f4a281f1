"""Targets: the hosts that `on` steps run on (LANGUAGE.md §11).

`inventory.py` reads an Ansible-style YAML inventory into an `Inventory` (hosts in inventory
order, groups, vars merged the way Ansible merges them); `patterns.py` resolves what a step
names and what `--limit` selects; `connection.py` checks every name and setting that will
reach `ssh`.
"""
