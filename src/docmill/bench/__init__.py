"""``docmill bench`` and ``docmill plan``: measure the strategies, then project a run.

``workloads`` (synthetic documents and jobs) → ``harness`` (the matrix; each case in a forked
child via ``isolation``, measured by ``sampler``; ``peers`` for other libraries' pools) →
``summary`` (medians, speedup, Amdahl) → ``report``/``plots``; ``session`` ties one run together.
``profile`` measures per-document costs and ``plan`` projects them to N documents.
"""
