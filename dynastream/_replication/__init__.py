"""
Built-in replication (`App.replicate`): records to rows, rows to guarded bulk writes.

`handler` applies a table's records; `mapping` and `coerce` turn items into
rows, refusing what a column cannot hold; `facts` asks the database what its
definitions do not say; `writer` writes through one statements module per
dialect (`postgresql`, `mysql`, `sqlite`), which share `target` and `chunks`.
"""
