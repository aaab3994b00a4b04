"""Retention rules on record-store locations (docs/ml-platforms.md, "Retention").

A record store's rows, keys or documents are purged at retirement only, except where its
connector can apply ``delete_after_days`` itself, scoped like its purge:

- ``aws-logs://REGION/PREFIX``: each group the prefix covers gets a CloudWatch retention policy
  of the nearest allowed value not longer than ``delete_after_days`` (CloudWatch then deletes
  the events older than that); a group already set to a value that short or shorter is left.
- ``mlflow://HOST:PORT/experiments/NAME``: the experiment's runs older than N days are deleted
  permanently, as its purge deletes them.

Everywhere else a retention rule is refused when the spec is read (:func:`refusal`), naming
the location and why: a registered model's runs are its versions' lineage, serving resources
have no age, and PostgreSQL, Redis and Chroma records carry no age the connector knows. An
archive rule (``archive_after_days``, ``on_retirement: archive``) is refused on every record
store: records are not archived.

:class:`RetentionAction` is what a connector reports for one group or run, for the receipt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from sundown.errors import InputError

#: The values CloudWatch Logs accepts for ``retentionInDays`` (PutRetentionPolicy).
CLOUDWATCH_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)  # fmt: skip

Action = Literal["set", "kept", "deleted", "failed", "would set", "would delete"]


@dataclass(frozen=True)
class RetentionAction:
    """One thing a retention sweep did (or, dry, would do) at a record location.

    ``target``: the record (``log-group:NAME``, ``run:ID``); ``before``/``after``: the setting
    or state read from the server before and after (``never expire``, ``30 days``,
    ``deleted``); ``detail``: why, in one sentence (never a secret)."""

    target: str
    action: Action
    before: str
    after: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def cloudwatch_days(delete_after_days: int) -> int:
    """The longest CloudWatch retention value not longer than ``delete_after_days`` (never a
    longer one: events must not outlive the rule). InputError when no allowed value fits."""
    fits = [d for d in CLOUDWATCH_RETENTION_DAYS if d <= delete_after_days]
    if not fits:
        raise InputError(
            f"delete_after_days {delete_after_days} is shorter than every retention CloudWatch "
            f"Logs allows (the shortest is {CLOUDWATCH_RETENTION_DAYS[0]} day): it cannot be "
            "applied to log groups"
        )
    return fits[-1]


def supports_retention(url: str) -> bool:
    """Whether the connector of this record location applies ``delete_after_days``."""
    scheme = url.split("://", 1)[0].lower()
    return scheme == "aws-logs" or (scheme == "mlflow" and url.split("/")[3:4] == ["experiments"])


_WHY_NOT = {
    "mlflow": "a registered model's runs are the lineage of its versions, so they are not "
    "aged out one by one; put run retention on mlflow://HOST:PORT/experiments/NAME",
    "sagemaker": "endpoints, endpoint configurations and models have no age to expire: a "
    "serving resource is retired, never aged out",
}


def refusal(
    url: str,
    delete_after_days: int | None,
    archive_after_days: int | None,
    on_retirement: str,
) -> str | None:
    """Why the asset class's rules cannot apply to this record location (None: they can)."""
    has_rule = delete_after_days is not None or archive_after_days is not None
    if not has_rule and on_retirement != "archive":
        return None
    if archive_after_days is not None or on_retirement == "archive":
        return (
            f"{url} is a record-store location, which is never archived: its asset class has "
            "archive_after_days or on_retirement: archive (declare it in an asset class "
            "without them)"
        )
    scheme = url.split("://", 1)[0].lower()
    if not supports_retention(url):
        why = _WHY_NOT.get(
            scheme,
            f"the {scheme} connector knows no age of its records, so it cannot select those "
            "older than N days",
        )
        return (
            f"{url} cannot take retention rules ({why}): delete_after_days applies only to "
            "aws-logs:// and mlflow://.../experiments/ locations; declare it in an asset class "
            "without retention, and it is purged at retirement"
        )
    if scheme == "aws-logs" and delete_after_days is not None:
        try:
            cloudwatch_days(delete_after_days)
        except InputError as exc:
            return f"{url}: {exc}"
    return None
