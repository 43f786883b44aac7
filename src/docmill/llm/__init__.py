"""Talking to LLM providers: the prompt, the client, prices, the response cache and an emulator.

``client`` (httpx; OpenAI-compatible and Ollama via ``providers``), ``prompt`` (the one prompt
format, also parsed by the emulator), ``pricing``, ``cache``, ``emulator`` + ``emulator_server``
(``docmill emulate``). The classifier built on them is ``docmill.processors.classify_llm``.
Nothing is imported here, so ``import docmill`` never pulls in httpx.
"""
