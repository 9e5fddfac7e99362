"""Whose a cloud resource is, read from the marks (tags, labels) it carries. No I/O.

The rules (docs/design.md, "Ownership and deletion"): the operator writes to and deletes only what
carries its own marks for this McpDeployment. A resource marked for another McpDeployment is never
touched. A resource of another tool, or one with no marks, is adopted only when the spec says so
(``adoptionPolicy: Adopt``); the first write then puts our marks on it, and from then on it is ours.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from ..contract import CREATED_BY_TAG, OPERATOR_NAME, OWNER_TAG, Observed

SHOWN_MARKS = 6  # a message quotes this many of a resource's marks at most


class Claim(enum.StrEnum):
    ABSENT = "Absent"  # nothing there yet
    OURS = "Ours"  # marked as made by this operator for this McpDeployment
    ANOTHER = "Another"  # marked as made by this operator for another McpDeployment
    FOREIGN = "Foreign"  # made by someone else, or carrying no marks at all


@dataclass(frozen=True)
class Refusal:
    reason: str
    message: str


def claim(observed: Observed, owner: str) -> Claim:
    if not observed.exists:
        return Claim.ABSENT
    marks = observed.owner_marks
    if marks.get(CREATED_BY_TAG) != OPERATOR_NAME:
        return Claim.FOREIGN
    return Claim.OURS if marks.get(OWNER_TAG) == owner else Claim.ANOTHER


def describe_marks(marks: Mapping[str, str]) -> str:
    if not marks:
        return "no tags"
    shown = [f"{key}={value}" for key, value in sorted(marks.items())[:SHOWN_MARKS]]
    more = f" and {len(marks) - SHOWN_MARKS} more" if len(marks) > SHOWN_MARKS else ""
    return "tags " + ", ".join(shown) + more


def refusal(observed: Observed, owner: str, adopt: bool) -> Refusal | None:
    """Why this McpDeployment must leave the resource alone, or None when it may act on it."""
    found = claim(observed, owner)
    what = observed.resource or "the cloud resource"
    if found is Claim.ANOTHER:
        return Refusal("OwnedByAnother", f"{what} belongs to McpDeployment {observed.owner_marks.get(OWNER_TAG)} "
                                         "(namespace.name); choose another server name or placement")
    if found is Claim.FOREIGN and not adopt:
        return Refusal("AdoptionRefused", f"{what} already exists and was not created by this McpDeployment (it has "
                                          f"{describe_marks(observed.owner_marks)}); nothing was changed. Set "
                                          "spec.adoptionPolicy: Adopt to take it over (it is then updated, and deleted "
                                          "with deletionPolicy Delete), or choose another server name or placement")
    return None


def may_delete(observed: Observed, owner: str) -> bool:
    """Only what carries our marks for this McpDeployment is ever deleted, whatever the adoption policy."""
    return claim(observed, owner) is Claim.OURS
