"""The registry's domain: plain data and the rules of a registration's lifecycle, free of any SDK."""
