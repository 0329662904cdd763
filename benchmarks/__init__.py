"""The template's benchmark harness: `make bench` measures the default service against baselines.

Every figure is a median over repeated runs; every comparison is a ratio to a
baseline built and measured in the same run (a bare app of the same framework
under the same server, a one-file template for the bake). See
docs/performance.md for what each row measures.
"""
