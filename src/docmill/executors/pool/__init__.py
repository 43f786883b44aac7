"""The process machinery the process-based strategies share; no strategy lives here.

- ``parent``: the parent's side, a small pool of worker processes and their handles;
- ``dispatch``: ``PooledExecutor``, the dispatch loop of processes, queue, batches and hybrid;
- ``entry`` → ``worker`` (the serial loop) or ``wide`` (many documents at once, for hybrid);
- ``wire``: the compact form refs and outcomes take through a pipe;
- ``outcomes``: outcomes an executor makes itself (crashed, timed out);
- ``throttle``, ``gc_pause``: CPU throttle of thread lanes; fewer collections under load.
"""
