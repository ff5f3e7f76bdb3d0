"""Benchmarks for the speed claim: ``%%chat`` costs no more than calling the SDK by hand.

Run ``python -m benchmarks`` (``--quick`` for the tiny CI sizes). Each figure is a
ratio against a baseline measured in the same run, against the project's emulator
on 127.0.0.1; see ``benchmarks/README.md`` for what each figure measures.
"""
