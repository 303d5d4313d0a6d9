"""``make bench``: our engine against the best peers, side by side in one run, in headless Chromium.

Contenders upload the same random file with the same part size and concurrency to the embedded SeaweedFS, in
interleaved rounds; the figures land in ``bench/results/latest.json`` and ``BENCHMARKS.md``. See ``python -m bench
--help`` and ``BENCHMARKS.md`` for what is measured and how.
"""
