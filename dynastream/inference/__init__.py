"""
From a DynamoDB table to a SQL table: infer the columns from a sample, and check a model later.

`dynastream schema generate` and `dynastream schema diff` are these functions
on the command line:

    >>> from dynastream import inference  # doctest: +SKIP
    >>> sample = inference.sample_table("Orders", limit=1000, max_rcu=25)  # doctest: +SKIP
    >>> table = inference.infer_table(sample)  # doctest: +SKIP
    >>> print(inference.render_model(table))  # doctest: +SKIP
    >>> inference.diff_table(Orders, inference.sample_table("Orders"), naming="snake_case")  # doctest: +SKIP

The types follow the built-in replication's mapping rules, checked by its own
converters on every sampled value, so a generated model takes its sample on
SQLite, PostgreSQL and MySQL/MariaDB (or says, column by column, why not).
Nothing here prints or returns an attribute's value: only names, types,
counts and reasons.
"""

from ._diff import Difference, diff_table
from ._infer import InferredColumn, InferredTable, infer_table
from ._render import render_ddl, render_model
from ._sample import KeyAttribute, Sample, read_sample, sample_table
from ._types import TypeSpec

__all__ = [
    "Difference",
    "InferredColumn",
    "InferredTable",
    "KeyAttribute",
    "Sample",
    "TypeSpec",
    "diff_table",
    "infer_table",
    "read_sample",
    "render_ddl",
    "render_model",
    "sample_table",
]
