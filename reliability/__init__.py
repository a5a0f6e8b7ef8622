"""
Fault injection, checked against a reference model.

Random histories, delivered the ways the event source mapping delivers them,
with connections killed at random points. Run with `python -m reliability`
(`nox -s reliability`; Kinesis Data Streams histories: `--source kinesis`,
`nox -s reliability_kinesis`).

The histories come from `streams` (DynamoDB Streams) or `kinesis` (Kinesis
Data Streams for DynamoDB), as a `history.History`; `delivery` cuts them into
batches and delivers them again and again; `faults` kills connections, workers
and servers; `replay` runs one history with every fault; `checks` says what
went wrong; `database` holds the URLs, the table and what the checks read.
"""
