"""The local warehouse (local mode only): Redshift SQL on DuckDB or PostgreSQL.

See :mod:`devstack.warehouse.engine` for the engine, :mod:`devstack.warehouse.dialect`
for how statements are translated and :mod:`devstack.warehouse.copy` for the COPY it
accepts.
"""
from devstack.warehouse.engine import LocalWarehouse
from devstack.warehouse.errors import CopyError, DialectError, WarehouseError

__all__ = ["LocalWarehouse", "WarehouseError", "DialectError", "CopyError"]
