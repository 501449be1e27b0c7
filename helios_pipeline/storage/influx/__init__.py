"""Warm-tier mirror in InfluxDB: line protocol, the v1 HTTP API and a durable on-disk outbox.

``lines`` turns candles and ticks into line protocol (built with ``influxdb-client``),
``v1api`` speaks InfluxDB's v1 HTTP API (``/write``, ``/query``, served by 1.x and by 2.x/3.x in
v1 compatibility), ``outbox`` queues gzip batches durably in SQLite, and ``mirror`` joins them:
writes go to the outbox and never wait on the network; ``flush`` drains it in order.
"""
