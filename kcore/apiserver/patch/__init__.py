"""Patch algorithms of the API server, on plain JSON values.

- JSON merge patch (RFC 7386): :func:`apply_merge_patch`, :func:`create_merge_patch`
- JSON patch (RFC 6902): :func:`apply_json_patch`
- strategic merge patch: :func:`apply_strategic_merge_patch` with a
  :class:`PatchSchema` from :func:`schema_for_model`
- server-side apply and field ownership: :func:`server_side_apply`,
  :func:`record_update`
"""

from kcore.apiserver.patch.apply import IGNORED_FIELDS, ManagedEntry, parse_managed_fields, record_update, server_side_apply
from kcore.apiserver.patch.errors import ApplyConflictError, PatchError
from kcore.apiserver.patch.fieldset import field_set, field_values, from_fields_v1, path_string, to_fields_v1
from kcore.apiserver.patch.json_patch import apply_json_patch
from kcore.apiserver.patch.merge_patch import apply_merge_patch, create_merge_patch
from kcore.apiserver.patch.schema import ANY, PatchSchema, schema_for_model
from kcore.apiserver.patch.strategic import apply_strategic_merge_patch

__all__ = [
    "ANY",
    "IGNORED_FIELDS",
    "ApplyConflictError",
    "ManagedEntry",
    "PatchError",
    "PatchSchema",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_merge_patch",
    "create_merge_patch",
    "field_set",
    "field_values",
    "from_fields_v1",
    "parse_managed_fields",
    "path_string",
    "record_update",
    "schema_for_model",
    "server_side_apply",
    "to_fields_v1",
]
