"""Strategy base class, built-in strategies and discovery of user strategy folders."""
