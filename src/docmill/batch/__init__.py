"""``--batch``: classify through the provider's Batch API, crash-safely (``docmill.batch.session``)."""
