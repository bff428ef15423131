"""swingflow: the Python package behind the Snakemake workflow (rules call its entries)."""

__version__ = "0.1.0"
