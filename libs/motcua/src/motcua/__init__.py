"""motcua shared kernel.

Import name ``motcua``. Generated protobuf packages (``motcua.<area>.v1``) are built into this
package by ``make protos`` and are not committed.
"""
