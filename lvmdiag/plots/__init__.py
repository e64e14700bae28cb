"""Figures (matplotlib, Agg backend): one module per analyzer; functions take a result and a path."""
