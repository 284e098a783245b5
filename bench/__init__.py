"""Benchmarks: each prints its figures. Run them with `make bench` (not part of `make test`)."""
