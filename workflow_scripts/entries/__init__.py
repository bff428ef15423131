"""Thin command-line entries, one per rule: read inputs, call the stage module, write outputs atomically.

Each runs by hand too (`python -m workflow_scripts.entries.<rule> --help`), which is how to debug one job
without Snakemake. Config slices arrive as one JSON argument, exactly the rule's `params`.
"""
