"""Library metadata overlays: what the user says about a model, over what import, probe and pulls inferred.

The model row keeps the *effective* metadata (what search, inference and profiles read); an
overlay records the user's value for one field and the inferred value beneath it, so that

- a re-probe, an update or a re-import that infers a new value changes only what lies beneath
  (`record_inferred`): the user's value stays in effect;
- `reset` drops the overlay and the latest inferred value comes back;
- `confirm` accepts an inferred value without pinning it (it settles a review, nothing more).

Fields: model_type, family, tags, description, display_name. Tags are edited, not replaced: an
overlay holds the tags the user added and removed, applied to whatever tags are inferred.

Review: an import flags weak evidence as review reasons (and the `needs-review` tag). A reason
names the field(s) it is about (`review_fields`); overriding or confirming a field settles its
reasons, which the overlay keeps so that a reset re-opens them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Iterable, Mapping

from domain.enums import ModelType

FIELDS = ("model_type", "family", "tags", "description", "display_name")
# The names users type (`--reset type`) -> the field.
FIELD_NAMES = {"type": "model_type", "model_type": "model_type", "family": "family", "tags": "tags",
               "tag": "tags", "description": "description", "display-name": "display_name",
               "display_name": "display_name"}
USER_NAMES = {"model_type": "type", "family": "family", "tags": "tags", "description": "description",
              "display_name": "display-name"}
NEEDS_REVIEW_TAG = "needs-review"
REVIEWED_FIELDS = frozenset({"model_type", "family"})  # what import review reasons are about
MAX_TEXT = {"family": 128, "description": 4000, "display_name": 255}
MAX_TAG = 64
MAX_TAGS = 64  # added plus hidden, per edit and in all


class OverlayError(ValueError):
    """A value or field name the library cannot take (the caller maps it to a 4xx / usage error)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


def field_of(name: str) -> str:
    """The field a user's name stands for (`type`, `display-name`...)."""
    key = (name or "").strip().lower()
    if key not in FIELD_NAMES:
        raise OverlayError(name or "field", f"unknown field; use one of {', '.join(USER_NAMES.values())}")
    return FIELD_NAMES[key]


@dataclass(frozen=True)
class TagEdit:
    """The tags overlay: added tags are always there, removed tags never (whatever is inferred)."""

    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()

    def apply(self, inferred: Iterable[str]) -> list[str]:
        tags = [t for t in inferred if t not in self.remove]
        return tags + [t for t in self.add if t not in tags]

    @property
    def empty(self) -> bool:
        return not self.add and not self.remove


@dataclass(frozen=True)
class Overlay:
    """One field's overlay. `value` is the user's (None for a confirmation); `inferred` what lies beneath."""

    field: str
    value: object = None
    inferred: object = None
    confirmed: bool = False  # the user confirmed the inferred value: it settles review, pins nothing
    settled_reasons: tuple[str, ...] = ()  # review reasons this overlay settled (a reset re-opens them)
    updated_at: datetime | None = None

    @property
    def overrides(self) -> bool:
        return not self.confirmed


@dataclass
class ModelOverlays:
    """Every overlay of one model, by field."""

    model_id: str
    items: dict[str, Overlay] = field(default_factory=dict)

    def overriding(self) -> dict[str, Overlay]:
        return {name: o for name, o in self.items.items() if o.overrides}

    def confirmed(self) -> list[str]:
        return [name for name, o in self.items.items() if o.confirmed]


# -- the pure overlay function ------------------------------------------------------------------
@dataclass(frozen=True)
class Metadata:
    model_type: ModelType | None = None
    family: str | None = None
    tags: tuple[str, ...] = ()
    description: str = ""
    display_name: str | None = None


def metadata_of(model) -> Metadata:
    return Metadata(model.model_type, model.family, tuple(model.tags), model.description or "",
                    getattr(model, "display_name", None))


def apply_overlays(inferred: Metadata, overlays: Mapping[str, Overlay]) -> Metadata:
    """The effective metadata: each overriding overlay's value in place of the inferred one."""
    values = {}
    for name, overlay in overlays.items():
        if not overlay.overrides:
            continue
        if name == "tags":
            values["tags"] = tuple(_tag_edit(overlay.value).apply(inferred.tags))
        else:
            values[name] = overlay.value
    return replace(inferred, **values)


def inferred_of(model, overlays: ModelOverlays | None) -> Metadata:
    """What lies beneath: the model's effective metadata with each overridden field's inferred value."""
    current = metadata_of(model)
    values = {}
    for name, overlay in (overlays.items if overlays else {}).items():
        if overlay.overrides:
            values[name] = tuple(overlay.inferred or ()) if name == "tags" else overlay.inferred
    return replace(current, **values)


def _set_effective(model, metadata: Metadata) -> None:
    model.model_type = metadata.model_type
    model.family = metadata.family
    model.tags = list(metadata.tags)
    model.description = metadata.description or ""
    model.display_name = metadata.display_name


def record_inferred(model, overlays: ModelOverlays | None, **values) -> None:
    """A writer (import, probe, pull/update, link bookkeeping) records newly inferred values.

    Overridden fields keep the user's value; their overlay remembers the new inferred value.
    """
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise OverlayError(sorted(unknown)[0], "not an overlay field")
    if "tags" in values:
        values["tags"] = tuple(values["tags"] or ())
    if "description" in values:
        values["description"] = values["description"] or ""
    inferred = replace(inferred_of(model, overlays), **values)
    items = overlays.items if overlays else {}
    for name, overlay in list(items.items()):
        if overlay.overrides and name in values:
            items[name] = replace(overlay, inferred=list(values[name]) if name == "tags" else values[name])
    _set_effective(model, apply_overlays(inferred, items))


# -- the user's edits ------------------------------------------------------------------------------
def check_value(name: str, value: object) -> object:
    """The value normalised for `name`; OverlayError when it cannot be one."""
    if name == "model_type":
        try:
            return ModelType(value)
        except ValueError:
            raise OverlayError("type", f"{value!r} is not a model type; use one of "
                               f"{', '.join(t.value for t in ModelType)}") from None
    if name == "tags":
        if not isinstance(value, TagEdit):
            raise OverlayError("tags", "expected tags to add and remove")
        if len(value.add) + len(value.remove) > MAX_TAGS:
            raise OverlayError("tags", f"at most {MAX_TAGS} tags per edit")
        for tag in (*value.add, *value.remove):
            _check_tag(tag)
        overlap = set(value.add) & set(value.remove)
        if overlap:
            raise OverlayError("tags", f"{sorted(overlap)[0]!r} is both added and removed")
        return value
    if value is not None and not isinstance(value, str):
        raise OverlayError(USER_NAMES[name], "expected text")
    text = (value or "").strip() if name != "description" else (value or "")
    if name in ("family", "display_name") and not text:
        raise OverlayError(USER_NAMES[name], "must not be empty (use --reset to drop the override)")
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in text) or (name != "description" and "\n" in text):
        raise OverlayError(USER_NAMES[name], "control characters are not allowed")
    if len(text) > MAX_TEXT[name]:
        raise OverlayError(USER_NAMES[name], f"at most {MAX_TEXT[name]} characters")
    return text


def _check_tag(tag: object) -> None:
    if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG \
            or any(ch.isspace() or ord(ch) < 32 or ch == "," for ch in tag):
        raise OverlayError("tags", f"{str(tag)[:70]!r} is not a tag (1-{MAX_TAG} characters, no spaces or commas)")
    if tag == NEEDS_REVIEW_TAG:
        raise OverlayError("tags", f"{NEEDS_REVIEW_TAG!r} follows the review; confirm or override the flagged field")


def override(model, overlays: ModelOverlays, name: str, value: object, now: datetime | None = None) -> None:
    """Put the user's `value` over field `name` (tags: a TagEdit merged into the current one)."""
    value = check_value(name, value)
    beneath = inferred_of(model, overlays)
    current = overlays.items.get(name)
    if name == "tags":
        value = _merge_tags(_tag_edit(current.value) if current is not None and current.overrides else TagEdit(),
                            value, beneath.tags)
        if len(value.add) + len(value.remove) > MAX_TAGS:
            raise OverlayError("tags", f"at most {MAX_TAGS} tags added or hidden in all")
        if value.empty:
            reset(model, overlays, name)
            return
    settled = tuple(current.settled_reasons) if current is not None else ()
    inferred_value = list(beneath.tags) if name == "tags" else getattr(beneath, name)
    overlays.items[name] = Overlay(name, value, inferred_value, False, settled, now)
    _settle_review(model, overlays, name)
    _refresh(model, overlays, beneath)


def confirm(model, overlays: ModelOverlays, name: str, now: datetime | None = None) -> None:
    """Accept the inferred value of `name`: settles its review reasons; a later inference still applies."""
    current = overlays.items.get(name)
    if current is not None and current.overrides:
        raise OverlayError(USER_NAMES[name], "is overridden; reset it first to confirm the inferred value")
    beneath = inferred_of(model, overlays)
    settled = tuple(current.settled_reasons) if current is not None else ()
    overlays.items[name] = Overlay(name, None, None, True, settled, now)
    _settle_review(model, overlays, name)
    _refresh(model, overlays, beneath)


def reset(model, overlays: ModelOverlays, name: str) -> bool:
    """Drop the overlay of `name`; the inferred value comes back and settled reasons re-open. True when one went."""
    current = overlays.items.get(name)
    if current is None:
        return False
    beneath = inferred_of(model, overlays)
    del overlays.items[name]
    reopened = list(current.settled_reasons)
    # A reason about two fields (type and family) that another overlay settled re-opens too.
    remaining = set(overlays.items)
    for other, overlay in list(overlays.items.items()):
        still = tuple(r for r in overlay.settled_reasons if review_fields(r) <= remaining)
        if still != overlay.settled_reasons:
            reopened += [r for r in overlay.settled_reasons if r not in still]
            overlays.items[other] = replace(overlay, settled_reasons=still)
    for reason in reopened:
        if reason not in model.review_reasons:
            model.review_reasons.append(reason)
    _refresh(model, overlays, beneath)
    return True


def _settle_review(model, overlays: ModelOverlays, name: str) -> None:
    """Move the reasons that only concern settled fields from the model to this field's overlay."""
    settled_fields = set(overlays.items)
    keep, settled = [], []
    for reason in model.review_reasons:
        concerns = review_fields(reason)
        (settled if name in concerns and concerns <= settled_fields else keep).append(reason)
    if settled:
        overlay = overlays.items[name]
        overlays.items[name] = replace(overlay, settled_reasons=tuple(dict.fromkeys([*overlay.settled_reasons, *settled])))
    model.review_reasons = keep


def _refresh(model, overlays: ModelOverlays, beneath: Metadata) -> None:
    """Effective metadata again, with `needs-review` among the inferred tags exactly while reasons are open."""
    tags = [t for t in beneath.tags if t != NEEDS_REVIEW_TAG]
    beneath = replace(beneath, tags=tuple(tags + [NEEDS_REVIEW_TAG]) if model.review_reasons else tuple(tags))
    tag_overlay = overlays.items.get("tags")
    if tag_overlay is not None and tag_overlay.overrides:
        overlays.items["tags"] = replace(tag_overlay, inferred=list(beneath.tags))
    _set_effective(model, apply_overlays(beneath, overlays.items))


def _merge_tags(previous: TagEdit, edit: TagEdit, inferred: Iterable[str]) -> TagEdit:
    """`--tag X` un-hides a hidden tag, else adds X; `--untag X` drops an added X and hides an inferred one."""
    add, remove = list(previous.add), list(previous.remove)
    for tag in edit.add:
        if tag in remove:
            remove.remove(tag)
        elif tag not in add:
            add.append(tag)
    for tag in edit.remove:
        if tag in add:
            add.remove(tag)
        if tag in inferred and tag not in remove:
            remove.append(tag)
    return TagEdit(tuple(add), tuple(remove))


def _tag_edit(value: object) -> TagEdit:
    return value if isinstance(value, TagEdit) else TagEdit()


# Review reasons are sentences written by `domain.library.importing.infer_model_type` (and the
# import's unreadable-config note); each is about the type, the family, or both.
_FAMILY_AND_TYPE = ("no config.json", "config.json is unreadable", "config.json is not a JSON object")


def review_fields(reason: str) -> frozenset[str]:
    text = reason.lower()
    if text.startswith(_FAMILY_AND_TYPE):
        return frozenset({"model_type", "family"})
    if text.startswith("family"):
        return frozenset({"family"})
    return frozenset({"model_type"})  # type evidence: low confidence, mixed signals, no signal...


# -- one serialised form (the database adapter and the on-disk manifest share it) -----------------------
def overlay_to_dict(overlay: Overlay) -> dict:
    value = overlay.value
    if isinstance(value, TagEdit):
        value = {"add": list(value.add), "remove": list(value.remove)}
    elif isinstance(value, ModelType):
        value = value.value
    inferred = overlay.inferred.value if isinstance(overlay.inferred, ModelType) else overlay.inferred
    return {"field": overlay.field, "value": value, "inferred": inferred, "confirmed": overlay.confirmed,
            "settled_reasons": list(overlay.settled_reasons),
            "updated_at": overlay.updated_at.isoformat() if overlay.updated_at else None}


def overlay_from_dict(data: Mapping) -> Overlay | None:
    """The overlay in `data`; None when it is not one (a hand-edited or newer file is skipped, never fatal)."""
    try:
        name = data["field"]
        if name not in FIELDS:
            return None
        confirmed = bool(data.get("confirmed", False))
        value, inferred = data.get("value"), data.get("inferred")
        if name == "tags" and not confirmed:
            value = TagEdit(tuple(value.get("add") or ()), tuple(value.get("remove") or ()))
        if name == "model_type":
            value = ModelType(value) if value is not None else None
            inferred = ModelType(inferred) if inferred is not None else None
        if name == "tags" and inferred is not None:
            inferred = [str(t) for t in inferred]
        updated = data.get("updated_at")
        return Overlay(name, value, inferred, confirmed, tuple(str(r) for r in data.get("settled_reasons") or ()),
                       datetime.fromisoformat(updated) if updated else None)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def overlays_from_list(model_id: str, rows: Iterable[Mapping] | None) -> ModelOverlays:
    overlays = ModelOverlays(model_id)
    for row in rows or ():
        overlay = overlay_from_dict(row) if isinstance(row, Mapping) else None
        if overlay is not None:
            overlays.items[overlay.field] = overlay
    return overlays


def adopt_overlays(model, overlays: ModelOverlays) -> None:
    """A model rebuilt from disk gets back the overlays its manifest kept, over what was inferred again."""
    beneath = metadata_of(model)
    for name, overlay in list(overlays.items.items()):
        inferred_value = list(beneath.tags) if name == "tags" else getattr(beneath, name)
        overlays.items[name] = replace(overlay, inferred=None if overlay.confirmed else inferred_value)
    # Reasons of fields the user settled stay settled (the inference found them again).
    for name in list(overlays.items):
        _settle_review(model, overlays, name)
    _refresh(model, overlays, beneath)
