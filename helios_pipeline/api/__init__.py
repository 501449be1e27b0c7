"""The read API: HTTP over the query layer with scoped bearer tokens (``helios serve``)."""
