"""
Fault injection, checked against a reference model.

Random histories, delivered the ways the event source mapping delivers them,
with connections killed at random points. Run with `python -m reliability`
(`nox -s reliability`).
"""
