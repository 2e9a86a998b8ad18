"""django_mmc's benchmark: ``python -m benchmarks`` (see ``benchmarks/README.md``).

Every figure is measured against a ceiling taken in the same run (plain
``requests`` loops against the same sandbox, a bare DRF view on the same
server, a fixed query or memory budget), so the results are ratios and
counts that hold on a noisy machine.
"""
