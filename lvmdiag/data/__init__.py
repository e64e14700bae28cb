"""Readers, validation, window building and article recovery for sequence files and article stores."""
