"""Tableau data sources for the shopstream warehouse: the .tds files in this folder and
the generator that writes them from warehouse/sql (``python -m tableau``; see README.md)."""
