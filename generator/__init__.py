"""Wenzheng (问政): a git-based transparency archive for citizens' petitions."""

__version__ = "0.1.0"
